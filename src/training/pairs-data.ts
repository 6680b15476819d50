/**
 * Reading of preference pairs from JSON-lines files, plain or gzip-compressed.
 *
 * Two record shapes are accepted on each line:
 * - `{"prompt": ..., "chosen": ..., "rejected": ..., "margin"?: number}`: a pair as it is;
 * - an Anthropic HH-RLHF record `{"chosen": dialogue, "rejected": dialogue}` without `prompt`,
 *   split into prompt and responses by `splitHhDialogue`.
 * Gzip is detected by its magic bytes (1f 8b), not by the file name.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { splitHhDialogue } from '../ingest/hh-rlhf';
import { Random } from '../models/random';
import { UsageError, errorMessage } from '../util/errors';

/** One preference pair read from a file. */
export interface PreferenceExample {
  prompt: string;
  chosen: string;
  rejected: string;
  /** Minimum score gap the chosen response should win by, when the record gives one. */
  margin?: number;
  /** 1-based line number in the (decompressed) file, for error messages. */
  line: number;
}

/** The window of records to read from a file. */
export interface ReadPairsOptions {
  /** Records to pass over before the first one returned; default 0. */
  skip?: number;
  /** Maximum number of records to return; default all. */
  limit?: number;
}

const GZIP_MAGIC = [0x1f, 0x8b];

/** True when the file starts with the gzip magic bytes. */
export async function isGzipFile(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const header = Buffer.alloc(2);
    const { bytesRead } = await handle.read(header, 0, 2, 0);
    return bytesRead === 2 && header[0] === GZIP_MAGIC[0] && header[1] === GZIP_MAGIC[1];
  } finally {
    await handle.close();
  }
}

/**
 * Parses one JSON line into a pair. Throws a UsageError that names the file, the line and the
 * problem.
 */
export function parsePairLine(text: string, line: number, source: string): PreferenceExample {
  const where = `${source}:${line}`;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${where}: invalid JSON (${errorMessage(error)}); each line must be one JSON object`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${where}: expected a JSON object with "chosen" and "rejected", got ${describe(value)}`);
  }
  const record = value as Record<string, unknown>;
  for (const field of ['chosen', 'rejected'] as const) {
    if (typeof record[field] !== 'string') {
      throw new UsageError(`${where}: missing string field "${field}" (got ${describe(record[field])}); each record needs "chosen" and "rejected"`);
    }
  }
  const chosen = record.chosen as string;
  const rejected = record.rejected as string;
  const margin = parseMargin(record.margin, where);

  if (record.prompt === undefined) {
    try {
      return { ...splitHhDialogue(chosen, rejected), ...(margin === undefined ? {} : { margin }), line };
    } catch (error) {
      throw new UsageError(`${where}: record has no "prompt" and is not a valid HH-RLHF dialogue pair: ${errorMessage(error)}`);
    }
  }
  if (typeof record.prompt !== 'string') {
    throw new UsageError(`${where}: field "prompt" must be a string, got ${describe(record.prompt)}`);
  }
  return { prompt: record.prompt, chosen, rejected, ...(margin === undefined ? {} : { margin }), line };
}

function parseMargin(value: unknown, where: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new UsageError(`${where}: field "margin" must be a finite number, got ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

/**
 * Reads preference pairs from a JSON-lines file, gzip or plain, skipping blank lines. `skip`
 * and `limit` count records, not lines, and reading stops once `limit` records are in.
 * Throws a UsageError when the file is missing or a record is malformed.
 */
export async function readPreferencePairs(path: string, options: ReadPairsOptions = {}): Promise<PreferenceExample[]> {
  const skip = options.skip ?? 0;
  const limit = options.limit ?? Infinity;
  if (!Number.isInteger(skip) || skip < 0) throw new UsageError(`skip must be a non-negative integer, got ${skip}`);
  if (!(limit === Infinity || (Number.isInteger(limit) && limit >= 0))) {
    throw new UsageError(`limit must be a non-negative integer, got ${limit}`);
  }

  let gzip: boolean;
  try {
    gzip = await isGzipFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UsageError(`pairs file not found: ${path}; pass a JSON-lines file of preference pairs`);
    throw new UsageError(`cannot read pairs file ${path}: ${errorMessage(error)}`);
  }

  const pairs: PreferenceExample[] = [];
  if (limit === 0) return pairs;
  const file = createReadStream(path);
  const input = gzip ? file.pipe(createGunzip()) : file;
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNumber = 0;
  let records = 0;
  try {
    for await (const text of lines) {
      lineNumber++;
      if (text.trim() === '') continue;
      records++;
      if (records <= skip) continue;
      pairs.push(parsePairLine(text, lineNumber, path));
      if (pairs.length >= limit) break;
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`cannot read pairs file ${path} near line ${lineNumber}: ${errorMessage(error)}`);
  } finally {
    lines.close();
    file.destroy();
  }
  return pairs;
}

/**
 * Splits examples into a training and a validation part. The validation part is
 * round(fraction * n) examples drawn by a seeded Fisher-Yates shuffle, so the same seed gives
 * the same split. Both parts keep the file order.
 */
export function splitHoldout<T>(examples: readonly T[], fraction: number, seed: number): { train: T[]; validation: T[] } {
  if (!(fraction >= 0 && fraction < 1)) {
    throw new UsageError(`holdout fraction must be in [0, 1), got ${fraction}`);
  }
  const count = Math.round(fraction * examples.length);
  const order = examples.map((_, i) => i);
  const random = new Random(seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random.nextFloat() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const held = new Set(order.slice(0, count));
  const train: T[] = [];
  const validation: T[] = [];
  examples.forEach((example, i) => (held.has(i) ? validation : train).push(example));
  return { train, validation };
}
