/**
 * Byte input of `tsalign feed`: a file or stdin, gunzipped when it starts with the gzip magic
 * bytes, and optionally followed as it grows, like `tail -f`.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError, errorMessage } from '../util/errors';
import { childLogger } from '../util/logger';

const GZIP_MAGIC = [0x1f, 0x8b];
const READ_SIZE = 64 * 1024;

export interface InputOptions {
  /** Keep reading a growing file after its end until `signal` aborts. */
  follow?: boolean;
  /** Ends following; a plain read ends at the end of the input regardless. */
  signal?: AbortSignal;
  /** Milliseconds between size checks while following. */
  pollIntervalMs?: number;
}

/** An opened input: its bytes, already gunzipped, and whether it was gzip. */
export interface ByteInput {
  /** `-` for stdin, else the path as given. */
  name: string;
  gzip: boolean;
  chunks: AsyncIterable<Buffer>;
}

/**
 * Opens a file, or stdin for `-`, and detects gzip by its first two bytes. Throws UsageError
 * when the file cannot be opened, and when `follow` is asked for stdin or a gzip file.
 */
export async function openInput(path: string, options: InputOptions = {}): Promise<ByteInput> {
  const log = childLogger('feed-input', { input: path });
  let raw: AsyncIterable<Buffer>;
  if (path === '-') {
    // NOTE: a stop signal does not end a read from stdin; reading ends when stdin closes.
    if (options.follow) {
      throw new UsageError('--follow needs a FILE: stdin is read until it closes anyway; drop --follow or name a file');
    }
    raw = process.stdin as AsyncIterable<Buffer>;
  } else {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      throw new UsageError(`cannot open input file ${JSON.stringify(path)}: ${errorMessage(error)}; check the path, or pass - to read stdin`, {
        cause: error,
      });
    }
    raw = options.follow ? followFile(handle, path, options, log) : readFile(handle);
  }

  const { head, rest } = await peek(raw, GZIP_MAGIC.length);
  const gzip = head.length >= 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
  if (gzip && options.follow) {
    await rest.return?.();
    throw new UsageError(`--follow cannot read the gzip file ${JSON.stringify(path)}: a compressed file cannot be followed as it grows; drop --follow`);
  }
  const chunks = prepend(head, rest);
  return { name: path, gzip, chunks: gzip ? gunzip(chunks, path) : chunks };
}

async function* readFile(handle: FileHandle): AsyncGenerator<Buffer> {
  try {
    for (;;) {
      const buffer = Buffer.allocUnsafe(READ_SIZE);
      const { bytesRead } = await handle.read(buffer, 0, READ_SIZE, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/**
 * Reads to the end, then polls the file's size and reads what is appended until the signal
 * aborts. A file that shrinks was truncated or replaced, so reading starts over at offset 0.
 */
async function* followFile(
  handle: FileHandle,
  path: string,
  options: InputOptions,
  log: ReturnType<typeof childLogger>,
): AsyncGenerator<Buffer> {
  const interval = options.pollIntervalMs ?? 250;
  let position = 0;
  try {
    while (!options.signal?.aborted) {
      const buffer = Buffer.allocUnsafe(READ_SIZE);
      const { bytesRead } = await handle.read(buffer, 0, READ_SIZE, position);
      if (bytesRead > 0) {
        position += bytesRead;
        yield buffer.subarray(0, bytesRead);
        continue;
      }
      const { size } = await stat(path);
      if (size < position) {
        log.warn({ size, position }, 'input file shrank, reading it again from the start');
        position = 0;
        continue;
      }
      try {
        await sleep(interval, undefined, { signal: options.signal });
      } catch {
        // The signal aborted the wait: following ends here.
        return;
      }
    }
  } finally {
    await handle.close();
  }
}

/** Reads from `source` until at least `count` bytes arrived or it ended. */
async function peek(source: AsyncIterable<Buffer>, count: number): Promise<{ head: Buffer; rest: AsyncIterator<Buffer> }> {
  const rest = source[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let length = 0;
  while (length < count) {
    const next = await rest.next();
    if (next.done) break;
    parts.push(next.value);
    length += next.value.length;
  }
  return { head: Buffer.concat(parts), rest };
}

async function* prepend(head: Buffer, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  try {
    if (head.length > 0) yield head;
    for (;;) {
      const next = await rest.next();
      if (next.done) return;
      yield next.value;
    }
  } finally {
    await rest.return?.();
  }
}

async function* gunzip(chunks: AsyncIterable<Buffer>, path: string): AsyncGenerator<Buffer> {
  const inflater = createGunzip();
  pipeline(Readable.from(chunks), inflater, () => {
    // Errors reach the consumer through the inflater's iterator below.
  });
  try {
    for await (const chunk of inflater) yield chunk as Buffer;
  } catch (error) {
    throw new UsageError(`cannot decompress the gzip input ${JSON.stringify(path)}: ${errorMessage(error)}; check that the file is complete`, {
      cause: error,
    });
  }
}
