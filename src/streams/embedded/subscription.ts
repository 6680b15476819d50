/**
 * A subscription to the embedded log: reads each assigned partition from its start offset and
 * then tails it. In the writer process, appends wake a waiting subscription through an
 * AppendSignal, so an idle subscription polls nothing. On a read-only log, another process
 * appends, so an idle subscription refreshes its partitions whenever a GrowthWatcher wakes it.
 */
import type { Logger } from 'pino';
import type { ConsumedMessage, Subscription } from '../transport';
import { GrowthWatcher } from './follow';
import type { PartitionLog } from './partition-log';

/** Most records and bytes handed to one `eachBatch` call. */
export const MAX_BATCH_RECORDS = 500;
export const MAX_BATCH_BYTES = 1024 * 1024;

/** Wakes everyone waiting when records are appended. */
export class AppendSignal {
  /** The promise every waiter shares until the next notify(), created on first request. */
  private pending: { promise: Promise<void>; resolve: () => void } | undefined;

  /** Resolves at the next `notify()`. Take it before checking for data, so no append is missed. */
  next(): Promise<void> {
    if (!this.pending) {
      let resolve!: () => void;
      const promise = new Promise<void>((settle) => (resolve = settle));
      this.pending = { promise, resolve };
    }
    return this.pending.promise;
  }

  notify(): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.resolve();
  }
}

export interface AssignedPartition {
  topic: string;
  partition: number;
  log: PartitionLog;
  /** Next offset to read. */
  nextOffset: number;
}

export class EmbeddedSubscription implements Subscription {
  readonly done: Promise<void>;
  /** Set by stop(); the loop checks it before each read and each handler call. */
  private stopping = false;
  /** Resolves when stop() is called, to end a wait for appends. */
  private readonly stopRequested: Promise<void>;
  private requestStop!: () => void;
  /** Watches the partition directories when another process appends; undefined in the writer. */
  private readonly watcher: GrowthWatcher | undefined;

  constructor(
    private readonly partitions: AssignedPartition[],
    private readonly eachBatch: (messages: ConsumedMessage[]) => Promise<void>,
    private readonly appended: AppendSignal,
    private readonly logger: Logger,
  ) {
    this.stopRequested = new Promise((resolve) => (this.requestStop = resolve));
    const followed = partitions.filter((assigned) => assigned.log.readOnly);
    // A directory watch reports both new segment files and writes to existing ones.
    this.watcher = followed.length > 0 ? new GrowthWatcher(followed.map((assigned) => assigned.log.dir), logger) : undefined;
    this.done = this.run();
    // Callers may only call stop() and never look at `done`; its failure is still logged below.
    this.done.catch(() => {});
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.requestStop();
    this.watcher?.close();
    await this.done.catch(() => {});
  }

  private async run(): Promise<void> {
    this.logger.debug({ partitions: this.partitions.map(({ topic, partition, nextOffset }) => ({ topic, partition, nextOffset })) }, 'subscription started');
    try {
      while (!this.stopping) {
        const appended = this.appended.next();
        let delivered = false;

        // One batch per partition per pass keeps a busy partition from starving the others.
        for (const assigned of this.partitions) {
          if (this.stopping) break;
          const records = await assigned.log.read(assigned.nextOffset, MAX_BATCH_RECORDS, MAX_BATCH_BYTES);
          if (records.length === 0 || this.stopping) continue;

          const messages: ConsumedMessage[] = records.map((record) => ({
            topic: assigned.topic,
            partition: assigned.partition,
            offset: record.offset,
            key: record.key,
            value: record.value,
            headers: record.headers,
            timestamp: record.timestamp,
          }));
          await this.eachBatch(messages);
          assigned.nextOffset = records[records.length - 1].offset + 1;
          delivered = true;
        }

        if (delivered || this.stopping) continue;
        if (this.watcher === undefined) {
          await Promise.race([appended, this.stopRequested]);
        } else if (!(await this.refreshPartitions())) {
          await this.watcher.wait();
        }
      }
      this.logger.debug('subscription stopped');
    } catch (error) {
      this.logger.error({ err: error }, 'subscription failed');
      throw error;
    } finally {
      this.watcher?.close();
    }
  }

  /** Indexes what another process appended to the read-only partitions; true when any grew. */
  private async refreshPartitions(): Promise<boolean> {
    let grew = false;
    for (const assigned of this.partitions) {
      if (await assigned.log.refresh()) grew = true;
    }
    return grew;
  }
}
