import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  AvroDecodeError,
  SCHEMA_HEADER,
  SchemaValidationError,
  UnknownSchemaError,
  decodeRecord,
  encodeRecord,
  getDefaultSerde,
} from '../../src/streams/avro/index.js';
import type { RecordTypeName, RecordTypes } from '../../src/streams/records.js';
import { UsageError } from '../../src/util/errors.js';

const LONG_MAX = 2n ** 63n - 1n;
const LONG_MIN = -(2n ** 63n);
const ABOVE_SAFE = 2n ** 53n + 1n;

/** Realistic records of every type; each list covers full, empty and null variants. */
const samples: { [T in RecordTypeName]: RecordTypes[T][] } = {
  Prompt: [
    {
      id: 'task-arith-000017',
      text: 'What is 17 × 23? Answer with a number.',
      source: 'tasks/arithmetic',
      tags: ['arithmetic', 'verifiable'],
      meta: { reference: '391', difficulty: 'easy' },
      createdAt: 1_727_000_000_123n,
    },
    {
      id: 'hh-0',
      text: 'Wie spät ist es in Tōkyō? 🗼\nAntworte kurz.',
      source: 'hh-rlhf',
      tags: [],
      meta: {},
      createdAt: LONG_MAX,
    },
    { id: '', text: '', source: '', tags: [''], meta: { '': '' }, createdAt: LONG_MIN },
  ],
  CandidateSet: [
    {
      promptId: 'task-arith-000017',
      round: 2,
      policyVersion: 'policy-r2-s400',
      studentVersion: 'student-r2-s120',
      seed: ABOVE_SAFE,
      candidates: [
        { id: 'c0', text: '391', tokens: 2, logprob: -1.25 },
        { id: 'c1', text: 'It is 401.', tokens: 5, logprob: -7.5e-3 },
        { id: 'c2', text: 'ответ: 391 ✅', tokens: 9, logprob: -42.000001 },
      ],
      studentScores: [1.5, -0.25, 0.75],
      confidence: 0.8175744761936437,
      decision: 'STUDENT',
      overBudget: false,
    },
    {
      promptId: 'p',
      round: 0,
      policyVersion: 'base',
      studentVersion: 'base',
      seed: -1n,
      candidates: [],
      studentScores: [],
      confidence: 0.5,
      decision: 'AUDIT',
      overBudget: true,
    },
  ],
  Judgment: [
    {
      id: 'j-5f1c',
      promptId: 'task-arith-000017',
      round: 2,
      teacher: 'verifier',
      candidateIds: ['c0', 'c1'],
      scores: [1, 0],
      latencyMs: 12.75,
      cached: false,
      error: null,
    },
    {
      id: 'j-0000',
      promptId: 'hh-0',
      round: 1,
      teacher: 'openai:gpt-4o-mini',
      candidateIds: [],
      scores: [],
      latencyMs: 30_000,
      cached: true,
      error: 'timed out after 30000 ms',
    },
  ],
  PreferencePair: [
    {
      id: 'pair-1',
      promptId: 'task-arith-000017',
      prompt: 'What is 17 × 23?',
      chosen: '391',
      rejected: 'It is 401.',
      chosenId: 'c0',
      rejectedId: 'c1',
      labeler: 'TEACHER',
      confidence: 0.31,
      margin: 1,
      round: 2,
      policyVersion: 'policy-r2-s400',
      studentVersion: 'student-r2-s120',
    },
    {
      id: 'pair-2',
      promptId: 'hh-0',
      prompt: '',
      chosen: '日本語の回答',
      rejected: '',
      chosenId: 'a',
      rejectedId: 'b',
      labeler: 'STUDENT',
      confidence: 1,
      margin: -0,
      round: 0,
      policyVersion: 'base',
      studentVersion: 'base',
    },
  ],
  ModelUpdate: [
    {
      model: 'POLICY',
      version: 'policy-r2-s400',
      parentVersion: 'policy-r2-s300',
      round: 2,
      uri: 'file:///var/lib/tsalign/checkpoints/policy-r2-s400',
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      step: ABOVE_SAFE,
      metrics: { 'loss/dpo': 0.6931, 'rewards/margins': 0.125, 'lr': 1e-5 },
    },
    {
      model: 'STUDENT',
      version: 'student-base',
      parentVersion: null,
      round: 0,
      uri: '.tsalign/checkpoints/student-base',
      sha256: '',
      step: 0n,
      metrics: {},
    },
  ],
  RoundManifest: [
    {
      round: 3,
      status: 'CLOSED',
      policyIn: 'policy-r2-s400',
      policyOut: 'policy-r3-s600',
      studentIn: 'student-r2-s120',
      studentOut: 'student-r3-s180',
      referenceVersion: 'policy-r2-s400',
      referenceSha256: 'ab'.repeat(32),
      promptOffsets: [
        { topic: 'tsalign.prompts', partition: 0, from: 0n, to: ABOVE_SAFE },
        { topic: 'tsalign.prompts', partition: 7, from: LONG_MAX - 1n, to: LONG_MAX },
      ],
      seeds: { sampling: LONG_MIN, shuffle: 42n },
      config: '{"candidates":4,"teacher":"verifier"}',
      configHash: '9f2c',
      summary: { 'pairs/teacher': 120, 'pairs/student': 480, 'teacher/calls_per_prompt': 0.25 },
    },
    {
      round: 1,
      status: 'OPEN',
      policyIn: 'base',
      policyOut: null,
      studentIn: 'base',
      studentOut: null,
      referenceVersion: 'base',
      referenceSha256: '',
      promptOffsets: [],
      seeds: {},
      config: '{}',
      configHash: '',
      summary: {},
    },
  ],
  Metric: [
    {
      name: 'teacher/latency_ms',
      value: 123.456,
      labels: { teacher: 'openai', round: '2' },
      at: 1_727_000_000_999n,
    },
    { name: 'chain/records', value: -1.5e300, labels: {}, at: -1n },
  ],
  DeadLetter: [
    {
      topic: 'tsalign.prompts',
      partition: 3,
      offset: ABOVE_SAFE,
      key: 'prompt-ü-1',
      value: Buffer.from([0x00, 0xff, 0x80, 0x7f, 0x0a]),
      error: 'Unknown Prompt writer schema 0123456789abcdef',
      at: LONG_MAX,
    },
    {
      topic: 'tsalign.pairs',
      partition: 0,
      offset: 0n,
      key: null,
      value: Buffer.alloc(0),
      error: '',
      at: 0n,
    },
  ],
};

