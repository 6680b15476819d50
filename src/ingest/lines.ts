/** Splitting of a byte stream into lines that keep their line number and byte offset. */

export interface RawLine {
  /** The line's bytes without its "\n" or "\r\n" terminator. */
  bytes: Buffer;
  /** 1-based line number. */
  line: number;
  /** Offset of the line's first byte in the input. */
  byteOffset: number;
  /** True when the line was longer than the limit and `bytes` holds only its start. */
  truncated: boolean;
}

/**
 * Splits chunks into lines at "\n", dropping a "\r" before it. A line longer than
 * `maxLineBytes` keeps only its first `maxLineBytes` bytes and is marked `truncated`, so one
 * runaway line cannot exhaust memory. The last line needs no terminator.
 */
export async function* splitLines(chunks: AsyncIterable<Buffer>, maxLineBytes: number): AsyncGenerator<RawLine> {
  let parts: Buffer[] = [];
  let partsLength = 0;
  let truncated = false;
  let line = 1;
  let lineStart = 0;
  let consumed = 0;

  const finish = (tail: Buffer): RawLine => {
    let bytes = partsLength === 0 ? tail : Buffer.concat([...parts, tail]);
    if (bytes.length > maxLineBytes) {
      bytes = bytes.subarray(0, maxLineBytes);
      truncated = true;
    }
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d && !truncated) bytes = bytes.subarray(0, bytes.length - 1);
    const raw: RawLine = { bytes, line, byteOffset: lineStart, truncated };
    parts = [];
    partsLength = 0;
    truncated = false;
    return raw;
  };

  for await (const chunk of chunks) {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline < 0) break;
      yield finish(chunk.subarray(start, newline));
      line++;
      lineStart = consumed + newline + 1;
      start = newline + 1;
    }
    const rest = chunk.subarray(start);
    if (partsLength + rest.length > maxLineBytes) {
      // Keep only what fits; the line is reported as truncated when its end arrives.
      const room = Math.max(0, maxLineBytes - partsLength);
      if (room > 0) parts.push(Buffer.from(rest.subarray(0, room)));
      partsLength += room;
      truncated = true;
    } else if (rest.length > 0) {
      // Copy: a reader may reuse the chunk's memory for its next read.
      parts.push(Buffer.from(rest));
      partsLength += rest.length;
    }
    consumed += chunk.length;
  }
  if (partsLength > 0 || truncated) yield finish(Buffer.alloc(0));
}
