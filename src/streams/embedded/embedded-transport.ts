/**
 * The embedded transport: a durable partitioned log in a local data directory. One process
 * writes (it holds the lock); any number of processes may read it at the same time with
 * `readOnly`, and their subscriptions follow the writer's appends.
 *
 * Layout under the data directory:
 *   LOCK                                   pid of the writer process (lock.ts)
 *   topics/<topic>/topic.json              { name, partitions }, written last on creation
 *   topics/<topic>/<partition>/<base>.log  segment files (partition-log.ts, frame.ts)
 *   groups/<group>.json                    committed offsets (group-offsets.ts)
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../../util/errors';
import { childLogger, type Logger } from '../../util/logger';
import { RoundRobinPartitioner } from '../partitioner';
import {
  UnknownTopicError,
  type PartitionOffset,
  type ProduceRecord,
  type RecordPosition,
  type SubscribeOptions,
  type Subscription,
  type TopicInfo,
  type TopicSpec,
  type Transport,
} from '../transport';
import {
  choosePartition,
  resolveStartOffsets,
  validateExplicitPartitions,
  validatePartition,
  validateSubscribeOptions,
  validateTopicName,
  validateTopicSpec,
} from '../transport-support';
import { GroupOffsetStore } from './group-offsets';
import { acquireDataDirLock } from './lock';
import { fsyncDirectory, PartitionLog, type PartitionLogOptions } from './partition-log';
import { AppendSignal, EmbeddedSubscription, type AssignedPartition } from './subscription';
import type { FrameRecord } from './frame';

export const DEFAULT_DATA_DIR = '.tsalign';

export interface EmbeddedTransportOptions {
  /** Data directory; default `./.tsalign`. */
  dataDir?: string;
  /** Size at which a partition starts a new segment file, in bytes; default 64 MiB. */
  segmentBytes?: number;
  /**
   * Open for reading beside the writer process, without taking the lock: produce, commit and
   * topic creation or deletion then fail with ReadOnlyTransportError. Default false.
   */
  readOnly?: boolean;
}

/** A write (produce, commit, topic creation or deletion) on a read-only embedded transport. */
export class ReadOnlyTransportError extends Error {
  override readonly name = 'ReadOnlyTransportError';
  constructor(
    readonly dataDir: string,
    readonly operation: string,
  ) {
    super(
      `cannot ${operation}: the embedded log at ${dataDir} is open read-only; ` +
        'open it without readOnly to write, which needs the writer lock that only one process holds at a time',
    );
  }
}

interface OpenTopic {
  name: string;
  partitions: PartitionLog[];
}

const TOPIC_META_FILE = 'topic.json';

export class EmbeddedTransport implements Transport {
  readonly kind = 'embedded' as const;
  /** Absolute path of the data directory. */
  readonly address: string;

  readonly readOnly: boolean;
  private readonly segmentBytes: number | undefined;
  private readonly logger: Logger;
  private readonly topicsDir: string;
  private readonly groupOffsets: GroupOffsetStore;
  private readonly roundRobin = new RoundRobinPartitioner();
  private readonly appended = new AppendSignal();
  /** Open topics by name; a pending entry is a topic being opened (its segments scanned). */
  private readonly topics = new Map<string, Promise<OpenTopic>>();
  private readonly subscriptions = new Set<EmbeddedSubscription>();
  /** Serialises topic creation so two calls cannot create the same topic at once. */
  private createQueue: Promise<unknown> = Promise.resolve();
  private connected = false;
  /** Releases the writer lock; undefined when read-only or not connected. */
  private releaseLock: (() => void) | undefined;

  constructor(options: EmbeddedTransportOptions = {}) {
    this.address = path.resolve(options.dataDir ?? DEFAULT_DATA_DIR);
    this.segmentBytes = options.segmentBytes;
    this.readOnly = options.readOnly === true;
    this.logger = childLogger('embedded-transport', { dataDir: this.address, readOnly: this.readOnly });
    this.topicsDir = path.join(this.address, 'topics');
    this.groupOffsets = new GroupOffsetStore(path.join(this.address, 'groups'), !this.readOnly);
  }

  /**
   * Creates the data directory if needed and takes its lock. A read-only transport creates and
   * locks nothing; a data directory that does not exist yet simply has no topics.
   */
  async connect(): Promise<void> {
    if (this.connected) return;
    if (!this.readOnly) {
      await fs.mkdir(this.topicsDir, { recursive: true });
      this.releaseLock = acquireDataDirLock(this.address);
    }
    this.connected = true;
    this.logger.debug('embedded log opened');
  }