describe('Avro serde round trip', () => {
  for (const recordType of Object.keys(samples) as RecordTypeName[]) {
    test(`round trip of ${recordType}`, () => {
      for (const [index, record] of samples[recordType].entries()) {
        const encoded = encodeRecord(recordType, record);
        const decoded = decodeRecord(recordType, encoded.value, encoded.headers);
        assert.deepStrictEqual(decoded, record, `${recordType} sample ${index}`);
      }
    });
  }

  test('header carries the fingerprint', () => {
    const serde = getDefaultSerde();
    const encoded = encodeRecord('Metric', samples.Metric[0]!);
    assert.deepStrictEqual(Object.keys(encoded.headers), [SCHEMA_HEADER]);
    assert.equal(encoded.headers[SCHEMA_HEADER]!.toString('latin1'), serde.fingerprint('Metric'));
  });

  test('decode accepts a string header', () => {
    const encoded = encodeRecord('Metric', samples.Metric[0]!);
    const header = encoded.headers[SCHEMA_HEADER]!.toString('latin1');
    assert.deepStrictEqual(
      getDefaultSerde().decode('Metric', encoded.value, { [SCHEMA_HEADER]: header }),
      samples.Metric[0],
    );
  });

  test('decoded records are plain objects', () => {
    const record = samples.RoundManifest[0]!;
    const encoded = encodeRecord('RoundManifest', record);
    const decoded = decodeRecord('RoundManifest', encoded.value, encoded.headers);
    assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
    assert.equal(Object.getPrototypeOf(decoded.promptOffsets[0]), Object.prototype);
    assert.deepStrictEqual(Object.keys(decoded), Object.keys(record));
  });

  test('values stay intact across pool refills', () => {
    // Sizes around the shared pool's 8 KiB own-buffer limit, enough of them to fill it often.
    const prompts = Array.from({ length: 400 }, (_, i) => ({
      ...samples.Prompt[0]!,
      id: `pool-${i}`,
      text: 'x'.repeat((i * 977) % 12_000),
    }));
    const encoded = prompts.map((prompt) => encodeRecord('Prompt', prompt));
    for (const [index, { value, headers }] of encoded.entries()) {
      assert.deepStrictEqual(decodeRecord('Prompt', value, headers), prompts[index], `prompt ${index}`);
    }
  });

  test('invalid record leaves later values intact', () => {
    const first = encodeRecord('Prompt', samples.Prompt[0]!);
    const invalid = { ...samples.Prompt[0]!, text: 17 } as unknown as RecordTypes['Prompt'];
    assert.throws(() => encodeRecord('Prompt', invalid), SchemaValidationError);
    const second = encodeRecord('Prompt', samples.Prompt[1]!);
    assert.deepStrictEqual(decodeRecord('Prompt', first.value, first.headers), samples.Prompt[0]);
    assert.deepStrictEqual(decodeRecord('Prompt', second.value, second.headers), samples.Prompt[1]);
  });

  test('longs stay exact at the extremes', () => {
    // 2^52 is where the fast path for small longs ends, and 2^49 where its 7-byte varints end.
    const edges = [2n ** 49n, 2n ** 52n].flatMap((edge) => [edge - 1n, edge, edge + 1n]);
    const around = [...edges, ...edges.map((value) => -value), 63n, 64n, -64n, -65n, 2n ** 31n, -(2n ** 31n) - 1n];
    for (const at of [LONG_MIN, LONG_MIN + 1n, -1n, 0n, 1n, ABOVE_SAFE, LONG_MAX - 1n, LONG_MAX, ...around]) {
      const metric = { name: 'm', value: 0, labels: {}, at };
      const encoded = encodeRecord('Metric', metric);
      const decoded = decodeRecord('Metric', encoded.value, encoded.headers);
      assert.equal(typeof decoded.at, 'bigint');
      assert.equal(decoded.at, at);
    }
  });

  test('missing nullable field becomes null', () => {
    const { error: _error, ...withoutError } = samples.Judgment[0]!;
    const encoded = encodeRecord('Judgment', withoutError as RecordTypes['Judgment']);
    assert.equal(decodeRecord('Judgment', encoded.value, encoded.headers).error, null);
  });
});

