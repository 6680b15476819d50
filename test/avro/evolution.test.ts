import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import {
  DEFAULT_SCHEMA_DIR,
  RECORD_TYPE_NAMES,
  UnknownSchemaError,
  createSerde,
  schemaFingerprint,
} from '../../src/streams/avro/index.js';
import type { Prompt, RecordTypeName } from '../../src/streams/records.js';
import { UsageError } from '../../src/util/errors.js';

const tempDirs: string[] = [];
after(() => tempDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const currentPromptSchema = JSON.parse(
  readFileSync(path.join(DEFAULT_SCHEMA_DIR, 'Prompt.avsc'), 'utf8'),
) as { fields: object[] };

/** The current Prompt schema plus two fields with defaults, as a later tsalign might ship it. */
const newerPromptSchema = {
  ...currentPromptSchema,
  fields: [
    ...currentPromptSchema.fields,
    { name: 'language', type: ['null', 'string'], default: null, doc: 'BCP 47 language tag.' },
    { name: 'weight', type: 'long', default: 7, doc: 'Sampling weight.' },
  ],
};

/** Copies tsalign's schemas to a temporary folder and replaces the given files in it. */
function schemaDirWith(files: Record<string, object | string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsalign-avro-'));
  tempDirs.push(dir);
  cpSync(DEFAULT_SCHEMA_DIR, dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}

const prompt: Prompt = {
  id: 'task-arith-000017',
  text: 'What is 17 × 23?',
  source: 'tasks/arithmetic',
  tags: ['arithmetic'],
  meta: { reference: '391' },
  createdAt: 2n ** 53n + 1n,
};

describe('Avro schema evolution', () => {
  const oldSerde = createSerde();

  test('released schemas stay readable', () => {
    // Fingerprints of the schemas tsalign has written so far. When a schema changes, this test
    // fails until the old schema is kept as schemas/history/<Type>.<fingerprint>.avsc, because
    // topics still hold messages written with it.
    const released: Record<RecordTypeName, string[]> = {
      Prompt: ['5daea9352fa5547c'],
      CandidateSet: ['e488169c4df5b953'],
      Judgment: ['8cf13bab0d943282'],
      PreferencePair: ['0e376cf04cfb8606'],
      ModelUpdate: ['5fccaa767292c1df'],
      RoundManifest: ['50f69bd002dad4fa'],
      Metric: ['313b365c5f3cc56a'],
      DeadLetter: ['cc680f11f8e0c8ec'],
    };
    for (const recordType of RECORD_TYPE_NAMES) {
      const readable = oldSerde.writerFingerprints(recordType);
      for (const fingerprint of released[recordType]) {
        assert.ok(
          readable.includes(fingerprint),
          `${recordType} schema ${fingerprint} is no longer readable: move the old schema to ` +
            `schemas/history/${recordType}.${fingerprint}.avsc and add the new fingerprint here.`,
        );
      }
    }
  });

  test('newer reader reads old messages', () => {
    const oldFingerprint = schemaFingerprint(currentPromptSchema);
    const newerSerde = createSerde({
      schemaDir: schemaDirWith({
        'Prompt.avsc': newerPromptSchema,
        [`history/Prompt.${oldFingerprint}.avsc`]: currentPromptSchema,
      }),
    });
    assert.notEqual(newerSerde.fingerprint('Prompt'), oldFingerprint);
    assert.deepStrictEqual(newerSerde.writerFingerprints('Prompt'), [
      newerSerde.fingerprint('Prompt'),
      oldFingerprint,
    ]);

    const encoded = oldSerde.encode('Prompt', prompt);
    // Twice, so the second decode goes through the cached resolver.
    for (let i = 0; i < 2; i++) {
      const decoded = newerSerde.decode('Prompt', encoded.value, encoded.headers);
      assert.deepStrictEqual(decoded, { ...prompt, language: null, weight: 7n });
    }
  });

  test('extraWriterSchemas registers an old writer', () => {
    const newerSerde = createSerde({
      schemaDir: schemaDirWith({ 'Prompt.avsc': newerPromptSchema }),
      extraWriterSchemas: { Prompt: [JSON.stringify(currentPromptSchema)] },
    });
    const encoded = oldSerde.encode('Prompt', prompt);
    const decoded = newerSerde.decode('Prompt', encoded.value, encoded.headers);
    assert.deepStrictEqual(decoded, { ...prompt, language: null, weight: 7n });
  });

  test('old reader rejects a newer fingerprint', () => {
    const newerSerde = createSerde({ schemaDir: schemaDirWith({ 'Prompt.avsc': newerPromptSchema }) });
    const newer = { ...prompt, language: 'de', weight: 3n } as Prompt;
    const encoded = newerSerde.encode('Prompt', newer);
    const fingerprint = newerSerde.fingerprint('Prompt');

    let thrown: unknown;
    try {
      oldSerde.decode('Prompt', encoded.value, encoded.headers);
    } catch (error) {
      thrown = error;
    }
    assert.ok(thrown instanceof UnknownSchemaError, `expected UnknownSchemaError, got ${String(thrown)}`);
    assert.equal(thrown.fingerprint, fingerprint);
    assert.equal(thrown.recordType, 'Prompt');
    assert.match(thrown.message, new RegExp(`Unknown Prompt writer schema ${fingerprint}`));
    assert.match(thrown.message, /Upgrade tsalign/);
    assert.match(thrown.message, new RegExp(`schemas/history/Prompt\\.${fingerprint}\\.avsc`));
  });

  test('old reader with the newer schema registered', () => {
    const newerSerde = createSerde({ schemaDir: schemaDirWith({ 'Prompt.avsc': newerPromptSchema }) });
    const upgradedOldSerde = createSerde({ extraWriterSchemas: { Prompt: [newerPromptSchema] } });
    const encoded = newerSerde.encode('Prompt', { ...prompt, language: 'de', weight: 3n } as Prompt);
    // Fields the reader does not know are skipped by schema resolution.
    assert.deepStrictEqual(upgradedOldSerde.decode('Prompt', encoded.value, encoded.headers), prompt);
  });

  test('history file with a wrong fingerprint', () => {
    const schemaDir = schemaDirWith({ 'history/Prompt.0000000000000000.avsc': currentPromptSchema });
    assert.throws(
      () => createSerde({ schemaDir }),
      (error: unknown) =>
        error instanceof UsageError &&
        /its name contains fingerprint 0000000000000000/.test(error.message) &&
        error.message.includes(`Prompt.${schemaFingerprint(currentPromptSchema)}.avsc`),
    );
  });

  test('history file with a bad name', () => {
    const schemaDir = schemaDirWith({ 'history/Prompt-old.avsc': currentPromptSchema });
    assert.throws(
      () => createSerde({ schemaDir }),
      (error: unknown) => error instanceof UsageError && /Invalid schema history file name/.test(error.message),
    );
  });

  test('incompatible writer schema', () => {
    const incompatible = {
      ...currentPromptSchema,
      fields: [...currentPromptSchema.fields, { name: 'priority', type: 'int', doc: 'No default.' }],
    };
    // The current schema has no default for priority, so a writer without it cannot be read.
    assert.throws(
      () =>
        createSerde({
          schemaDir: schemaDirWith({ 'Prompt.avsc': incompatible }),
          extraWriterSchemas: { Prompt: [currentPromptSchema] },
        }),
      (error: unknown) => error instanceof UsageError && /cannot be read with the current Prompt schema/.test(error.message),
    );
  });

  test('union other than null and T', () => {
    const wideUnion = {
      ...currentPromptSchema,
      fields: [...currentPromptSchema.fields, { name: 'score', type: ['null', 'int', 'string'], default: null }],
    };
    assert.throws(
      () => createSerde({ schemaDir: schemaDirWith({ 'Prompt.avsc': wideUnion }) }),
      (error: unknown) => error instanceof UsageError && /union at score .* allows only \["null", T\]/.test(error.message),
    );
  });

  test('missing schema file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsalign-avro-'));
    tempDirs.push(dir);
    assert.throws(
      () => createSerde({ schemaDir: dir }),
      (error: unknown) => error instanceof UsageError && /Cannot read the Prompt Avro schema/.test(error.message),
    );
  });
});
