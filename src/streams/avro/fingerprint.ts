/**
 * Parsing Canonical Form and CRC-64-AVRO fingerprints of Avro schemas, as the Avro
 * specification defines them ("Parsing Canonical Form for Schemas" and "Schema Fingerprints").
 * The tests check both against Apache Avro's share/test/data/schema-tests.txt.
 *
 * Byte order: a fingerprint is written as 16 lowercase hex digits of the 8 fingerprint bytes in
 * little-endian order, the order the specification's single-object encoding puts on the wire
 * and the order Java's `SchemaNormalization.parsingFingerprint("CRC-64-AVRO", ...)` returns.
 * For the schema `"int"` the 64-bit value is 0x7275d51a3f395c8f, so its fingerprint reads
 * `8f5c393f1ad57572`.
 */

import { UsageError } from '../../util/errors.js';

/** CRC-64-AVRO of the empty input; also the polynomial the table is built from. */
const EMPTY = 0xc15d213aa4d7a795n;
const MASK_64 = 0xffffffffffffffffn;

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);
const NAMED = new Set(['record', 'error', 'enum', 'fixed']);

/** FP_TABLE of the specification: the fingerprint of each single byte, shifted into place. */
const FP_TABLE: readonly bigint[] = (() => {
  const table: bigint[] = [];
  for (let i = 0; i < 256; i++) {
    let fp = BigInt(i);
    for (let j = 0; j < 8; j++) {
      fp = (fp >> 1n) ^ (EMPTY & (-(fp & 1n) & MASK_64));
    }
    table.push(fp);
  }
  return table;
})();

/** Computes the 64-bit CRC-64-AVRO (Rabin) fingerprint of some bytes. */
export function crc64Avro(bytes: Uint8Array): bigint {
  let fp = EMPTY;
  for (const byte of bytes) {
    fp = (fp >> 8n) ^ FP_TABLE[Number((fp ^ BigInt(byte)) & 0xffn)]!;
  }
  return fp;
}

/**
 * Returns the Parsing Canonical Form of a schema given as parsed JSON or as JSON text.
 *
 * Applies the specification's transformations. Primitives take their simple form and named types
 * their full names. Only `name`, `type`, `fields`, `symbols`, `items`, `values` and `size` are
 * kept, in that order. A named type is written out at its first occurrence and referenced by
 * full name after it. `JSON.stringify` adds no whitespace, writes non-ASCII characters as
 * UTF-8 and integers without leading zeros, as the form requires.
 */
export function parsingCanonicalForm(schema: unknown): string {
  const parsed = typeof schema === 'string' ? parseSchemaText(schema) : schema;
  return JSON.stringify(canonicalize(parsed, '', new Set()));
}

/**
 * Returns the CRC-64-AVRO fingerprint of a schema's Parsing Canonical Form as 16 lowercase hex
 * digits, bytes in little-endian order.
 */
export function schemaFingerprint(schema: object | string): string {
  const fp = crc64Avro(Buffer.from(parsingCanonicalForm(schema), 'utf8'));
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(fp);
  return bytes.toString('hex');
}

function parseSchemaText(text: string): unknown {
  // Accept a bare primitive name such as `int` as well as its JSON form `"int"`.
  if (PRIMITIVES.has(text)) {
    return text;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new UsageError(`Invalid Avro schema: the text is not JSON (${(error as Error).message}).`, {
      cause: error,
    });
  }
}

function fullName(name: string, namespace: string): string {
  return name.includes('.') || namespace === '' ? name : `${namespace}.${name}`;
}

function canonicalize(schema: unknown, namespace: string, seen: Set<string>): unknown {
  if (typeof schema === 'string') {
    return PRIMITIVES.has(schema) ? schema : fullName(schema, namespace);
  }
  if (Array.isArray(schema)) {
    return schema.map((branch) => canonicalize(branch, namespace, seen));
  }
  if (schema === null || typeof schema !== 'object') {
    throw new UsageError(
      `Invalid Avro schema: expected a type name, a union array or a schema object, got ${JSON.stringify(schema)}.`,
    );
  }

  const node = schema as Record<string, unknown>;
  const type = node.type;
  if (typeof type !== 'string') {
    // `{"type": {...}}` and `{"type": [...]}` wrap a nested schema.
    return canonicalize(type, namespace, seen);
  }
  if (PRIMITIVES.has(type)) {
    return type;
  }

  if (NAMED.has(type)) {
    if (typeof node.name !== 'string') {
      throw new UsageError(`Invalid Avro schema: a ${type} schema needs a string "name".`);
    }
    const ownNamespace = typeof node.namespace === 'string' ? node.namespace : namespace;
    const name = fullName(node.name, ownNamespace);
    if (seen.has(name)) {
      return name;
    }
    seen.add(name);
    // Names inside a named type resolve against its namespace: the one implied by a dotted
    // name wins over the `namespace` attribute.
    const innerNamespace = name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : '';
    if (type === 'enum') {
      return { name, type, symbols: node.symbols };
    }
    if (type === 'fixed') {
      return { name, type, size: node.size };
    }
    if (!Array.isArray(node.fields)) {
      throw new UsageError(`Invalid Avro schema: record ${name} needs a "fields" array.`);
    }
    const fields = (node.fields as Record<string, unknown>[]).map((field) => ({
      name: field.name,
      type: canonicalize(field.type, innerNamespace, seen),
    }));
    return { name, type, fields };
  }

  if (type === 'array') {
    return { type, items: canonicalize(node.items, namespace, seen) };
  }
  if (type === 'map') {
    return { type, values: canonicalize(node.values, namespace, seen) };
  }
  // A named type referenced as {"type": "tsalign.v1.Decision"}.
  return canonicalize(type, namespace, seen);
}
