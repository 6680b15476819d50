/**
 * The transport contract: a partitioned, offset-addressed log with consumer groups.
 *
 * Two implementations satisfy it, Kafka (kafkajs) and the embedded file log, and one contract
 * test suite runs against both. Offsets follow Kafka's convention: a committed offset and an
 * end offset are the offset of the *next* record to read. Offsets are JavaScript numbers,
 * which are exact up to 2^53 - 1.
 */
import { UsageError } from '../util/errors';

export interface TopicSpec {
  name: string;
  partitions: number;
}

export interface TopicInfo {
  name: string;
  partitions: number;
}

export interface ProduceRecord {
  topic: string;
  /** Records with the same key go to the same partition (murmur2, as Kafka's default partitioner). */
  key: string | null;
  value: Buffer;
  headers?: Record<string, string | Buffer>;
  /** Explicit partition; overrides the key's partition. */
  partition?: number;
  /** Milliseconds since the Unix epoch; defaults to the time of the produce call. */
  timestamp?: number;
}

export interface RecordPosition {
  topic: string;
  partition: number;
  offset: number;
}

export interface ConsumedMessage extends RecordPosition {
  key: Buffer | null;
  value: Buffer;
  headers: Record<string, Buffer>;
  /** Milliseconds since the Unix epoch. */
  timestamp: number;
}

export interface PartitionOffset {
  partition: number;
  offset: number;
}

/**
 * Where a consumer starts in each partition.
 * - `committed`: the group's committed offset, or `fallback` where none is committed.
 * - `earliest` / `latest`: the log start / the end offset at subscribe time.
 * - `offsets`: explicit offsets per partition; partitions not listed start at `fallback`.
 * - `time`: the first record with timestamp >= `at` (ms), or the end when none.
 */
export type StartPosition =
  | { kind: 'committed'; fallback: 'earliest' | 'latest' }
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'offsets'; topic: string; offsets: PartitionOffset[]; fallback: 'earliest' | 'latest' }
  | { kind: 'time'; at: number };

export interface SubscribeOptions {
  /** Consumer group; required for `committed` starts and for commits. */
  groupId?: string;
  topics: string[];
  from: StartPosition;
  /**
   * Called with each batch in offset order per partition. The next batch of a partition is
   * not fetched before the returned promise settles, which gives the caller backpressure.
   */
  eachBatch: (messages: ConsumedMessage[]) => Promise<void>;
}

/** A running subscription. */
export interface Subscription {
  /** Stops fetching; resolves once the in-flight `eachBatch` call has settled. */
  stop(): Promise<void>;
  /** Resolves when the subscription ends, rejects if fetching failed for good. */
  readonly done: Promise<void>;
}

export interface Transport {
  readonly kind: 'kafka' | 'embedded';
  /** Human-readable location: the bootstrap brokers or the data directory. */
  readonly address: string;
  connect(): Promise<void>;
  close(): Promise<void>;

  /** Creates the topics that do not exist yet and waits until every partition has a leader. */
  createTopics(specs: TopicSpec[]): Promise<void>;
  listTopics(): Promise<TopicInfo[]>;

  /** Appends records; resolves once all of them are durable (acks=all on Kafka, fsync'd embedded). */
  produce(records: ProduceRecord[]): Promise<RecordPosition[]>;

  /** Log start offset per partition. */
  beginOffsets(topic: string): Promise<PartitionOffset[]>;
  /** End offset (next offset to be written) per partition. */
  endOffsets(topic: string): Promise<PartitionOffset[]>;
  /** First offset with timestamp >= `at` per partition; the end offset where none. */
  offsetsForTime(topic: string, at: number): Promise<PartitionOffset[]>;

  /** Committed offsets of a group for a topic; -1 where nothing is committed. */
  committedOffsets(groupId: string, topic: string): Promise<PartitionOffset[]>;
  /** Commits next-to-read offsets for a group. */
  commit(groupId: string, positions: RecordPosition[]): Promise<void>;

  subscribe(options: SubscribeOptions): Promise<Subscription>;
}

/** A topic that does not exist on the transport. Both transports throw it, never auto-create. */
export class UnknownTopicError extends UsageError {
  constructor(
    readonly topic: string,
    /** The transport's address: brokers or data directory. */
    readonly address: string,
  ) {
    super(`topic "${topic}" does not exist on ${address}; create it with \`tsalign topics create\``);
  }
}
