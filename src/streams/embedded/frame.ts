/**
 * The record frame of the embedded log's segment files. All integers are big-endian:
 *
 *   u32 bodyLength | u32 crc32(body) | body
 *   body = i64 timestamp (ms) | i32 keyLength (-1: null key) | key
 *        | u32 headerCount | (u32 nameLength | name (UTF-8) | u32 valueLength | value) * headerCount
 *        | u32 valueLength | value
 *
 * Offsets are not stored: a record's offset is the segment's base offset plus its frame index.
 */
import { crc32 } from 'node:zlib';

export const FRAME_HEADER_BYTES = 8;

/** Timestamp, key length, header count and value length of a record without key, headers or value. */
const MIN_FRAME_BODY_BYTES = 8 + 4 + 4 + 4;

/** The largest body a frame may declare; a larger length field means a corrupt frame. */
export const MAX_FRAME_BODY_BYTES = 256 * 1024 * 1024;

export interface FrameRecord {
  timestamp: number;
  key: Buffer | null;
  headers: Record<string, Buffer>;
  value: Buffer;
}

/** Encodes one record as a frame. */
export function encodeFrame(record: FrameRecord): Buffer {
  const headerEntries = Object.entries(record.headers).map(([name, value]) => [Buffer.from(name, 'utf8'), value] as const);
  let bodyLength = 8 + 4 + (record.key?.length ?? 0) + 4 + 4 + record.value.length;
  for (const [name, value] of headerEntries) bodyLength += 4 + name.length + 4 + value.length;
  if (bodyLength > MAX_FRAME_BODY_BYTES) {
    throw new RangeError(`record of ${bodyLength} bytes exceeds the embedded log's limit of ${MAX_FRAME_BODY_BYTES} bytes`);
  }

  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyLength);
  let at = FRAME_HEADER_BYTES;
  frame.writeBigInt64BE(BigInt(Math.trunc(record.timestamp)), at);
  at += 8;
  if (record.key === null) {
    frame.writeInt32BE(-1, at);
    at += 4;
  } else {
    frame.writeInt32BE(record.key.length, at);
    at += 4;
    at += record.key.copy(frame, at);
  }
  frame.writeUInt32BE(headerEntries.length, at);
  at += 4;
  for (const [name, value] of headerEntries) {
    frame.writeUInt32BE(name.length, at);
    at += 4;
    at += name.copy(frame, at);
    frame.writeUInt32BE(value.length, at);
    at += 4;
    at += value.copy(frame, at);
  }
  frame.writeUInt32BE(record.value.length, at);
  at += 4;
  record.value.copy(frame, at);

  frame.writeUInt32BE(bodyLength, 0);
  frame.writeUInt32BE(crc32(frame.subarray(FRAME_HEADER_BYTES)), 4);
  return frame;
}

/** Result of checking the frame at the start of a buffer. */
export type FrameCheck =
  | { kind: 'complete'; length: number; timestamp: number }
  | { kind: 'incomplete' }
  | { kind: 'corrupt'; reason: string };

/**
 * Checks the frame at the start of `data` without decoding its fields: whether all of it is
 * there and its checksum matches. Recovery uses it to find a torn or damaged tail.
 */
export function checkFrame(data: Buffer): FrameCheck {
  if (data.length < FRAME_HEADER_BYTES) return { kind: 'incomplete' };
  const bodyLength = data.readUInt32BE(0);
  if (bodyLength < MIN_FRAME_BODY_BYTES || bodyLength > MAX_FRAME_BODY_BYTES) {
    return { kind: 'corrupt', reason: `invalid body length ${bodyLength}` };
  }
  if (data.length < FRAME_HEADER_BYTES + bodyLength) return { kind: 'incomplete' };
  const body = data.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + bodyLength);
  const expected = data.readUInt32BE(4);
  const actual = crc32(body);
  if (actual !== expected) {
    return { kind: 'corrupt', reason: `crc32 mismatch (stored ${expected}, computed ${actual})` };
  }
  return { kind: 'complete', length: FRAME_HEADER_BYTES + bodyLength, timestamp: Number(body.readBigInt64BE(0)) };
}

/** Decodes a complete, checked frame at the start of `data`. The buffers share `data`'s memory. */
export function decodeFrame(data: Buffer): FrameRecord & { length: number } {
  const bodyLength = data.readUInt32BE(0);
  let at = FRAME_HEADER_BYTES;
  const timestamp = Number(data.readBigInt64BE(at));
  at += 8;
  const keyLength = data.readInt32BE(at);
  at += 4;
  let key: Buffer | null = null;
  if (keyLength >= 0) {
    key = data.subarray(at, at + keyLength);
    at += keyLength;
  }
  const headerCount = data.readUInt32BE(at);
  at += 4;
  const headers: Record<string, Buffer> = {};
  for (let i = 0; i < headerCount; i++) {
    const nameLength = data.readUInt32BE(at);
    at += 4;
    const name = data.toString('utf8', at, at + nameLength);
    at += nameLength;
    const valueLength = data.readUInt32BE(at);
    at += 4;
    headers[name] = data.subarray(at, at + valueLength);
    at += valueLength;
  }
  const valueLength = data.readUInt32BE(at);
  at += 4;
  const value = data.subarray(at, at + valueLength);
  return { timestamp, key, headers, value, length: FRAME_HEADER_BYTES + bodyLength };
}
