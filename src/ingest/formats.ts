/**
 * Input formats of `tsalign feed` and the parsing of each into prompt texts.
 *
 * - `jsonl`: one JSON value per line; an object gives its text field, a JSON string is the text.
 * - `json`: one JSON array whose elements are objects or strings, as in `jsonl`.
 * - `text`: each line is one prompt.
 * - `hh-rlhf`: Anthropic HH-RLHF lines. The prompt is the dialogue shared by `chosen` and
 *   `rejected` up to the final "Assistant:" turn, and both replies go to `meta`.
 * Blank lines are skipped in every line format.
 */
import { splitHhDialogue, isHhRecord } from './hh-rlhf';
import { readPath, jsonTypeOf } from './fields';
import { splitLines, type RawLine } from './lines';
import { InputRecordError, previewBytes, previewText, type InputLocation } from './errors';
import { UsageError, errorMessage } from '../util/errors';

export type InputFormat = 'jsonl' | 'json' | 'text' | 'hh-rlhf';
export type FormatOption = InputFormat | 'auto';
export const FORMAT_OPTIONS: readonly FormatOption[] = ['auto', 'jsonl', 'json', 'text', 'hh-rlhf'];

/** Field names tried, in order, when `--text-field` is not given. */
export const DEFAULT_TEXT_FIELDS = ['text', 'prompt'];
export const DEFAULT_MAX_PROMPT_BYTES = 65536;

export interface ParseOptions {
  /** Dotted path of the prompt text in JSON objects; `text`, then `prompt` when absent. */
  textField?: string;
  /** Dotted path of the prompt id in JSON objects; ids are content hashes when absent. */
  idField?: string;
  /** Largest prompt, in UTF-8 bytes. */
  maxPromptBytes: number;
}

/** A prompt read from the input, before it becomes a Prompt record. */
export interface PromptInput {
  text: string;
  /** The id from `--id-field`, or null. */
  id: string | null;
  meta: Record<string, string>;
  location: InputLocation;
  /** The record's bytes as read. */
  raw: Buffer;
}

export type InputItem = { kind: 'prompt'; prompt: PromptInput } | { kind: 'error'; error: InputRecordError };

const SNIFF_BYTES = 1024 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Picks a format from the start of the input: a JSON array, HH-RLHF lines (objects with
 * string `chosen` and `rejected`), other JSON lines, else plain text. Returns the format and
 * the chunks with the sniffed bytes put back in front.
 */
export async function sniffFormat(chunks: AsyncIterable<Buffer>): Promise<{ format: InputFormat; chunks: AsyncIterable<Buffer> }> {
  const iterator = chunks[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let head = Buffer.alloc(0);
  let ended = false;
  let format: InputFormat | undefined;
  while (format === undefined) {
    format = classify(head, ended);
    if (format !== undefined) break;
    const next = await iterator.next();
    if (next.done) ended = true;
    else {
      parts.push(next.value);
      head = Buffer.concat(parts);
    }
  }
  return { format, chunks: replay(parts, iterator) };
}

/** Returns the format that `head` shows, or undefined when more bytes are needed. */
function classify(head: Buffer, ended: boolean): InputFormat | undefined {
  let start = 0;
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) start = 3;
  while (start < head.length && isJsonWhitespace(head[start])) start++;
  if (start >= head.length) return ended ? 'text' : undefined;

  const first = head[start];
  if (first === 0x5b /* [ */) return 'json';
  if (first !== 0x7b /* { */ && first !== 0x22 /* " */) return 'text';

  const newline = head.indexOf(0x0a, start);
  if (newline < 0 && !ended && head.length < SNIFF_BYTES) return undefined;
  const line = head.subarray(start, newline < 0 ? head.length : newline);
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(line));
  } catch {
    // A line that opens with "{" but does not parse is a malformed JSON line, so the jsonl
    // parser reports it with its line number. A quote may just start a text line.
    return first === 0x7b ? 'jsonl' : 'text';
  }
  if (isHhRecord(value)) return 'hh-rlhf';
  return typeof value === 'object' || typeof value === 'string' ? 'jsonl' : 'text';
}

function isJsonWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

