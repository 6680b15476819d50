/**
 * The schema registry: the current schema of each record type plus the older writer schemas it
 * can still read.
 *
 * Layout of a schema directory:
 * - `<Type>.avsc`: the current schema of each record type; tsalign writes with it and reads
 *   into it.
 * - `history/<Type>.<fingerprint>.avsc`: an older schema of that type that messages on the
 *   topics may still carry. When a schema changes in a backward-compatible way (a new field
 *   with a default, a removed field), move the old file here under its fingerprint.
 *
 * Every writer schema gets its Avro resolver into the current schema when the registry loads,
 * so an incompatible change fails at startup rather than on the first old message.
 */

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import avro from 'avsc';

import { UsageError, errorMessage } from '../../util/errors.js';
import { childLogger } from '../../util/logger.js';
import { TOPIC_RECORDS, type RecordTypeName } from '../records.js';
import { parseAvroType } from './avro-types.js';
import { schemaFingerprint } from './fingerprint.js';

export const RECORD_TYPE_NAMES: readonly RecordTypeName[] = Object.values(TOPIC_RECORDS);

/** The `schemas/` folder shipped with tsalign, beside `src/` and `dist/`. */
export const DEFAULT_SCHEMA_DIR = path.resolve(__dirname, '../../../schemas');

const HISTORY_FILE = /^([A-Za-z]+)\.([0-9a-f]{16})\.avsc$/;

/** Everything needed to write and read one record type. */
export interface RecordCodec {
  recordType: RecordTypeName;
  /** The current schema: the writer schema for encoding and the reader schema for decoding. */
  type: avro.Type;
  /** Fingerprint of the current schema. */
  fingerprint: string;
  /** Resolvers from each older writer schema into the current schema, by writer fingerprint. */
  resolvers: Map<string, avro.Resolver>;
}

export interface SchemaRegistry {
  codecs: Map<RecordTypeName, RecordCodec>;
  /** Record type of every known writer fingerprint, current and older. */
  fingerprintOwners: Map<string, RecordTypeName>;
}

export interface RegistryOptions {
  /** Folder with `<Type>.avsc` and `history/`; defaults to tsalign's own `schemas/`. */
  schemaDir?: string;
  /** Older writer schemas to accept besides those in `history/`, as schema objects or JSON text. */
  extraWriterSchemas?: Partial<Record<RecordTypeName, ReadonlyArray<object | string>>>;
}

/** Loads the current and older schemas of every record type and builds their resolvers. */
export function loadSchemaRegistry(options: RegistryOptions = {}): SchemaRegistry {
  const schemaDir = path.resolve(options.schemaDir ?? DEFAULT_SCHEMA_DIR);
  const codecs = new Map<RecordTypeName, RecordCodec>();
  const fingerprintOwners = new Map<string, RecordTypeName>();

  for (const recordType of RECORD_TYPE_NAMES) {
    const file = path.join(schemaDir, `${recordType}.avsc`);
    const schema = readSchemaFile(file, recordType);
    const type = parseAvroType(schema, file);
    assertRecordName(type, recordType, file);
    const fingerprint = schemaFingerprint(schema);
    codecs.set(recordType, { recordType, type, fingerprint, resolvers: new Map() });
    claimFingerprint(fingerprintOwners, fingerprint, recordType, file);
  }

  for (const writer of listWriterSchemas(schemaDir, options)) {
    const { recordType, schema, source } = writer;
    const codec = codecs.get(recordType)!;
    const fingerprint = schemaFingerprint(schema);
    const named = writer.namedFingerprint;
    if (named !== undefined && named !== fingerprint) {
        throw new UsageError(
          `Invalid schema history file ${source}: its name contains fingerprint ${named}, but the ` +
            `schema's fingerprint is ${fingerprint}. Rename it to ${recordType}.${fingerprint}.avsc.`,
      );
    }
    if (fingerprint === codec.fingerprint || codec.resolvers.has(fingerprint)) {
      continue;
    }
    const writerType = parseAvroType(schema, source);
    assertRecordName(writerType, recordType, source);
    let resolver: avro.Resolver;
    try {
      resolver = codec.type.createResolver(writerType);
    } catch (error) {
      throw new UsageError(
        `Writer schema ${fingerprint} of ${recordType} (${source}) cannot be read with the ` +
          `current ${recordType} schema: ${errorMessage(error)}. Give new fields a default, ` +
          'or drop the old schema if no topic still holds messages written with it.',
        { cause: error },
      );
    }
    codec.resolvers.set(fingerprint, resolver);
    claimFingerprint(fingerprintOwners, fingerprint, recordType, source);
  }

  childLogger('avro-registry').debug(
    { schemaDir, writerSchemas: fingerprintOwners.size },
    'loaded Avro schemas',
  );
  return { codecs, fingerprintOwners };
}

