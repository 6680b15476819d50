import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import avro from 'avsc';

import {
  DEFAULT_SCHEMA_DIR,
  RECORD_TYPE_NAMES,
  crc64Avro,
  getDefaultSerde,
  parsingCanonicalForm,
  schemaFingerprint,
} from '../../src/streams/avro/index.js';

/**
 * Computes the specification's CRC-64-AVRO without the lookup table. Each byte is xored into the
 * low bits, then 8 bits are shifted out one at a time, xoring the polynomial whenever a 1 falls out.
 */
function bitwiseCrc64Avro(bytes: Uint8Array): bigint {
  const empty = 0xc15d213aa4d7a795n;
  let fp = empty;
  for (const byte of bytes) {
    fp ^= BigInt(byte);
    for (let bit = 0; bit < 8; bit++) {
      fp = fp & 1n ? (fp >> 1n) ^ empty : fp >> 1n;
    }
  }
  return fp;
}

/** Signed 64-bit value of a little-endian hex fingerprint, as Java's fingerprint64 returns. */
function signedValue(hex: string): bigint {
  return Buffer.from(hex, 'hex').readBigInt64LE(0);
}

describe('CRC-64-AVRO', () => {
  test('empty input is the seed', () => {
    assert.equal(crc64Avro(new Uint8Array()), 0xc15d213aa4d7a795n);
  });

  test('"int" matches the hand-computed value', () => {
    // bitwiseCrc64Avro('"int"') = 0x7275d51a3f395c8f; its bytes in little-endian order read
    // 8f 5c 39 3f 1a d5 75 72. Apache Avro's test data lists the same schema as
    // 8247732601305521295, the signed decimal of 0x7275d51a3f395c8f.
    assert.equal(bitwiseCrc64Avro(Buffer.from('"int"')), 0x7275d51a3f395c8fn);
    assert.equal(crc64Avro(Buffer.from('"int"')), 0x7275d51a3f395c8fn);
    assert.equal(schemaFingerprint('"int"'), '8f5c393f1ad57572');
    assert.equal(schemaFingerprint({ type: 'int' }), '8f5c393f1ad57572');
    assert.equal(signedValue('8f5c393f1ad57572'), 8247732601305521295n);
  });

  test('table matches the bitwise algorithm', () => {
    const inputs = ['', 'a', '"null"', '{"name":"foo","type":"record","fields":[]}', 'Grüße 🌍'];
    for (const input of inputs) {
      const bytes = Buffer.from(input, 'utf8');
      assert.equal(crc64Avro(bytes), bitwiseCrc64Avro(bytes), `input ${JSON.stringify(input)}`);
    }
  });
});

