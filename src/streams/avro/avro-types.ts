/**
 * Parsing of Avro schemas into avsc types. Every schema of the project is parsed here, so these
 * are the project's rules for mapping Avro to JavaScript values:
 *
 * - Unions: only `["null", T]` is allowed, and it is never wrapped. Its value is `null` or a
 *   plain `T` (not `{ string: "x" }`), and the field has `"default": null`. Any other union is
 *   rejected when the schema is loaded, because an unwrapped union of two non-null branches
 *   would depend on avsc's guess of the branch.
 * - `long` is a JavaScript `bigint`, valid from -2^63 to 2^63-1, so every value round-trips
 *   exactly. `int` and `double` are `number`, `bytes` is `Buffer`, `map` is a plain object,
 *   an enum is its symbol string.
 * - Records decode to plain objects (prototype `Object.prototype`), so they compare equal to
 *   object literals and spread like any other object.
 */

import avro from 'avsc';

import { UsageError } from '../../util/errors.js';

const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;

/**
 * The Avro `long` type as `bigint`, generic over the whole range. avsc hands `fromBuffer` and `toBuffer` the value as 8 bytes,
 * two's complement little-endian, and does the zigzag varint coding itself.
 */
const bigintLongBase = avro.types.LongType.__with({
  fromBuffer: (bytes: Buffer): bigint => bytes.readBigInt64LE(0),
  toBuffer: (value: bigint): Buffer => {
    const bytes = Buffer.allocUnsafe(8);
    bytes.writeBigInt64LE(value, 0);
    return bytes;
  },
  // avsc converts field defaults with fromJSON, so a schema default like `"default": 0` becomes
  // 0n. toJSON writes a decimal string: avsc's JSON helpers would lose precision above 2^53
  // with a number, and clone() round-trips through toJSON and fromJSON.
  fromJSON: (json: unknown): bigint => BigInt(json as bigint | number | string),
  toJSON: (value: bigint): string => value.toString(),
  isValid: (value: unknown): boolean =>
    typeof value === 'bigint' && value >= LONG_MIN && value <= LONG_MAX,
  compare: (a: bigint, b: bigint): number => {
    if (a === b) {
      return 0;
    }
    return a < b ? -1 : 1;
  },
});

/** The part of avsc's Tap (its read and write cursor over a buffer) that the fast paths use. */
interface AvscTap {
  buf: Buffer;
  pos: number;
  readLong(): number;
  writeLong(value: number): void;
}

/** The per-value methods avsc's generated record readers and writers call on a field's type. */
interface AvscValueCodec {
  _read(tap: AvscTap): unknown;
  _write(tap: AvscTap, value: unknown): void;
}

/** Longs below this in magnitude zigzag to under 2^53, which avsc's number varint code handles exactly. */
const FAST_LONG_LIMIT = 2n ** 52n;

/** Varints of up to this many bytes hold under 2^49, which avsc's readLong computes exactly. */
const FAST_LONG_BYTES = 7;

const baseCodec = bigintLongBase as unknown as AvscValueCodec;

/**
 * The Avro `long` type as `bigint` (see `bigintLongBase`), with a fast path for values of
 * magnitude under 2^52, such as timestamps and counts. Those are coded through avsc's number
 * varint code, skipping the 8-byte buffer that the generic path allocates per value. Larger
 * values, and invalid ones, take the generic path, which checks them.
 * NOTE: this relies on avsc 5.7 internals (`_read`, `_write` and the Tap's `readLong` and
 * `writeLong`); the serde tests round-trip longs on both sides of the limit.
 */
export const bigintLongType: avro.Type = Object.freeze(
  Object.assign(Object.create(bigintLongBase) as avro.Type, {
    _read(tap: AvscTap): unknown {
      const { buf, pos } = tap;
      const last = Math.min(pos + FAST_LONG_BYTES, buf.length);
      for (let at = pos; at < last; at++) {
        if (buf[at] < 0x80) return BigInt(tap.readLong());
      }
      return baseCodec._read.call(this, tap);
    },
    _write(tap: AvscTap, value: unknown): void {
      if (typeof value === 'bigint' && value > -FAST_LONG_LIMIT && value < FAST_LONG_LIMIT) {
        tap.writeLong(Number(value));
        return;
      }
      baseCodec._write.call(this, tap, value);
    },
  }),
);

