/**
 * Checks and start-offset rules that both transports apply alike.
 */
import { UsageError } from '../util/errors';
import { partitionForKey, type RoundRobinPartitioner } from './partitioner';
import type { PartitionOffset, ProduceRecord, StartPosition, SubscribeOptions, TopicSpec, Transport } from './transport';

/** Kafka's rule for topic names, which the embedded log follows so names work on both. */
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

/** Throws UsageError for a topic name Kafka would reject. */
export function validateTopicName(name: string): void {
  if (!TOPIC_NAME.test(name) || name === '.' || name === '..') {
    throw new UsageError(
      `invalid topic name ${JSON.stringify(name)}: use 1 to 249 of the characters a-z A-Z 0-9 . _ -, and not "." or ".."`,
    );
  }
}

/** Throws UsageError for an invalid topic spec. */
export function validateTopicSpec(spec: TopicSpec): void {
  validateTopicName(spec.name);
  if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
    throw new UsageError(`invalid partition count ${spec.partitions} for topic "${spec.name}": expected an integer >= 1`);
  }
}

/**
 * Picks the partition a record goes to: its own partition after checking it, else the partition
 * of its key, else the topic's next round-robin partition.
 */
export function choosePartition(record: ProduceRecord, partitions: number, roundRobin: RoundRobinPartitioner): number {
  if (record.partition !== undefined) {
    validatePartition(record.topic, record.partition, partitions);
    return record.partition;
  }
  if (record.key !== null) return partitionForKey(record.key, partitions);
  return roundRobin.partition(record.topic, partitions);
}

/** Throws UsageError for a subscription without topics, or with start offsets for a topic it does not read. */
export function validateSubscribeOptions(options: SubscribeOptions): void {
  if (options.topics.length === 0) throw new UsageError('a subscription needs at least one topic');
  if (options.from.kind === 'offsets' && !options.topics.includes(options.from.topic)) {
    throw new UsageError(
      `start offsets are given for topic "${options.from.topic}", which the subscription to ${options.topics.join(', ')} does not include`,
    );
  }
}

/** Throws UsageError unless `partition` is one of the topic's `partitions`. */
export function validatePartition(topic: string, partition: number, partitions: number): void {
  if (!Number.isInteger(partition) || partition < 0 || partition >= partitions) {
    throw new UsageError(
      `invalid partition ${partition} for topic "${topic}": it has partitions 0 to ${partitions - 1}`,
    );
  }
}

/**
 * Computes where a subscription starts in each partition of `topic`, as offsets, at subscribe
 * time. `committed` starts are resolved too; the Kafka transport lets its consumer group do
 * that instead, so later rebalances pick up newer commits.
 */
export async function resolveStartOffsets(
  transport: Transport,
  topic: string,
  from: StartPosition,
  groupId: string | undefined,
): Promise<PartitionOffset[]> {
  const begin = await transport.beginOffsets(topic);
  const end = await transport.endOffsets(topic);
  const fallback = (kind: 'earliest' | 'latest') => (kind === 'earliest' ? begin : end);

  switch (from.kind) {
    case 'earliest':
      return begin;
    case 'latest':
      return end;
    case 'time':
      return transport.offsetsForTime(topic, from.at);
    case 'committed': {
      if (!groupId) throw new UsageError('a start from committed offsets needs a consumer group id (groupId)');
      const committed = await transport.committedOffsets(groupId, topic);
      return fallback(from.fallback).map((base, index) => {
        const offset = committed[index]?.offset ?? -1;
        const inRange = offset >= begin[index].offset && offset <= end[index].offset;
        return inRange ? { partition: base.partition, offset } : base;
      });
    }
    case 'offsets': {
      const explicit = from.topic === topic ? from.offsets : [];
      return fallback(from.fallback).map((base, index) => {
        const given = explicit.find((entry) => entry.partition === base.partition);
        if (!given) return base;
        const low = begin[index].offset;
        const high = end[index].offset;
        if (!Number.isInteger(given.offset) || given.offset < low || given.offset > high) {
          throw new UsageError(
            `invalid start offset ${given.offset} for ${topic}/${given.partition}: the partition holds offsets ${low} to ${high}`,
          );
        }
        return { partition: base.partition, offset: given.offset };
      });
    }
  }
}

/** Throws UsageError when explicit start offsets name a partition the topic does not have. */
export function validateExplicitPartitions(from: StartPosition, topic: string, partitions: number): void {
  if (from.kind !== 'offsets' || from.topic !== topic) return;
  for (const entry of from.offsets) validatePartition(topic, entry.partition, partitions);
}
