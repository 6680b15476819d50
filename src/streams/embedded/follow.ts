/**
 * Waiting for another process's appends: a read-only embedded log cannot get the writer's
 * in-process signal, so it watches the partition directories (fs.watch) and polls as a fallback,
 * because fs.watch may miss events or be unavailable (network file systems, inotify limits).
 */
import fs from 'node:fs';
import type { Logger } from 'pino';

/** Longest wait between two checks of the segment files, in milliseconds. */
export const FOLLOW_POLL_MS = 200;

/**
 * Wakes a waiting follower when a watched directory changes, or after `pollMs`. While a wait is
 * pending, its timer keeps the Node process alive, so a follower runs until it is stopped.
 */
export class GrowthWatcher {
  private readonly watchers: fs.FSWatcher[] = [];
  /** Wakes the current wait; undefined when nobody waits. */
  private wake: (() => void) | undefined;
  /** Set by a change seen while nobody waited, so the next wait returns at once. */
  private changed = false;
  private closed = false;

  constructor(
    dirs: Iterable<string>,
    private readonly logger: Logger,
    private readonly pollMs = FOLLOW_POLL_MS,
  ) {
    for (const dir of new Set(dirs)) this.watch(dir);
  }

  /** Resolves at the next change in a watched directory, after `pollMs`, or once closed. */
  wait(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.changed) {
      this.changed = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => finish(), this.pollMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      this.wake = finish;
    });
  }

  /** Stops watching and ends a pending wait. */
  close(): void {
    this.closed = true;
    for (const watcher of this.watchers.splice(0)) watcher.close();
    this.wake?.();
  }

  private watch(dir: string): void {
    let watcher: fs.FSWatcher;
    try {
      // Watchers do not keep the process alive: only a pending wait's timer does.
      watcher = fs.watch(dir, { persistent: false }, () => this.onChange());
    } catch (error) {
      this.logger.debug({ dir, err: (error as Error).message }, 'cannot watch partition directory; polling it');
      return;
    }
    watcher.on('error', (error: Error) => {
      this.logger.debug({ dir, err: error.message }, 'watching partition directory failed; polling it');
      watcher.close();
    });
    this.watchers.push(watcher);
  }

  private onChange(): void {
    if (this.wake) this.wake();
    else this.changed = true;
  }
}
