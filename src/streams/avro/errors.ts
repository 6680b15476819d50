/** Errors of the Avro serde. */

import { UsageError } from '../../util/errors.js';

/**
 * A record does not match its schema; `path` names the field, e.g. `candidates[2].logprob`.
 */
export class SchemaValidationError extends UsageError {
  override name = 'SchemaValidationError';
  constructor(
    message: string,
    /** Field path from the record root; `''` when the record itself is invalid. */
    readonly path: string,
    /** The offending value. */
    readonly value: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A message names a writer schema fingerprint this reader does not know, typically because a
 * newer tsalign wrote it. Sources route such messages to the dead-letter topic.
 */
export class UnknownSchemaError extends Error {
  override readonly name = 'UnknownSchemaError';
  constructor(
    readonly fingerprint: string,
    readonly recordType: string,
  ) {
    super(
      `Unknown ${recordType} writer schema ${fingerprint}: this reader cannot decode the message. ` +
        'Upgrade tsalign to the version that wrote it, or register that writer schema as ' +
        `schemas/history/${recordType}.${fingerprint}.avsc.`,
    );
  }
}

/** A message value cannot be decoded: a missing or malformed schema header, or corrupt bytes. */
export class AvroDecodeError extends Error {
  override readonly name = 'AvroDecodeError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