describe('parsing canonical form', () => {
  // Inputs, canonical forms and signed fingerprints from Apache Avro's
  // share/test/data/schema-tests.txt.
  const cases: { input: unknown; canonical: string; fingerprint?: bigint }[] = [
    { input: 'null', canonical: '"null"', fingerprint: 7195948357588979594n },
    { input: { type: 'boolean' }, canonical: '"boolean"' },
    { input: 'long', canonical: '"long"', fingerprint: -3434872931120570953n },
    { input: 'string', canonical: '"string"', fingerprint: -8142146995180207161n },
    { input: [], canonical: '[]', fingerprint: -1241056759729112623n },
    { input: ['int', { type: 'boolean' }], canonical: '["int","boolean"]', fingerprint: 5392556393470105090n },
    {
      input: { fields: [], type: 'record', name: 'foo', namespace: 'x.y' },
      canonical: '{"name":"x.y.foo","type":"record","fields":[]}',
      fingerprint: 5916914534497305771n,
    },
    {
      input: { fields: [], type: 'record', name: 'a.b.foo', namespace: 'x.y' },
      canonical: '{"name":"a.b.foo","type":"record","fields":[]}',
      fingerprint: -4616218487480524110n,
    },
    {
      input: { fields: [], type: 'record', name: 'foo', doc: 'foo', aliases: ['foo', 'bar'] },
      canonical: '{"name":"foo","type":"record","fields":[]}',
      fingerprint: -4824392279771201922n,
    },
    {
      input: {
        fields: [
          { type: 'boolean', aliases: [], name: 'f1', default: 'true' },
          { order: 'descending', name: 'f2', doc: 'Hello', type: 'int' },
        ],
        type: 'record',
        name: 'foo',
      },
      canonical: '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}',
      fingerprint: -4860222112080293046n,
    },
    {
      input: { namespace: 'x.y.z', type: 'enum', name: 'foo', doc: 'foo bar', symbols: ['A1', 'A2'] },
      canonical: '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}',
      fingerprint: -4448647247586288245n,
    },
    {
      input: { namespace: 'x.y.z', type: 'fixed', name: 'foo', doc: 'foo bar', size: 32 },
      canonical: '{"name":"x.y.z.foo","type":"fixed","size":32}',
      fingerprint: -3064184465700546786n,
    },
    {
      input: { items: { type: 'null' }, type: 'array' },
      canonical: '{"type":"array","items":"null"}',
      fingerprint: -589620603366471059n,
    },
    {
      input: { values: 'string', type: 'map' },
      canonical: '{"type":"map","values":"string"}',
      fingerprint: -8732877298790414990n,
    },
    {
      input: {
        name: 'PigValue',
        type: 'record',
        fields: [{ name: 'value', type: ['null', 'int', 'long', 'PigValue'] }],
      },
      canonical: '{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
      fingerprint: -1759257747318642341n,
    },
  ];

  for (const { input, canonical, fingerprint } of cases) {
    test(`canonical form of ${canonical.slice(0, 40)}`, () => {
      const schema = typeof input === 'string' ? JSON.stringify(input) : (input as object);
      assert.equal(parsingCanonicalForm(schema), canonical);
      if (fingerprint !== undefined) {
        assert.equal(signedValue(schemaFingerprint(schema)), fingerprint);
      }
    });
  }

  test('nested names take the enclosing namespace', () => {
    const schema = {
      type: 'record',
      name: 'Outer',
      namespace: 'a.b',
      fields: [
        { name: 'inner', type: { type: 'record', name: 'Inner', fields: [{ name: 'x', type: 'int' }] } },
        { name: 'again', type: 'Inner' },
        { name: 'other', type: { type: 'enum', name: 'c.Kind', symbols: ['K'] } },
      ],
    };
    assert.equal(
      parsingCanonicalForm(schema),
      '{"name":"a.b.Outer","type":"record","fields":[' +
        '{"name":"inner","type":{"name":"a.b.Inner","type":"record","fields":[{"name":"x","type":"int"}]}},' +
        '{"name":"again","type":"a.b.Inner"},' +
        '{"name":"other","type":{"name":"c.Kind","type":"enum","symbols":["K"]}}]}',
    );
  });

  test('tsalign schemas agree with avsc', () => {
    const serde = getDefaultSerde();
    for (const recordType of RECORD_TYPE_NAMES) {
      const text = readFileSync(path.join(DEFAULT_SCHEMA_DIR, `${recordType}.avsc`), 'utf8');
      const schema = JSON.parse(text) as object;
      // avsc's schema() without exportAttrs writes the Parsing Canonical Form too.
      const avscForm = JSON.stringify(avro.Type.forSchema(schema as avro.Schema).schema());
      assert.equal(parsingCanonicalForm(schema), avscForm, recordType);
      assert.equal(schemaFingerprint(text), serde.fingerprint(recordType), recordType);
      assert.match(serde.fingerprint(recordType), /^[0-9a-f]{16}$/);
    }
  });

  test('docs and defaults leave the fingerprint unchanged', () => {
    const bare = { type: 'record', name: 'R', fields: [{ name: 'x', type: ['null', 'string'] }] };
    const documented = {
      type: 'record',
      name: 'R',
      doc: 'A record.',
      fields: [{ name: 'x', type: ['null', 'string'], default: null, doc: 'A field.' }],
    };
    assert.equal(schemaFingerprint(documented), schemaFingerprint(bare));
  });
});
