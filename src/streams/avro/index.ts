/**
 * tsalign's Avro layer: schemas, fingerprints, the schema registry and the record serde.
 * The rules for mapping Avro to JavaScript values (nullable unions, bigint longs) are in
 * avro-types.ts.
 */

export {
  SCHEMA_HEADER,
  createSerde,
  decodeRecord,
  encodeRecord,
  getDefaultSerde,
  type EncodedRecord,
  type MessageHeaders,
  type Serde,
  type SerdeOptions,
} from './serde.js';
export { AvroDecodeError, SchemaValidationError, UnknownSchemaError } from './errors.js';
export { crc64Avro, parsingCanonicalForm, schemaFingerprint } from './fingerprint.js';
export { DEFAULT_SCHEMA_DIR, RECORD_TYPE_NAMES } from './registry.js';