/**
 * Parses a schema into an avsc type under the project's rules. Each call gets its own registry
 * of names, so an older and a newer version of one record can both be loaded.
 */
export function parseAvroType(schema: object, source: string): avro.Type {
  assertNullableUnionsOnly(schema, source, '');
  let type: avro.Type;
  try {
    type = avro.Type.forSchema(schema as avro.Schema, {
      wrapUnions: 'never',
      registry: { long: bigintLongType },
      omitRecordMethods: true,
    });
  } catch (error) {
    throw new UsageError(`Invalid Avro schema in ${source}: ${(error as Error).message}.`, {
      cause: error,
    });
  }
  patchAvscTypes(type);
  return type;
}

/**
 * Adjusts two avsc behaviours in every type nested in `type`:
 * - Records: with `omitRecordMethods` avsc builds each record with a generated constructor
 *   whose prototype is empty, and its readers call `new Constructor(...)`, so pointing that
 *   prototype at `Object.prototype` makes decoded records plain objects.
 * - Enums: avsc looks symbols up in a plain object, so `"toString"` or `"constructor"` would
 *   pass as a symbol and encode garbage. A null prototype leaves only the real symbols.
 * NOTE: both rely on avsc 5.7 internals (`recordConstructor`, `_indices`). The serde tests check
 * decoded prototypes and inherited enum names, so an avsc upgrade that breaks either fails them.
 */
function patchAvscTypes(type: avro.Type): void {
  const visited = new Set<avro.Type>();
  const visit = (current: avro.Type): void => {
    if (visited.has(current)) {
      return;
    }
    visited.add(current);
    if (current instanceof avro.types.RecordType) {
      current.recordConstructor.prototype = Object.prototype;
      current.fields.forEach((field) => visit(field.type));
    } else if (current instanceof avro.types.EnumType) {
      Object.setPrototypeOf((current as unknown as { _indices: object })._indices, null);
    } else if (current instanceof avro.types.ArrayType) {
      visit(current.itemsType);
    } else if (current instanceof avro.types.MapType) {
      visit(current.valuesType);
    } else if (current instanceof avro.types.UnwrappedUnionType) {
      current.types.forEach(visit);
    }
  };
  visit(type);
}

function assertNullableUnionsOnly(schema: unknown, source: string, path: string): void {
  if (Array.isArray(schema)) {
    const isNullable =
      schema.length === 2 && schema[0] === 'null' && !Array.isArray(schema[1]) && schema[1] !== 'null';
    if (!isNullable) {
      throw new UsageError(
        `Invalid Avro schema in ${source}: the union at ${path || 'the top level'} is ` +
          `${JSON.stringify(schema)}, but tsalign allows only ["null", T] unions. ` +
          'Use a record or an enum for other alternatives.',
      );
    }
    assertNullableUnionsOnly(schema[1], source, path);
    return;
  }
  if (schema === null || typeof schema !== 'object') {
    return;
  }
  const node = schema as Record<string, unknown>;
  if (Array.isArray(node.fields)) {
    for (const field of node.fields as Record<string, unknown>[]) {
      const fieldPath = path ? `${path}.${String(field.name)}` : String(field.name);
      assertNullableUnionsOnly(field.type, source, fieldPath);
    }
  }
  if (node.items !== undefined) {
    assertNullableUnionsOnly(node.items, source, `${path}[]`);
  }
  if (node.values !== undefined) {
    assertNullableUnionsOnly(node.values, source, `${path}{}`);
  }
  if (typeof node.type === 'object') {
    assertNullableUnionsOnly(node.type, source, path);
  }
}
