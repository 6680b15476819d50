/** Errors of one input record of `tsalign feed`, with where it sits and how to fix it. */
import { UsageError } from '../util/errors';

/** Position of a record in the input: a line of a line format, or an element of a JSON array. */
export interface InputLocation {
  /** 1-based line number. */
  line?: number;
  /** Offset of the line's first byte, or of the error in a JSON document. */
  byteOffset?: number;
  /** 0-based index in a JSON array. */
  element?: number;
}

const PREVIEW_CHARS = 120;

/** Formats a location for messages, such as `line 3 (byte offset 120)`. */
export function describeLocation(location: InputLocation): string {
  const parts: string[] = [];
  if (location.element !== undefined) parts.push(`element ${location.element} of the JSON array`);
  if (location.line !== undefined) parts.push(`line ${location.line}`);
  if (location.byteOffset !== undefined) {
    parts.push(parts.length > 0 ? `(byte offset ${location.byteOffset})` : `byte offset ${location.byteOffset}`);
  }
  return parts.length > 0 ? parts.join(' ') : 'input';
}

/** Quotes a value for a message, cut to 120 characters. */
export function previewText(text: string): string {
  const cut = text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}…` : text;
  return JSON.stringify(cut);
}

/** Shows bytes that are not valid UTF-8 as hex, cut to 48 bytes. */
export function previewBytes(bytes: Buffer): string {
  const hex = bytes.subarray(0, 48).toString('hex').replace(/(..)/g, '$1 ').trim();
  return `<${hex}${bytes.length > 48 ? ' …' : ''}>`;
}

/**
 * One input record that cannot become a prompt. The message names the location, the problem,
 * the value (cut short) and the fix. `fatal` errors end the input under every `--on-error` mode,
 * because nothing after them can be parsed (an invalid JSON array document).
 */
export class InputRecordError extends UsageError {
  constructor(
    readonly location: InputLocation,
    readonly problem: string,
    /** The offending value, already quoted and cut short for the message. */
    readonly preview: string,
    readonly hint: string,
    /** The record's bytes as read, for a dead letter. */
    readonly raw: Buffer,
    readonly fatal = false,
  ) {
    super(`${describeLocation(location)}: ${problem}: ${preview}; ${hint}`);
  }
}
