/**
 * Avro encoding and decoding of tsalign's records.
 *
 * A message value is the record in Avro binary with the current schema of its type. The
 * `tsalign-schema` header carries the writer schema's fingerprint (16 hex digits, see
 * fingerprint.ts) as ASCII bytes. A reader decodes with its current schema when the
 * fingerprint matches, resolves from an older writer schema it has registered when not, and
 * raises UnknownSchemaError for a fingerprint it does not know.
 */

import avro from 'avsc';

import { UsageError, errorMessage } from '../../util/errors.js';
import type { RecordTypeName, RecordTypes } from '../records.js';
import { AvroDecodeError, SchemaValidationError, UnknownSchemaError } from './errors.js';
import {
  RECORD_TYPE_NAMES,
  loadSchemaRegistry,
  type RecordCodec,
  type RegistryOptions,
  type SchemaRegistry,
} from './registry.js';
import { findValidationError } from './validation.js';

/** Name of the message header that carries the writer schema's fingerprint. */
export const SCHEMA_HEADER = 'tsalign-schema';

const FINGERPRINT_PATTERN = /^[0-9a-f]{16}$/;

/**
 * An encoded message. `value` may be a slice of a buffer that other encoded values share, and
 * the header buffers are shared by every record of a type, so copy them before changing bytes.
 */
export interface EncodedRecord {
  value: Buffer;
  headers: Record<string, Buffer>;
}

/** Message headers as transports deliver them; string values are accepted too. */
export type MessageHeaders = Record<string, Buffer | string | undefined>;

export type SerdeOptions = RegistryOptions;

/** Encodes and decodes records with one schema registry. */
export interface Serde {
  /**
   * Validates and encodes a record with the current schema of its type.
   * Throws SchemaValidationError naming the first invalid field.
   */
  encode<T extends RecordTypeName>(type: T, value: RecordTypes[T]): EncodedRecord;
  /**
   * Decodes a message value into the current schema of `type`, resolving from an older writer
   * schema when the header names one. Throws AvroDecodeError for a missing or malformed header
   * or corrupt bytes, and UnknownSchemaError for an unregistered writer fingerprint.
   */
  decode<T extends RecordTypeName>(type: T, value: Buffer, headers: MessageHeaders): RecordTypes[T];
  /** Throws SchemaValidationError when `value` does not match the current schema of `type`. */
  validate<T extends RecordTypeName>(type: T, value: RecordTypes[T]): void;
  /** Fingerprint of the current schema of `type`: the header value `encode` writes. */
  fingerprint(type: RecordTypeName): string;
  /** Fingerprints of every writer schema of `type` this serde can decode, current first. */
  writerFingerprints(type: RecordTypeName): string[];
}

/**
 * Creates a serde over the schemas of `options.schemaDir` (default: tsalign's `schemas/`) and
 * any `extraWriterSchemas`. Tests use it to build a newer or an older reader.
 */
export function createSerde(options: SerdeOptions = {}): Serde {
  return new AvroSerde(loadSchemaRegistry(options));
}

/** Bytes of the buffer that encoded values share, as Node pools small `Buffer.from` results. */
const ENCODE_POOL_BYTES = 64 * 1024;

/** Values larger than this get a buffer of their own, so one large value cannot waste a pool. */
const MAX_POOLED_VALUE_BYTES = 8 * 1024;

class AvroSerde implements Serde {
  /** The header value of each record type's current schema, made once. */
  private readonly headerValues = new Map<RecordTypeName, Buffer>();
  /** Encoded values are slices of this buffer from `poolStart` on, until it is full. */
  private pool = Buffer.allocUnsafe(ENCODE_POOL_BYTES);
  private poolStart = 0;

  constructor(private readonly registry: SchemaRegistry) {}

  encode<T extends RecordTypeName>(type: T, value: RecordTypes[T]): EncodedRecord {
    const codec = this.codec(type);
    let bytes: Buffer;
    try {
      // avsc checks every value while it writes, so a separate isValid pass would only repeat
      // the work; the slower diagnosis runs on failure.
      bytes = this.encodePooled(codec.type, value);
    } catch (error) {
      throw (
        findValidationError(type, codec.type, value) ??
        new SchemaValidationError(
          `Invalid ${type} record: ${errorMessage(error)}. Fix the value before encoding it.`,
          '',
          value,
          { cause: error },
        )
      );
    }
    return { value: bytes, headers: { [SCHEMA_HEADER]: this.headerValue(type, codec) } };
  }

  /** Returns the header value of `type`'s current schema, made on first use. */
  private headerValue(type: RecordTypeName, codec: RecordCodec): Buffer {
    let header = this.headerValues.get(type);
    if (header === undefined) {
      header = Buffer.from(codec.fingerprint, 'latin1');
      this.headerValues.set(type, header);
    }
    return header;
  }