async function* replay(parts: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  try {
    yield* parts;
    for (;;) {
      const next = await rest.next();
      if (next.done) return;
      yield next.value;
    }
  } finally {
    await rest.return?.();
  }
}

/** Parses the input in the given format into prompts and per-record errors, in input order. */
export async function* parsePromptInputs(
  chunks: AsyncIterable<Buffer>,
  format: InputFormat,
  options: ParseOptions,
): AsyncGenerator<InputItem> {
  if (format === 'json') {
    yield* parseJsonArray(chunks, options);
    return;
  }
  // A JSON line may carry more than its prompt (escapes, other fields), so lines get room
  // beyond --max-prompt-bytes before they count as runaway.
  const maxLineBytes = Math.max(16 * 1024 * 1024, 8 * options.maxPromptBytes);
  for await (const line of splitLines(chunks, maxLineBytes)) {
    const item = parseLine(line, format, options, maxLineBytes);
    if (item !== null) yield item;
  }
}

function parseLine(line: RawLine, format: InputFormat, options: ParseOptions, maxLineBytes: number): InputItem | null {
  const location: InputLocation = { line: line.line, byteOffset: line.byteOffset };
  const fail = (problem: string, preview: string, hint: string): InputItem => ({
    kind: 'error',
    error: new InputRecordError(location, problem, preview, hint, line.bytes),
  });

  if (line.truncated) {
    return fail(`line is longer than ${maxLineBytes} bytes`, previewBytes(line.bytes.subarray(0, 24)), 'split the record or check that the input has line breaks');
  }
  let text: string;
  try {
    text = utf8.decode(line.bytes);
  } catch {
    return fail('invalid UTF-8', previewBytes(line.bytes), 'convert the input to UTF-8, for example with iconv -f latin1 -t utf-8');
  }
  if (line.line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') return null;

  if (format === 'text') return promptItem(text, null, {}, location, line.bytes, options);

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return fail(
      `invalid JSON (${errorMessage(error)})`,
      previewText(text),
      format === 'hh-rlhf' ? 'fix the line, or pass --on-error skip to leave it out' : 'fix the line, pass --format text to feed lines as plain text, or --on-error skip to leave it out',
    );
  }
  if (format === 'hh-rlhf') return hhItem(value, text, location, line.bytes, options);
  return valueItem(value, text, location, line.bytes, options);
}

/** Turns one JSON value (a line or an array element) into a prompt or an error. */
function valueItem(value: unknown, source: string, location: InputLocation, raw: Buffer, options: ParseOptions): InputItem {
  if (typeof value === 'string') return promptItem(value, null, {}, location, raw, options);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return errorItem(location, `expected a JSON object or string, got ${jsonTypeOf(value)}`, previewText(source), 'give each record as an object with a text field, or as a JSON string', raw);
  }

  const fields = options.textField !== undefined ? [options.textField] : DEFAULT_TEXT_FIELDS;
  const field = fields.find((path) => readPath(value, path) !== undefined);
  if (field === undefined) {
    const keys = Object.keys(value).slice(0, 10).join(', ');
    const expected = fields.map((path) => JSON.stringify(path)).join(' or ');
    return errorItem(location, `missing text field ${expected} (the object has keys: ${keys || 'none'})`, previewText(source), 'name the field that holds the prompt with --text-field PATH, such as --text-field messages.0.content', raw);
  }
  const text = readPath(value, field);
  if (typeof text !== 'string') {
    return errorItem(location, `text field "${field}" is ${jsonTypeOf(text)}, not a string`, previewText(source), 'point --text-field at a string field', raw);
  }
  const id = readId(value, location, source, raw, options);
  if (typeof id !== 'string' && id !== null) return id;
  return promptItem(text, id, {}, location, raw, options);
}

function hhItem(value: unknown, source: string, location: InputLocation, raw: Buffer, options: ParseOptions): InputItem {
  if (!isHhRecord(value)) {
    return errorItem(location, 'not an HH-RLHF record, which needs string fields "chosen" and "rejected"', previewText(source), 'fix the line, or pass --format jsonl for other JSON lines', raw);
  }
  let split;
  try {
    split = splitHhDialogue(value.chosen, value.rejected);
  } catch (error) {
    return errorItem(location, errorMessage(error), previewText(source), 'fix the record, or pass --on-error skip to leave it out', raw);
  }
  const id = readId(value, location, source, raw, options);
  if (typeof id !== 'string' && id !== null) return id;
  return promptItem(split.prompt, id, { 'hh.chosen': split.chosen, 'hh.rejected': split.rejected }, location, raw, options);
}