interface WriterSchemaSource {
  recordType: RecordTypeName;
  schema: object;
  /** File path, or a description of where an in-memory schema came from. */
  source: string;
  /** Fingerprint that a history file's name claims. */
  namedFingerprint?: string;
}

function listWriterSchemas(schemaDir: string, options: RegistryOptions): WriterSchemaSource[] {
  const sources: WriterSchemaSource[] = [];
  const historyDir = path.join(schemaDir, 'history');
  let fileNames: string[] = [];
  try {
    fileNames = readdirSync(historyDir).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw error;
    }
  }
  for (const fileName of fileNames) {
    if (!fileName.endsWith('.avsc')) {
      continue;
    }
    const file = path.join(historyDir, fileName);
    const match = HISTORY_FILE.exec(fileName);
    const recordType = match?.[1] as RecordTypeName | undefined;
    if (recordType === undefined || !RECORD_TYPE_NAMES.includes(recordType)) {
      throw new UsageError(
        `Invalid schema history file name ${file}: expected <Type>.<16 hex digit fingerprint>.avsc ` +
          `with Type one of ${RECORD_TYPE_NAMES.join(', ')}.`,
      );
    }
    sources.push({
      recordType,
      schema: readSchemaFile(file, recordType),
      source: file,
      namedFingerprint: match![2],
    });
  }

  for (const [recordType, schemas] of Object.entries(options.extraWriterSchemas ?? {})) {
    if (!RECORD_TYPE_NAMES.includes(recordType as RecordTypeName)) {
      throw new UsageError(
        `Invalid extraWriterSchemas key ${JSON.stringify(recordType)}: expected one of ` +
          `${RECORD_TYPE_NAMES.join(', ')}.`,
      );
    }
    (schemas ?? []).forEach((schema, index) => {
      const source = `extraWriterSchemas.${recordType}[${index}]`;
      const parsed = typeof schema === 'string' ? parseJson(schema, source) : schema;
      sources.push({ recordType: recordType as RecordTypeName, schema: parsed, source });
    });
  }
  return sources;
}

function readSchemaFile(file: string, recordType: string): object {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(
      `Cannot read the ${recordType} Avro schema ${file}: ${errorMessage(error)}. ` +
        'Point schemaDir at a folder with one <Type>.avsc file per record type.',
      { cause: error },
    );
  }
  return parseJson(text, file);
}

function parseJson(text: string, source: string): object {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== 'object') {
      throw new Error('expected a JSON object');
    }
    return parsed;
  } catch (error) {
    throw new UsageError(`Invalid Avro schema in ${source}: ${errorMessage(error)}.`, {
      cause: error,
    });
  }
}

function assertRecordName(type: avro.Type, recordType: RecordTypeName, source: string): void {
  const shortName = type.name?.slice(type.name.lastIndexOf('.') + 1);
  if (!(type instanceof avro.types.RecordType) || shortName !== recordType) {
    throw new UsageError(
      `Invalid ${recordType} schema in ${source}: expected a record named ${recordType}, ` +
        `got ${type.typeName} ${type.name ?? '(anonymous)'}.`,
    );
  }
}

function claimFingerprint(
  owners: Map<string, RecordTypeName>,
  fingerprint: string,
  recordType: RecordTypeName,
  source: string,
): void {
  const owner = owners.get(fingerprint);
  if (owner !== undefined && owner !== recordType) {
    throw new UsageError(
      `Schema ${source} of ${recordType} has fingerprint ${fingerprint}, which already belongs ` +
        `to ${owner}: two record types cannot share a schema.`,
    );
  }
  owners.set(fingerprint, recordType);
}