  /**
   * Writes `value` into the shared pool and returns its slice. avsc's toBuffer writes into a
   * scratch buffer, then allocates a zero-filled buffer and copies into it, which costs more
   * than the encoding of a small record.
   */
  private encodePooled(type: avro.Type, value: unknown): Buffer {
    const end = type.encode(value, this.pool, this.poolStart);
    if (end >= 0) {
      const bytes = this.pool.subarray(this.poolStart, end);
      this.poolStart = end;
      return bytes;
    }
    // A negative result is the number of bytes that did not fit, and nothing was kept.
    const length = this.pool.length - this.poolStart - end;
    if (length > MAX_POOLED_VALUE_BYTES) return type.toBuffer(value);
    this.pool = Buffer.allocUnsafe(ENCODE_POOL_BYTES);
    this.poolStart = type.encode(value, this.pool, 0);
    return this.pool.subarray(0, this.poolStart);
  }

  decode<T extends RecordTypeName>(type: T, value: Buffer, headers: MessageHeaders): RecordTypes[T] {
    const codec = this.codec(type);
    const header = headers[SCHEMA_HEADER];
    if (header === undefined) {
      throw new AvroDecodeError(
        `Cannot decode a ${type} message: it has no ${SCHEMA_HEADER} header, so its writer ` +
          'schema is unknown. Produce it with tsalign (encodeRecord), which adds the header.',
      );
    }
    if (!Buffer.isBuffer(value)) {
      throw new AvroDecodeError(
        `Cannot decode a ${type} message: its value is ${value === null ? 'null' : typeof value}, ` +
          'expected a Buffer of Avro bytes.',
      );
    }

    // The usual message carries the current fingerprint: compare its bytes without a string.
    if (typeof header !== 'string' && sameBytes(header, this.headerValue(type, codec))) {
      return read(codec, value, codec.fingerprint, undefined);
    }
    const fingerprint = typeof header === 'string' ? header : header.toString('latin1');
    if (fingerprint === codec.fingerprint) {
      return read(codec, value, fingerprint, undefined);
    }
    const resolver = codec.resolvers.get(fingerprint);
    if (resolver !== undefined) {
      return read(codec, value, fingerprint, resolver);
    }
    throw this.unknownWriterError(type, fingerprint);
  }

  validate<T extends RecordTypeName>(type: T, value: RecordTypes[T]): void {
    const error = findValidationError(type, this.codec(type).type, value);
    if (error !== undefined) {
      throw error;
    }
  }

  fingerprint(type: RecordTypeName): string {
    return this.codec(type).fingerprint;
  }

  writerFingerprints(type: RecordTypeName): string[] {
    const codec = this.codec(type);
    return [codec.fingerprint, ...codec.resolvers.keys()];
  }

  private codec(type: RecordTypeName): RecordCodec {
    const codec = this.registry.codecs.get(type);
    if (codec === undefined) {
      throw new UsageError(
        `Unknown record type ${JSON.stringify(type)}: expected one of ${RECORD_TYPE_NAMES.join(', ')}.`,
      );
    }
    return codec;
  }

  private unknownWriterError(type: RecordTypeName, fingerprint: string): Error {
    if (!FINGERPRINT_PATTERN.test(fingerprint)) {
      const shown = JSON.stringify(fingerprint.slice(0, 40));
      return new AvroDecodeError(
        `Cannot decode a ${type} message: its ${SCHEMA_HEADER} header is ${shown}, expected ` +
          '16 lowercase hex digits (a CRC-64-AVRO schema fingerprint).',
      );
    }
    const owner = this.registry.fingerprintOwners.get(fingerprint);
    if (owner !== undefined) {
      return new AvroDecodeError(
        `Cannot decode a ${type} message: its writer schema ${fingerprint} is a ${owner} schema. ` +
          `The message was produced to the wrong topic or decoded as the wrong record type.`,
      );
    }
    return new UnknownSchemaError(fingerprint, type);
  }
}

/** Compares two short buffers byte by byte, which costs less than a native call for 16 bytes. */
function sameBytes(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return false;
  }
  return true;
}

function read<T extends RecordTypeName>(
  codec: RecordCodec,
  value: Buffer,
  fingerprint: string,
  resolver: avro.Resolver | undefined,
): RecordTypes[T] {
  try {
    // NOTE: avsc trusts the block counts of arrays and maps, so a corrupt count can make it
    // loop and allocate up to that count before it fails. Only a length check per block inside
    // avsc would bound this.
    return codec.type.fromBuffer(value, resolver) as RecordTypes[T];
  } catch (error) {
    throw new AvroDecodeError(
      `Cannot decode a ${codec.recordType} message of ${value.length} bytes with writer schema ` +
        `${fingerprint}: ${errorMessage(error)}. The bytes are corrupt or were not written with ` +
        'the schema their header names.',
      { cause: error },
    );
  }
}

let defaultSerde: Serde | undefined;

/** Returns the serde over tsalign's own schemas, loading them on first use. */
export function getDefaultSerde(): Serde {
  defaultSerde ??= createSerde();
  return defaultSerde;
}

/** Validates and encodes a record with tsalign's current schema of its type. */
export function encodeRecord<T extends RecordTypeName>(
  type: T,
  value: RecordTypes[T],
): { value: Buffer; headers: Record<string, Buffer> } {
  return getDefaultSerde().encode(type, value);
}

/** Decodes a message value written by tsalign with the current or a registered older schema. */
export function decodeRecord<T extends RecordTypeName>(
  type: T,
  value: Buffer,
  headers: MessageHeaders,
): RecordTypes[T] {
  return getDefaultSerde().decode(type, value, headers);
}