/** Returns the `--id-field` value as a string, null without the flag, or an error item. */
function readId(value: object, location: InputLocation, source: string, raw: Buffer, options: ParseOptions): string | null | InputItem {
  if (options.idField === undefined) return null;
  const id = readPath(value, options.idField);
  if (id === undefined) {
    return errorItem(location, `missing id field "${options.idField}"`, previewText(source), 'give every record an id, or drop --id-field to use content hashes', raw);
  }
  if (typeof id === 'number' && Number.isFinite(id)) return String(id);
  if (typeof id !== 'string' || id === '') {
    return errorItem(location, `id field "${options.idField}" is ${id === '' ? 'an empty string' : jsonTypeOf(id)}, not a non-empty string or number`, previewText(source), 'point --id-field at a string or number field', raw);
  }
  return id;
}

function promptItem(text: string, id: string | null, meta: Record<string, string>, location: InputLocation, raw: Buffer, options: ParseOptions): InputItem {
  if (text.trim() === '') {
    return errorItem(location, 'empty prompt', previewText(text), 'give the record some text, or remove it', raw);
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > options.maxPromptBytes) {
    return errorItem(location, `prompt is ${bytes} bytes, over the limit of ${options.maxPromptBytes}`, previewText(text), 'shorten the prompt, or raise --max-prompt-bytes', raw);
  }
  return { kind: 'prompt', prompt: { text, id, meta, location, raw } };
}

function errorItem(location: InputLocation, problem: string, preview: string, hint: string, raw: Buffer, fatal = false): InputItem {
  return { kind: 'error', error: new InputRecordError(location, problem, preview, hint, raw, fatal) };
}

/** Reads the whole input as one JSON array; a document that does not parse is one fatal error. */
async function* parseJsonArray(chunks: AsyncIterable<Buffer>, options: ParseOptions): AsyncGenerator<InputItem> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  const document = Buffer.concat(parts);

  let text: string;
  try {
    text = utf8.decode(document);
  } catch {
    // Decode line by line to say where the bad bytes are.
    for await (const line of splitLines(bufferChunks(document), document.length + 1)) {
      try {
        utf8.decode(line.bytes);
      } catch {
        yield errorItem({ line: line.line, byteOffset: line.byteOffset }, 'invalid UTF-8', previewBytes(line.bytes), 'convert the input to UTF-8, for example with iconv -f latin1 -t utf-8', line.bytes, true);
        return;
      }
    }
    throw new UsageError('the JSON input is not valid UTF-8; convert it to UTF-8, for example with iconv -f latin1 -t utf-8');
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const message = errorMessage(error);
    const position = /position (\d+)/.exec(message);
    const location: InputLocation = position === null ? {} : lineOf(text, Number(position[1]));
    yield errorItem(location, `invalid JSON document (${message})`, previewText(text.slice(0, 60)), 'fix the document, or pass --format jsonl for one JSON value per line', document, true);
    return;
  }
  if (!Array.isArray(value)) {
    yield errorItem({}, `the JSON document is ${jsonTypeOf(value)}, not an array`, previewText(text.slice(0, 60)), 'wrap the records in [ ], or pass --format jsonl for one JSON value per line', document, true);
    return;
  }
  for (let element = 0; element < value.length; element++) {
    const source = JSON.stringify(value[element]) ?? 'undefined';
    yield valueItem(value[element], source, { element }, Buffer.from(source, 'utf8'), options);
  }
}

function lineOf(text: string, position: number): InputLocation {
  let line = 1;
  for (let i = 0; i < position && i < text.length; i++) if (text.charCodeAt(i) === 0x0a) line++;
  return { line, byteOffset: Buffer.byteLength(text.slice(0, position), 'utf8') };
}

async function* bufferChunks(buffer: Buffer): AsyncGenerator<Buffer> {
  yield buffer;
}