describe('Avro serde validation', () => {
  const candidateSet = samples.CandidateSet[0]!;

  /** Encodes `value` as `recordType` and returns the SchemaValidationError it must throw. */
  function validationErrorOf(recordType: RecordTypeName, value: unknown): SchemaValidationError {
    try {
      encodeRecord(recordType, value as never);
    } catch (error) {
      assert.ok(error instanceof SchemaValidationError, `expected SchemaValidationError, got ${String(error)}`);
      return error;
    }
    assert.fail(`encoding ${recordType} should have thrown`);
  }

  test('nested field names path and value', () => {
    const candidates = candidateSet.candidates.map((candidate) => ({ ...candidate }));
    (candidates[2] as { logprob: unknown }).logprob = 'abc';
    const error = validationErrorOf('CandidateSet', { ...candidateSet, candidates });
    assert.equal(error.path, 'candidates[2].logprob');
    assert.equal(error.value, 'abc');
    assert.match(error.message, /candidates\[2\]\.logprob is "abc" \(string\)/);
    assert.match(error.message, /expects a double/);
    assert.ok(error instanceof UsageError);
  });

  test('each invalid value names its field', () => {
    const cases: { recordType: RecordTypeName; value: unknown; path: string; expects: RegExp }[] = [
      { recordType: 'CandidateSet', value: { ...candidateSet, round: 1.5 }, path: 'round', expects: /an int/ },
      { recordType: 'CandidateSet', value: { ...candidateSet, round: 2 ** 31 }, path: 'round', expects: /an int/ },
      { recordType: 'CandidateSet', value: { ...candidateSet, seed: 7 }, path: 'seed', expects: /a long \(a bigint/ },
      { recordType: 'Metric', value: { ...samples.Metric[0], at: LONG_MAX + 1n }, path: 'at', expects: /a long/ },
      { recordType: 'Metric', value: { ...samples.Metric[0], at: LONG_MIN - 1n }, path: 'at', expects: /a long/ },
      {
        recordType: 'CandidateSet',
        value: { ...candidateSet, decision: 'MAYBE' },
        path: 'decision',
        expects: /one of "STUDENT", "TEACHER", "AUDIT"/,
      },
      {
        recordType: 'CandidateSet',
        value: { ...candidateSet, decision: 'toString' },
        path: 'decision',
        expects: /one of "STUDENT"/,
      },
      { recordType: 'CandidateSet', value: { ...candidateSet, studentScores: [1, '2'] }, path: 'studentScores[1]', expects: /a double/ },
      { recordType: 'Prompt', value: { ...samples.Prompt[0], meta: { lang: 5 } }, path: 'meta["lang"]', expects: /a string/ },
      { recordType: 'Prompt', value: { ...samples.Prompt[0], tags: 'a,b' }, path: 'tags', expects: /an array/ },
      { recordType: 'Prompt', value: { ...samples.Prompt[0], text: undefined }, path: 'text', expects: /a string/ },
      { recordType: 'Judgment', value: { ...samples.Judgment[0], error: 5 }, path: 'error', expects: /null or a string/ },
      { recordType: 'ModelUpdate', value: { ...samples.ModelUpdate[0], metrics: { a: 1n } }, path: 'metrics["a"]', expects: /a double/ },
      { recordType: 'RoundManifest', value: { ...samples.RoundManifest[0], seeds: { s: 1 } }, path: 'seeds["s"]', expects: /a long/ },
      {
        recordType: 'RoundManifest',
        value: { ...samples.RoundManifest[0], promptOffsets: [{ topic: 't', partition: 0, from: 0n }] },
        path: 'promptOffsets[0].to',
        expects: /a long/,
      },
      { recordType: 'DeadLetter', value: { ...samples.DeadLetter[0], value: 'bytes' }, path: 'value', expects: /bytes \(a Buffer\)/ },
      { recordType: 'PreferencePair', value: { ...samples.PreferencePair[0], labeler: null }, path: 'labeler', expects: /one of "TEACHER", "STUDENT"/ },
      { recordType: 'Prompt', value: null, path: '', expects: /a tsalign\.v1\.Prompt object/ },
    ];
    for (const { recordType, value, path, expects } of cases) {
      const error = validationErrorOf(recordType, value);
      assert.equal(error.path, path, error.message);
      assert.match(error.message, expects, error.message);
    }
  });

  test('missing field says it is missing', () => {
    const { text: _text, ...withoutText } = samples.Prompt[0]!;
    const error = validationErrorOf('Prompt', withoutText);
    assert.equal(error.path, 'text');
    assert.equal(error.value, undefined);
    assert.match(error.message, /text is missing/);
  });

  test('message counts further invalid fields', () => {
    const error = validationErrorOf('CandidateSet', { ...candidateSet, round: 'x', confidence: 'y' });
    assert.equal(error.path, 'round');
    assert.match(error.message, /1 more invalid field: confidence\./);
  });

  test('validate matches encode', () => {
    const serde = getDefaultSerde();
    assert.doesNotThrow(() => serde.validate('CandidateSet', candidateSet));
    assert.throws(
      () => serde.validate('CandidateSet', { ...candidateSet, seed: 1 } as never),
      (error: unknown) => error instanceof SchemaValidationError && error.path === 'seed',
    );
  });

  test('unknown record type is a usage error', () => {
    assert.throws(
      () => encodeRecord('Prompts' as RecordTypeName, samples.Prompt[0]! as never),
      (error: unknown) => error instanceof UsageError && /expected one of Prompt, CandidateSet/.test(error.message),
    );
  });
});

describe('Avro serde decode errors', () => {
  const prompt = samples.Prompt[0]!;

  test('missing header', () => {
    const encoded = encodeRecord('Prompt', prompt);
    assert.throws(
      () => decodeRecord('Prompt', encoded.value, {}),
      (error: unknown) => error instanceof AvroDecodeError && /no tsalign-schema header/.test(error.message),
    );
  });

  test('malformed header', () => {
    const encoded = encodeRecord('Prompt', prompt);
    assert.throws(
      () => decodeRecord('Prompt', encoded.value, { [SCHEMA_HEADER]: Buffer.from('v1') }),
      (error: unknown) => error instanceof AvroDecodeError && /expected 16 lowercase hex digits/.test(error.message),
    );
  });

  test('truncated bytes', () => {
    const encoded = encodeRecord('Prompt', prompt);
    for (const length of [0, 1, encoded.value.length - 1]) {
      assert.throws(
        () => decodeRecord('Prompt', encoded.value.subarray(0, length), encoded.headers),
        (error: unknown) => error instanceof AvroDecodeError && /Cannot decode a Prompt message/.test(error.message),
        `length ${length}`,
      );
    }
  });

  test('trailing bytes', () => {
    const encoded = encodeRecord('Prompt', prompt);
    const padded = Buffer.concat([encoded.value, Buffer.from([0x00])]);
    assert.throws(() => decodeRecord('Prompt', padded, encoded.headers), AvroDecodeError);
  });

  test('bytes of another record type', () => {
    const metric = encodeRecord('Metric', samples.Metric[0]!);
    const prompt = encodeRecord('Prompt', samples.Prompt[0]!);
    assert.throws(() => decodeRecord('Prompt', metric.value, prompt.headers), AvroDecodeError);
  });

  test('fingerprint of another record type', () => {
    const metric = encodeRecord('Metric', samples.Metric[0]!);
    assert.throws(
      () => decodeRecord('Prompt', metric.value, metric.headers),
      (error: unknown) => error instanceof AvroDecodeError && /is a Metric schema/.test(error.message),
    );
  });

  test('unknown fingerprint', () => {
    const encoded = encodeRecord('Prompt', prompt);
    assert.throws(
      () => decodeRecord('Prompt', encoded.value, { [SCHEMA_HEADER]: Buffer.from('0123456789abcdef') }),
      (error: unknown) =>
        error instanceof UnknownSchemaError &&
        error.fingerprint === '0123456789abcdef' &&
        error.recordType === 'Prompt',
    );
  });

  test('null value', () => {
    const encoded = encodeRecord('Prompt', prompt);
    assert.throws(
      () => decodeRecord('Prompt', null as unknown as Buffer, encoded.headers),
      (error: unknown) => error instanceof AvroDecodeError && /its value is null/.test(error.message),
    );
  });
});