  /** Stops every subscription, closes the segment files and releases the lock. */
  async close(): Promise<void> {
    if (!this.connected) return;
    await Promise.all([...this.subscriptions].map((subscription) => subscription.stop()));
    const opened = await Promise.allSettled(this.topics.values());
    for (const result of opened) {
      if (result.status === 'fulfilled') for (const log of result.value.partitions) await log.close();
    }
    this.topics.clear();
    this.releaseLock?.();
    this.releaseLock = undefined;
    this.connected = false;
    this.logger.debug('embedded log closed');
  }

  async createTopics(specs: TopicSpec[]): Promise<void> {
    this.requireWritable('create topics');
    for (const spec of specs) validateTopicSpec(spec);
    const result = this.createQueue.then(async () => {
      for (const spec of specs) await this.createTopic(spec);
    });
    this.createQueue = result.catch(() => {});
    await result;
  }

  async listTopics(): Promise<TopicInfo[]> {
    this.requireConnected();
    const topics: TopicInfo[] = [];
    let names: string[];
    try {
      names = await fs.readdir(this.topicsDir);
    } catch (error) {
      // Only a reader can see a missing directory, before any writer has created it.
      if (this.readOnly && (error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    for (const name of names.sort()) {
      const meta = await this.readTopicMeta(name);
      if (meta) topics.push(meta);
    }
    return topics;
  }

  /** Deletes topics and their data; names that do not exist are ignored. Stop their subscriptions first. */
  async deleteTopics(names: string[]): Promise<void> {
    this.requireWritable('delete topics');
    for (const name of names) {
      validateTopicName(name);
      const open = this.topics.get(name);
      this.topics.delete(name);
      if (open) for (const log of (await open).partitions) await log.close();
      await fs.rm(path.join(this.topicsDir, name), { recursive: true, force: true });
    }
    await fsyncDirectory(this.topicsDir);
  }

  async produce(records: ProduceRecord[]): Promise<RecordPosition[]> {
    this.requireWritable('produce');
    const now = Date.now();
    const positions: RecordPosition[] = new Array(records.length);
    /** Records per partition log, with their index in `records`, in call order. */
    const batches = new Map<PartitionLog, { topic: string; partition: number; indexes: number[]; frames: FrameRecord[] }>();

    // Batches usually name one topic: open it once rather than awaiting a lookup per record.
    let topic: OpenTopic | undefined;
    for (const [index, record] of records.entries()) {
      if (topic?.name !== record.topic) topic = await this.openTopic(record.topic);
      const count = topic.partitions.length;
      const partition = choosePartition(record, count, this.roundRobin);

      const log = topic.partitions[partition];
      let batch = batches.get(log);
      if (!batch) {
        batch = { topic: record.topic, partition, indexes: [], frames: [] };
        batches.set(log, batch);
      }
      batch.indexes.push(index);
      batch.frames.push({
        timestamp: record.timestamp ?? now,
        key: record.key === null ? null : Buffer.from(record.key, 'utf8'),
        headers: toHeaderBuffers(record.headers),
        value: record.value,
      });
    }

    try {
      await Promise.all(
        [...batches].map(async ([log, batch]) => {
          const firstOffset = await log.append(batch.frames);
          batch.indexes.forEach((recordIndex, i) => {
            positions[recordIndex] = { topic: batch.topic, partition: batch.partition, offset: firstOffset + i };
          });
        }),
      );
    } finally {
      // Wake subscribers even when one partition failed: the others' records are durable.
      this.appended.notify();
    }
    return positions;
  }

  async beginOffsets(topic: string): Promise<PartitionOffset[]> {
    return (await this.openCurrentTopic(topic)).partitions.map((log, partition) => ({ partition, offset: log.startOffset }));
  }

  async endOffsets(topic: string): Promise<PartitionOffset[]> {
    return (await this.openCurrentTopic(topic)).partitions.map((log, partition) => ({ partition, offset: log.endOffset }));
  }

  async offsetsForTime(topic: string, at: number): Promise<PartitionOffset[]> {
    return (await this.openCurrentTopic(topic)).partitions.map((log, partition) => ({ partition, offset: log.offsetForTime(at) }));
  }

  async committedOffsets(groupId: string, topic: string): Promise<PartitionOffset[]> {
    const open = await this.openTopic(topic);
    const offsets: PartitionOffset[] = [];
    for (let partition = 0; partition < open.partitions.length; partition++) {
      offsets.push({ partition, offset: await this.groupOffsets.committed(groupId, topic, partition) });
    }
    return offsets;
  }

  async commit(groupId: string, positions: RecordPosition[]): Promise<void> {
    this.requireWritable('commit offsets');
    if (!groupId) throw new UsageError('a commit needs a consumer group id (groupId)');
    for (const position of positions) {
      const open = await this.openTopic(position.topic);
      validatePartition(position.topic, position.partition, open.partitions.length);
    }
    await this.groupOffsets.commit(groupId, positions);
  }

  /**
   * Subscribes to the topics. Every subscription reads all partitions of its topics, because the
   * embedded log has no group members to share them with. On a read-only transport the
   * subscription follows the writer process's appends, new segments included.
   */
  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.requireConnected();
    validateSubscribeOptions(options);

    const assigned: AssignedPartition[] = [];
    for (const topic of options.topics) {
      const open = await this.openTopic(topic);
      validateExplicitPartitions(options.from, topic, open.partitions.length);
      const starts = await resolveStartOffsets(this, topic, options.from, options.groupId);
      for (const { partition, offset } of starts) {
        assigned.push({ topic, partition, log: open.partitions[partition], nextOffset: offset });
      }
    }

    const logger = this.logger.child({ groupId: options.groupId, topics: options.topics });
    const subscription = new EmbeddedSubscription(assigned, options.eachBatch, this.appended, logger);
    this.subscriptions.add(subscription);
    const forget = () => this.subscriptions.delete(subscription);
    subscription.done.then(forget, forget);
    return subscription;
  }

  private requireConnected(): void {
    if (!this.connected) {
      throw new Error(`the embedded transport on ${this.address} is not connected; call connect() first`);
    }
  }

  private requireWritable(operation: string): void {
    this.requireConnected();
    if (this.readOnly) throw new ReadOnlyTransportError(this.address, operation);
  }

  /** Opens a topic and, when read-only, first indexes what the writer appended since. */
  private async openCurrentTopic(name: string): Promise<OpenTopic> {
    const open = await this.openTopic(name);
    if (this.readOnly) for (const log of open.partitions) await log.refresh();
    return open;
  }

  private async createTopic(spec: TopicSpec): Promise<void> {
    const existing = await this.readTopicMeta(spec.name);
    if (existing) {
      if (existing.partitions !== spec.partitions) {
        this.logger.warn(
          { topic: spec.name, partitions: existing.partitions, requestedPartitions: spec.partitions },
          'topic exists with another partition count; keeping it',
        );
      }
      return;
    }

    const topicDir = path.join(this.topicsDir, spec.name);
    await fs.mkdir(topicDir, { recursive: true });
    const partitions: PartitionLog[] = [];
    for (let partition = 0; partition < spec.partitions; partition++) {
      partitions.push(await PartitionLog.open(path.join(topicDir, String(partition)), this.logOptions(spec.name, partition)));
    }

    // topic.json goes last: a crash before it leaves no half-created topic visible.
    const metaFile = path.join(topicDir, TOPIC_META_FILE);
    await fs.writeFile(`${metaFile}.tmp`, `${JSON.stringify({ name: spec.name, partitions: spec.partitions })}\n`);
    await fs.rename(`${metaFile}.tmp`, metaFile);
    await fsyncDirectory(topicDir);
    await fsyncDirectory(this.topicsDir);

    this.topics.set(spec.name, Promise.resolve({ name: spec.name, partitions }));
    this.logger.info({ topic: spec.name, partitions: spec.partitions }, 'topic created');
  }

  private async readTopicMeta(name: string): Promise<TopicInfo | undefined> {
    try {
      const meta = JSON.parse(await fs.readFile(path.join(this.topicsDir, name, TOPIC_META_FILE), 'utf8')) as TopicInfo;
      return { name: meta.name, partitions: meta.partitions };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** Opens a topic's partitions once (scanning and repairing their segments) and caches them. */
  private openTopic(name: string): Promise<OpenTopic> {
    this.requireConnected();
    let open = this.topics.get(name);
    if (!open) {
      open = this.loadTopic(name);
      this.topics.set(name, open);
      open.catch(() => this.topics.delete(name));
    }
    return open;
  }

  private async loadTopic(name: string): Promise<OpenTopic> {
    validateTopicName(name);
    const meta = await this.readTopicMeta(name);
    if (!meta) throw new UnknownTopicError(name, this.address);
    const partitions: PartitionLog[] = [];
    for (let partition = 0; partition < meta.partitions; partition++) {
      const dir = path.join(this.topicsDir, name, String(partition));
      partitions.push(await PartitionLog.open(dir, this.logOptions(name, partition)));
    }
    return { name, partitions };
  }

  private logOptions(topic: string, partition: number): PartitionLogOptions {
    const logger = this.logger.child({ topic, partition });
    return this.segmentBytes === undefined ? { logger, readOnly: this.readOnly } : { segmentBytes: this.segmentBytes, logger, readOnly: this.readOnly };
  }
}

function toHeaderBuffers(headers: ProduceRecord['headers']): Record<string, Buffer> {
  const buffers: Record<string, Buffer> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    buffers[name] = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  }
  return buffers;
}
