/**
 * One partition of the embedded log: append-only segment files named by their base offset
 * (`00000000000000000000.log`), each a sequence of frames (see frame.ts).
 *
 * Opening a partition scans its segments, builds the in-memory offset index and repairs a torn
 * tail: a crash during an append can leave a partial or damaged final frame in the last segment,
 * which is truncated away because the append it belonged to was never acknowledged.
 *
 * A read-only log (another process writes) changes no file. It indexes complete, valid frames
 * only, and `refresh()` indexes the frames and segments the writer added since. A partial or
 * damaged frame at the tail is taken for an append in progress and read again later.
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
  /** Bytes of complete frames; the next append writes here, and a read-only scan resumes here. */
  size: number;
  handle: fs.FileHandle;
}

export interface PartitionLogOptions {
  /** Size at which a new segment file starts, in bytes; default 64 MiB. */
  segmentBytes?: number;
  logger: Logger;
  /** Open without creating, repairing or appending anything, for a reader beside the writer process. */
  readOnly?: boolean;
}

/** Where a scan of a segment stopped and why, when it stopped before the end of the file. */
interface ScanResult {
  position: number;
  fileSize: number;
  damage?: string;
  /** True when the scan stopped at a partial frame rather than a damaged one. */
  incomplete?: boolean;
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
  /**
   * Serialises appends, and the refreshes of a read-only log. Reads need no lock because they
   * only see offsets below `endOffset`.
   */
  private appendQueue: Promise<unknown> = Promise.resolve();
  /** Set when a read-only scan stopped at a damaged frame, to log it once rather than on every refresh. */
  private reportedDamage: string | undefined;

  private constructor(
    readonly dir: string,
    private readonly segmentBytes: number,
    private readonly logger: Logger,
    readonly readOnly: boolean,
  ) {}

  /**
   * Opens the partition directory, scanning its segments. A writable log creates the directory
   * when missing and repairs a torn tail; a read-only one expects the directory and changes nothing.
   */
  static async open(dir: string, options: PartitionLogOptions): Promise<PartitionLog> {
    const readOnly = options.readOnly === true;
    const log = new PartitionLog(dir, options.segmentBytes ?? DEFAULT_SEGMENT_BYTES, options.logger, readOnly);
    if (!readOnly) await fs.mkdir(dir, { recursive: true });
    const names = (await fs.readdir(dir)).filter((name) => SEGMENT_NAME.test(name)).sort();
    if (names.length === 0) {
      // A read-only log waits for the writer's first segment in refresh().
      if (!readOnly) await log.addSegment(0);
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
    return this.segments.length > 0 ? this.segments[0].baseOffset : 0;
  }

  /** Offset the next append gets. */
  get endOffset(): number {
    return this.positions.length;
  }

  /** Appends records and fsyncs them; resolves with the offset of the first one. */
  append(records: FrameRecord[]): Promise<number> {
    if (this.readOnly) return Promise.reject(new Error(`cannot append to ${this.dir}: the partition is open read-only`));
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

  /**
   * Indexes the frames and segments another process appended since the last scan, for a
   * read-only log; resolves with true when `endOffset` grew. Concurrent calls run one at a time.
   */
  refresh(): Promise<boolean> {
    if (!this.readOnly) return Promise.resolve(false);
    const result = this.appendQueue.then(() => this.refreshNow());
    this.appendQueue = result.catch(() => {});
    return result;
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

  private async refreshNow(): Promise<boolean> {
    const before = this.endOffset;
    for (;;) {
      const last = this.segments[this.segments.length - 1];
      if (last !== undefined) {
        const scan = await this.scanSegment(last.handle, last.file, last.size);
        last.size = scan.position;
        if (scan.position < scan.fileSize) {
          this.noteTornTail(last.file, scan);
          break;
        }
        // The writer starts a new segment only after at least one record in this one.
        if (this.endOffset === last.baseOffset) break;
      }
      // The writer starts the next segment at the offset after the last frame of this one.
      if (!(await this.openNextSegment())) break;
    }
    return this.endOffset > before;
  }

  /** Logs a damaged tail that a read-only scan waits at, once per position. */
  private noteTornTail(file: string, scan: ScanResult): void {
    if (scan.incomplete) return;
    const key = `${file}:${scan.position}`;
    if (this.reportedDamage === key) return;
    this.reportedDamage = key;
    // Usually the writer is in the middle of this append; after a crash, its next start truncates it.
    this.logger.debug({ file, position: scan.position, reason: scan.damage }, 'waiting at an unfinished frame');
  }

  /** Opens the segment that starts at `endOffset` when the writer has created it. */
  private async openNextSegment(): Promise<boolean> {
    const baseOffset = this.endOffset;
    const file = path.join(this.dir, segmentFileName(baseOffset));
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
    this.segments.push({ baseOffset, file, size: 0, handle });
    return true;
  }

  /**
   * Indexes the complete, valid frames of a segment from byte `from`, and returns where it
   * stopped: the end of the file, or the first partial or damaged frame.
   */
  private async scanSegment(handle: fs.FileHandle, file: string, from: number): Promise<ScanResult> {
    const fileSize = (await handle.stat()).size;
    if (fileSize < from) {
      throw new Error(
        `segment ${file} shrank to ${fileSize} bytes below the ${from} bytes already read; the writer removed ` +
          'records this reader has seen (a failed append), so restart the reader',
      );
    }
    let position = from;
    let window = Buffer.alloc(0);
    let windowStart = from;

    while (position < fileSize) {
      const view = window.subarray(position - windowStart);
      const check = checkFrame(view);
      if (check.kind === 'complete') {
        this.positions.push(position);
        this.pushTimestamp(check.timestamp);
        position += check.length;
        continue;
      }
      if (check.kind === 'corrupt') return { position, fileSize, damage: check.reason };
      if (windowStart + window.length >= fileSize) {
        return { position, fileSize, damage: `incomplete frame of ${fileSize - position} bytes`, incomplete: true };
      }
      // Read the whole next frame when its length is known, else a chunk.
      const frameLength = view.length >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + view.readUInt32BE(0) : 0;
      const length = Math.min(Math.max(SCAN_CHUNK_BYTES, frameLength), fileSize - position);
      window = Buffer.allocUnsafe(length);
      windowStart = position;
      const { bytesRead } = await handle.read(window, 0, length, position);
      window = window.subarray(0, bytesRead);
      if (bytesRead === 0) return { position, fileSize, damage: 'file ended early', incomplete: true };
    }
    return { position, fileSize };
  }

  /**
   * Scans a segment's frames into the index. A writable log truncates a torn tail of the last
   * segment; a read-only one stops before it and leaves it to refresh().
   */
  private async loadSegment(file: string, baseOffset: number, isLast: boolean): Promise<void> {
    const handle = await fs.open(file, isLast && !this.readOnly ? 'r+' : 'r');
    const scan = await this.scanSegment(handle, file, 0).catch(async (error: unknown) => {
      await handle.close();
      throw error;
    });
    const { position, fileSize, damage } = scan;

    if (damage !== undefined) {
      if (!isLast) {
        await handle.close();
        throw new Error(
          `segment ${file} is damaged at byte ${position} (${damage}) and is not the last segment, so truncating ` +
            'it would lose later records; move the data directory away or restore it from a backup',
        );
      }
      if (this.readOnly) {
        this.noteTornTail(file, scan);
      } else {
        this.logger.warn({ file, position, droppedBytes: fileSize - position, reason: damage }, 'truncating torn tail of segment');
        await handle.truncate(position);
        await handle.sync();
      }
    }
    this.segments.push({ baseOffset, file, size: position, handle });
  }
}
