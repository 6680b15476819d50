/**
 * One partition of the embedded log: append-only segment files named by their base offset
 * (`00000000000000000000.log`), each a sequence of frames (see frame.ts).
 *
 * Opening a partition scans its segments, builds the in-memory offset index and repairs a torn
 * tail: a crash during an append can leave a partial or damaged final frame in the last segment,
 * which is truncated away because the append it belonged to was never acknowledged.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { checkFrame, decodeFrame, encodeFrame, FRAME_HEADER_BYTES, type FrameRecord } from './frame';

export interface StoredRecord extends FrameRecord {
  offset: number;
}

interface Segment {
  baseOffset: number;
  file: string;
  /** Bytes of complete frames; the next append writes here. */
  size: number;
  handle: fs.FileHandle;
}

const SEGMENT_NAME = /^(\d{20})\.log$/;
const SCAN_CHUNK_BYTES = 1024 * 1024;

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

function segmentFileName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.log`;
}

/** Flushes a directory entry (a created, renamed or deleted file) to disk. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export class PartitionLog {
  private readonly segments: Segment[] = [];
  /** File position of each record within its segment, indexed by offset. */
  private readonly positions: number[] = [];
  /**
   * The largest timestamp among offsets 0..i, indexed by offset. It never decreases, so a binary
   * search on it finds the first record at or after a time even when timestamps are not ordered.
   */
  private readonly maxTimestamps: number[] = [];
  /** Serialises appends; reads need no lock because they only see offsets below `endOffset`. */
  private appendQueue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly segmentBytes: number,
    private readonly logger: Logger,
  ) {}

  /** Opens (or creates) the partition directory, scanning and repairing its segments. */
  static async open(dir: string, options: { segmentBytes?: number; logger: Logger }): Promise<PartitionLog> {
    const log = new PartitionLog(dir, options.segmentBytes ?? DEFAULT_SEGMENT_BYTES, options.logger);
    await fs.mkdir(dir, { recursive: true });
    const names = (await fs.readdir(dir)).filter((name) => SEGMENT_NAME.test(name)).sort();
    if (names.length === 0) {
      await log.addSegment(0);
      return log;
    }
    for (const [index, name] of names.entries()) {
      const baseOffset = Number(SEGMENT_NAME.exec(name)![1]);
      if (baseOffset !== log.positions.length) {
        throw new Error(
          `segment ${path.join(dir, name)} starts at offset ${baseOffset} but the segments before it end at ` +
            `${log.positions.length}; the data directory is damaged, so move it away or restore it from a backup`,
        );
      }
      await log.loadSegment(path.join(dir, name), baseOffset, index === names.length - 1);
    }
    return log;
  }

  /** Log start offset. The embedded log keeps everything, so it is the first segment's base. */
  get startOffset(): number {
    return this.segments[0].baseOffset;
  }

  /** Offset the next append gets. */
  get endOffset(): number {
    return this.positions.length;
  }

  /** Appends records and fsyncs them; resolves with the offset of the first one. */
  append(records: FrameRecord[]): Promise<number> {
    const result = this.appendQueue.then(() => this.appendNow(records));
    this.appendQueue = result.catch(() => {});
    return result;
  }

  /**
   * Reads up to `maxRecords` records from `offset`, stopping at `maxBytes` (but returning at
   * least one record when one exists) and at the end of the offset's segment.
   */
  async read(offset: number, maxRecords: number, maxBytes: number): Promise<StoredRecord[]> {
    const end = this.endOffset;
    if (offset < this.startOffset || offset > end) {
      throw new RangeError(`offset ${offset} is outside ${this.dir}'s range [${this.startOffset}, ${end}]`);
    }
    if (offset === end) return [];

    const segmentIndex = this.segmentIndexOf(offset);
    const segment = this.segments[segmentIndex];
    const segmentEnd = segmentIndex + 1 < this.segments.length ? this.segments[segmentIndex + 1].baseOffset : end;
    const startPosition = this.positions[offset];
    const positionOf = (next: number) => (next < segmentEnd ? this.positions[next] : segment.size);

    let count = Math.min(maxRecords, segmentEnd - offset);
    while (count > 1 && positionOf(offset + count) - startPosition > maxBytes) count = Math.ceil(count / 2);
    const length = positionOf(offset + count) - startPosition;

    const data = Buffer.allocUnsafe(length);
    const { bytesRead } = await segment.handle.read(data, 0, length, startPosition);
    if (bytesRead !== length) {
      throw new Error(`short read in ${segment.file}: expected ${length} bytes at ${startPosition}, got ${bytesRead}`);
    }

    const records: StoredRecord[] = [];
    let at = 0;
    for (let i = 0; i < count; i++) {
      const frame = decodeFrame(data.subarray(at));
      records.push({ offset: offset + i, timestamp: frame.timestamp, key: frame.key, headers: frame.headers, value: frame.value });
      at += frame.length;
    }
    return records;
  }

  /** First offset whose record has timestamp >= `at`, or the end offset when there is none. */
  offsetForTime(at: number): number {
    let low = this.startOffset;
    let high = this.endOffset;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.maxTimestamps[middle] >= at) high = middle;
      else low = middle + 1;
    }
    return low;
  }

  /** Waits for pending appends and closes the segment files. */
  async close(): Promise<void> {
    await this.appendQueue;
    for (const segment of this.segments) await segment.handle.close();
    this.segments.length = 0;
  }

  private async appendNow(records: FrameRecord[]): Promise<number> {
    const firstOffset = this.endOffset;
    const frames = records.map(encodeFrame);
    let next = 0;
    while (next < frames.length) {
      let segment = this.segments[this.segments.length - 1];
      if (segment.size > 0 && segment.size + frames[next].length > this.segmentBytes) {
        segment = await this.addSegment(this.endOffset);
      }

      // Take as many frames as fit in the segment (at least one, however large).
      let bytes = frames[next].length;
      let stop = next + 1;
      while (stop < frames.length && segment.size + bytes + frames[stop].length <= this.segmentBytes) {
        bytes += frames[stop].length;
        stop += 1;
      }
      const chunk = Buffer.concat(frames.slice(next, stop), bytes);

      try {
        await segment.handle.write(chunk, 0, chunk.length, segment.size);
        await segment.handle.datasync();
      } catch (error) {
        // Cut a partial write off so the next append continues after the last complete frame.
        await segment.handle.truncate(segment.size).catch(() => {});
        throw error;
      }

      let position = segment.size;
      for (let i = next; i < stop; i++) {
        this.positions.push(position);
        this.pushTimestamp(records[i].timestamp);
        position += frames[i].length;
      }
      segment.size = position;
      next = stop;
    }
    return firstOffset;
  }

  private pushTimestamp(timestamp: number): void {
    const previous = this.maxTimestamps.length > 0 ? this.maxTimestamps[this.maxTimestamps.length - 1] : -Infinity;
    this.maxTimestamps.push(Math.max(previous, timestamp));
  }

  private segmentIndexOf(offset: number): number {
    let low = 0;
    let high = this.segments.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if (this.segments[middle].baseOffset <= offset) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  private async addSegment(baseOffset: number): Promise<Segment> {
    const file = path.join(this.dir, segmentFileName(baseOffset));
    const handle = await fs.open(file, 'a+');
    await handle.close();
    const segment: Segment = { baseOffset, file, size: 0, handle: await fs.open(file, 'r+') };
    await fsyncDirectory(this.dir);
    this.segments.push(segment);
    return segment;
  }

  /** Scans a segment's frames into the index; truncates a torn tail of the last segment. */
  private async loadSegment(file: string, baseOffset: number, isLast: boolean): Promise<void> {
    const handle = await fs.open(file, isLast ? 'r+' : 'r');
    const fileSize = (await handle.stat()).size;
    let position = 0;
    let window = Buffer.alloc(0);
    let windowStart = 0;
    let damage: string | undefined;

    while (position < fileSize) {
      const view = window.subarray(position - windowStart);
      const check = checkFrame(view);
      if (check.kind === 'complete') {
        this.positions.push(position);
        this.pushTimestamp(check.timestamp);
        position += check.length;
        continue;
      }
      if (check.kind === 'corrupt') {
        damage = check.reason;
        break;
      }
      if (windowStart + window.length >= fileSize) {
        damage = `incomplete frame of ${fileSize - position} bytes`;
        break;
      }
      // Read the whole next frame when its length is known, else a chunk.
      const frameLength = view.length >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + view.readUInt32BE(0) : 0;
      const length = Math.min(Math.max(SCAN_CHUNK_BYTES, frameLength), fileSize - position);
      window = Buffer.allocUnsafe(length);
      windowStart = position;
      const { bytesRead } = await handle.read(window, 0, length, position);
      window = window.subarray(0, bytesRead);
    }

    if (damage !== undefined) {
      if (!isLast) {
        await handle.close();
        throw new Error(
          `segment ${file} is damaged at byte ${position} (${damage}) and is not the last segment, so truncating ` +
            'it would lose later records; move the data directory away or restore it from a backup',
        );
      }
      this.logger.warn(
        { file, position, droppedBytes: fileSize - position, reason: damage },
        'truncating torn tail of segment',
      );
      await handle.truncate(position);
      await handle.sync();
    }
    this.segments.push({ baseOffset, file, size: position, handle });
  }
}
