/**
 * Committed consumer-group offsets of the embedded log: one JSON file per group under
 * `<dataDir>/groups/`, `{ "<topic>": { "<partition>": nextOffset } }`. Each commit replaces the
 * file atomically (write a temporary file, fsync, rename, fsync the directory), so a crash
 * keeps either the old or the new commits, never a torn file.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { RecordPosition } from '../transport';
import { fsyncDirectory } from './partition-log';

type GroupOffsets = Record<string, Record<string, number>>;

export class GroupOffsetStore {
  private readonly groups = new Map<string, GroupOffsets>();
  /** Serialises writes so a slower earlier commit cannot overwrite a later one. */
  private writeQueue: Promise<unknown> = Promise.resolve();

  /**
   * `cache` keeps each group's offsets in memory after the first read, which is right for the
   * writer process, the only one that commits. A reader beside it passes false to see new commits.
   */
  constructor(
    private readonly dir: string,
    private readonly cache = true,
  ) {}

  /** Committed next-to-read offset, or -1 when the group has committed nothing there. */
  async committed(groupId: string, topic: string, partition: number): Promise<number> {
    const offsets = await this.load(groupId);
    return offsets[topic]?.[String(partition)] ?? -1;
  }

  /** Stores the offsets durably; resolves once the file is renamed into place. */
  commit(groupId: string, positions: RecordPosition[]): Promise<void> {
    const result = this.writeQueue.then(async () => {
      const offsets = structuredClone(await this.load(groupId));
      for (const { topic, partition, offset } of positions) {
        (offsets[topic] ??= {})[String(partition)] = offset;
      }
      await this.write(groupId, offsets);
      if (this.cache) this.groups.set(groupId, offsets);
    });
    this.writeQueue = result.catch(() => {});
    return result;
  }

  private fileOf(groupId: string): string {
    // Group ids are free text; percent-encoding makes any of them a safe file name.
    return path.join(this.dir, `${encodeURIComponent(groupId)}.json`);
  }

  private async load(groupId: string): Promise<GroupOffsets> {
    const cached = this.cache ? this.groups.get(groupId) : undefined;
    if (cached) return cached;
    const file = this.fileOf(groupId);
    let offsets: GroupOffsets = {};
    try {
      offsets = JSON.parse(await fs.readFile(file, 'utf8')) as GroupOffsets;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new Error(`reading committed offsets of group "${groupId}" from ${file} failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    if (this.cache) this.groups.set(groupId, offsets);
    return offsets;
  }

  private async write(groupId: string, offsets: GroupOffsets): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    const file = this.fileOf(groupId);
    const temporary = `${file}.${process.pid}.tmp`;
    const handle = await fs.open(temporary, 'w');
    try {
      await handle.writeFile(`${JSON.stringify(offsets)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temporary, file);
    await fsyncDirectory(this.dir);
  }
}
