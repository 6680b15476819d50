/**
 * The embedded log's single-writer guard: a `LOCK` file in the data directory naming the pid
 * that holds it. A lock left by a process that has exited is stale and gets taken over.
 * Read-only transports do not take it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

interface LockContent {
  pid: number;
  hostname: string;
  startedAt: string;
}

export const LOCK_FILE_NAME = 'LOCK';

export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
  constructor(
    readonly dataDir: string,
    /** Pid in the lock file, or -1 when its holder had not written it yet. */
    readonly holderPid: number,
  ) {
    super(
      `data directory ${dataDir} is in use by ${holderPid === -1 ? 'a starting process' : `process ${holderPid}`}` +
        (holderPid === process.pid ? ' (this process: another embedded transport on it is still open)' : '') +
        `; the embedded log allows one writer process at a time, so stop that process, use another --data-dir, ` +
        'or use Kafka (--brokers) to write from several processes (readers such as `tsalign tap` need no lock)',
    );
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the lock of `dataDir` and returns the function that releases it. Throws
 * DataDirLockedError when a live process on this host holds it.
 */
export function acquireDataDirLock(dataDir: string): () => void {
  const file = path.join(dataDir, LOCK_FILE_NAME);
  const content: LockContent = { pid: process.pid, hostname: os.hostname(), startedAt: new Date().toISOString() };

  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(content)}\n`, { flag: 'wx' });
      return () => releaseLock(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }

    const holder = readLock(file);
    // NOTE: a lock from another host (a data directory on a shared file system) cannot be
    // checked for liveness, so it is treated as held.
    if (holder && (holder.hostname !== os.hostname() || isAlive(holder.pid))) {
      throw new DataDirLockedError(dataDir, holder.pid);
    }
    if (!holder && isFresh(file)) {
      // Another process has created the file and not yet written its pid.
      throw new DataDirLockedError(dataDir, -1);
    }
    // The holder has exited, or the file is unreadable and old: the lock is stale.
    fs.rmSync(file, { force: true });
  }
  throw new Error(`taking the lock ${file} failed twice; another process may be starting on ${dataDir}, so try again`);
}

function readLock(file: string): LockContent | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockContent>;
    if (typeof parsed.pid === 'number' && typeof parsed.hostname === 'string') return parsed as LockContent;
  } catch {
    // An unreadable lock (torn write during a crash) is stale.
  }
  return undefined;
}

function isFresh(file: string): boolean {
  try {
    return Date.now() - fs.statSync(file).mtimeMs < 5_000;
  } catch {
    return false;
  }
}

function releaseLock(file: string): void {
  const holder = readLock(file);
  if (holder?.pid === process.pid) fs.rmSync(file, { force: true });
}
