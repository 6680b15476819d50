/**
 * The Kafka transport (kafkajs 2.2.4). Topics are created explicitly, never by broker
 * auto-creation; records are produced with acks=all to the partition partitioner.ts picks, so
 * keys land where the embedded log would put them.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, Partitioners, type Admin, type Message, type Producer } from 'kafkajs';
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
import { BrokerUnreachableError, isConnectionFailure } from './errors';
import { KafkaSubscription } from './kafka-subscription';
import { kafkajsLevelFor, pinoLogCreator } from './kafkajs-logging';

export interface KafkaTransportOptions {
  /** Bootstrap brokers, `host:port` separated by commas, or a list. */
  brokers: string | string[];
  clientId?: string;
  /** TCP connect timeout per attempt, in ms; default 2000. */
  connectionTimeoutMs?: number;
  /** How long createTopics waits for partition leaders, in ms; default 30000. */
  leaderTimeoutMs?: number;
}

/**
 * Retries of every kafkajs request. Few and short, so that an unreachable broker fails in about
 * a second when the connection is refused (4 attempts with 100-400 ms back-off), or after about
 * 4 x connectionTimeoutMs when packets are dropped.
 */
const RETRY = { retries: 3, initialRetryTime: 100, maxRetryTime: 2_000 };

/** Maximum wait of a fetch for new records, in ms. It bounds how long stop() waits for a fetch. */
const MAX_WAIT_TIME_MS = 1_000;

export class KafkaTransport implements Transport {
  readonly kind = 'kafka' as const;
  readonly address: string;

  private readonly kafka: Kafka;
  private readonly logger: Logger;
  private readonly leaderTimeoutMs: number;
  private readonly roundRobin = new RoundRobinPartitioner();
  /** Partition counts of topics seen to exist. */
  private readonly partitionCounts = new Map<string, number>();
  private readonly subscriptions = new Set<KafkaSubscription>();
  private admin: Admin | undefined;
  private producer: Producer | undefined;

  constructor(options: KafkaTransportOptions) {
    const brokers = (Array.isArray(options.brokers) ? options.brokers : options.brokers.split(','))
      .map((broker) => broker.trim())
      .filter((broker) => broker.length > 0);
    if (brokers.length === 0) {
      throw new UsageError('no Kafka brokers given: set --brokers or TSALIGN_BROKERS to host:port[,host:port...]');
    }
    for (const broker of brokers) {
      if (!/^[^\s:]+:\d{1,5}$/.test(broker) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(broker)) {
        throw new UsageError(`invalid broker address "${broker}": expected host:port, for example 127.0.0.1:9092`);
      }
    }

    this.address = brokers.join(',');
    this.logger = childLogger('kafka-transport', { brokers: this.address });
    this.leaderTimeoutMs = options.leaderTimeoutMs ?? 30_000;
    this.kafka = new Kafka({
      clientId: options.clientId ?? 'tsalign',
      brokers,
      connectionTimeout: options.connectionTimeoutMs ?? 2_000,
      retry: RETRY,
      logLevel: kafkajsLevelFor(this.logger),
      logCreator: pinoLogCreator(this.logger),
    });
  }

  /** Connects the admin client and the producer; fails fast when no broker responds. */
  async connect(): Promise<void> {
    if (this.admin) return;
    const admin = this.kafka.admin({ retry: RETRY });
    const producer = this.kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
      retry: RETRY,
    });
    try {
      await admin.connect();
      await producer.connect();
    } catch (error) {
      await admin.disconnect().catch(() => {});
      await producer.disconnect().catch(() => {});
      throw this.explain(error);
    }
    this.admin = admin;
    this.producer = producer;
    this.logger.debug('connected');
  }

  /** Stops every subscription and disconnects. */
  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((subscription) => subscription.stop()));
    const admin = this.admin;
    const producer = this.producer;
    this.admin = undefined;
    this.producer = undefined;
    await producer?.disconnect();
    await admin?.disconnect();
    this.partitionCounts.clear();
  }

  async createTopics(specs: TopicSpec[]): Promise<void> {
    const admin = this.requireAdmin();
    for (const spec of specs) validateTopicSpec(spec);

    const existing = new Set(await this.call(() => admin.listTopics()));
    const missing = specs.filter((spec) => !existing.has(spec.name));
    if (missing.length > 0) {
      // Returns false when a concurrent creator won the race; the topic exists either way.
      await this.call(() =>
        admin.createTopics({
          topics: missing.map((spec) => ({ topic: spec.name, numPartitions: spec.partitions })),
          waitForLeaders: true,
          timeout: this.leaderTimeoutMs,
        }),
      );
      for (const spec of missing) this.logger.info({ topic: spec.name, partitions: spec.partitions }, 'topic created');
    }

    await this.waitForLeaders(specs.map((spec) => spec.name));
    for (const spec of specs) {
      const partitions = this.partitionCounts.get(spec.name);
      if (partitions !== undefined && partitions !== spec.partitions) {
        this.logger.warn(
          { topic: spec.name, partitions, requestedPartitions: spec.partitions },
          'topic exists with another partition count; keeping it',
        );
      }
    }
  }

  async listTopics(): Promise<TopicInfo[]> {
    const admin = this.requireAdmin();
    const names = (await this.call(() => admin.listTopics())).filter((name) => !name.startsWith('__')).sort();
    if (names.length === 0) return [];
    const metadata = await this.call(() => admin.fetchTopicMetadata({ topics: names }));
    return metadata.topics
      .map((topic) => ({ name: topic.name, partitions: topic.partitions.length }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Deletes topics; names that do not exist are ignored. Stop their subscriptions first. */
  async deleteTopics(names: string[]): Promise<void> {
    const admin = this.requireAdmin();
    for (const name of names) validateTopicName(name);
    const existing = new Set(await this.call(() => admin.listTopics()));
    const present = names.filter((name) => existing.has(name));
    for (const name of names) this.partitionCounts.delete(name);
    if (present.length > 0) await this.call(() => admin.deleteTopics({ topics: present, timeout: this.leaderTimeoutMs }));
  }

  async produce(records: ProduceRecord[]): Promise<RecordPosition[]> {
    const producer = this.requireProducer();
    const now = Date.now();
    /** Messages per topic and partition, with their index in `records`, in call order. */
    const batches = new Map<string, { topic: string; partition: number; indexes: number[]; messages: Message[] }>();

    for (const [index, record] of records.entries()) {
      const count = await this.partitionCount(record.topic);
      const partition = choosePartition(record, count, this.roundRobin);

      const batchKey = `${record.topic}/${partition}`;
      let batch = batches.get(batchKey);
      if (!batch) {
        batch = { topic: record.topic, partition, indexes: [], messages: [] };
        batches.set(batchKey, batch);
      }
      batch.indexes.push(index);
      batch.messages.push({
        key: record.key,
        value: record.value,
        partition,
        headers: record.headers,
        timestamp: String(record.timestamp ?? now),
      });
    }
    if (batches.size === 0) return [];

    const topicMessages = new Map<string, Message[]>();
    for (const batch of batches.values()) {
      const messages = topicMessages.get(batch.topic) ?? [];
      messages.push(...batch.messages);
      topicMessages.set(batch.topic, messages);
    }
    const results = await this.call(() =>
      producer.sendBatch({
        acks: -1,
        topicMessages: [...topicMessages].map(([topic, messages]) => ({ topic, messages })),
      }),
    );

    // One record batch per partition, so the i-th message of a partition got baseOffset + i.
    const positions: RecordPosition[] = new Array(records.length);
    for (const result of results) {
      const batch = batches.get(`${result.topicName}/${result.partition}`);
      const baseOffset = Number(result.baseOffset ?? result.offset);
      if (!batch || !Number.isFinite(baseOffset)) continue;
      batch.indexes.forEach((recordIndex, i) => {
        positions[recordIndex] = { topic: batch.topic, partition: batch.partition, offset: baseOffset + i };
      });
    }
    return positions;
  }

  async beginOffsets(topic: string): Promise<PartitionOffset[]> {
    return (await this.topicOffsets(topic)).map(({ partition, low }) => ({ partition, offset: Number(low) }));
  }

  async endOffsets(topic: string): Promise<PartitionOffset[]> {
    return (await this.topicOffsets(topic)).map(({ partition, high }) => ({ partition, offset: Number(high) }));
  }

  async offsetsForTime(topic: string, at: number): Promise<PartitionOffset[]> {
    const admin = this.requireAdmin();
    await this.partitionCount(topic);
    // kafkajs returns the high watermark where no record is at or after `at`.
    const offsets = await this.call(() => admin.fetchTopicOffsetsByTimestamp(topic, at));
    return offsets
      .map(({ partition, offset }) => ({ partition, offset: Number(offset) }))
      .sort((a, b) => a.partition - b.partition);
  }

  async committedOffsets(groupId: string, topic: string): Promise<PartitionOffset[]> {
    const admin = this.requireAdmin();
    await this.partitionCount(topic);
    const response = await this.call(() => admin.fetchOffsets({ groupId, topics: [topic] }));
    const partitions = response.find((entry) => entry.topic === topic)?.partitions ?? [];
    return partitions
      .map(({ partition, offset }) => ({ partition, offset: Number(offset) }))
      .sort((a, b) => a.partition - b.partition);
  }

  /**
   * Commits through this transport's running subscription of the group when there is one (a
   * group member must commit while the group is active), else through the admin client, which
   * Kafka allows only while the group has no members.
   */
  async commit(groupId: string, positions: RecordPosition[]): Promise<void> {
    const admin = this.requireAdmin();
    if (!groupId) throw new UsageError('a commit needs a consumer group id (groupId)');
    if (positions.length === 0) return;
    for (const position of positions) {
      validatePartition(position.topic, position.partition, await this.partitionCount(position.topic));
    }

    const member = [...this.subscriptions].find((subscription) => subscription.groupId === groupId);
    if (member) {
      await this.call(() => member.commit(positions));
      return;
    }
    const byTopic = new Map<string, Array<{ partition: number; offset: string }>>();
    for (const { topic, partition, offset } of positions) {
      const partitions = byTopic.get(topic) ?? [];
      partitions.push({ partition, offset: String(offset) });
      byTopic.set(topic, partitions);
    }
    for (const [topic, partitions] of byTopic) {
      await this.call(() => admin.setOffsets({ groupId, topic, partitions }));
    }
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.requireAdmin();
    validateSubscribeOptions(options);

    // Start offsets to seek on first assignment. A committed start seeks only the partitions
    // without a commit, to the fallback resolved now: left to kafkajs, `latest` would be resolved
    // at the first fetch and miss records produced after subscribe() returned.
    const startOffsets = new Map<string, number>();
    if (options.from.kind === 'committed' && !options.groupId) {
      throw new UsageError('a start from committed offsets needs a consumer group id (groupId)');
    }
    for (const topic of options.topics) {
      validateExplicitPartitions(options.from, topic, await this.partitionCount(topic));
      const committed = options.from.kind === 'committed' ? await this.committedOffsets(options.groupId!, topic) : [];
      for (const { partition, offset } of await resolveStartOffsets(this, topic, options.from, options.groupId)) {
        const hasCommit = (committed.find((entry) => entry.partition === partition)?.offset ?? -1) >= 0;
        if (!hasCommit) startOffsets.set(`${topic}/${partition}`, offset);
      }
    }

    // kafkajs needs a group; a subscription without one gets a private group it never commits to.
    const groupId = options.groupId ?? `tsalign-private-${randomUUID()}`;
    const consumer = this.kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: MAX_WAIT_TIME_MS,
      retry: RETRY,
    });
    const logger = this.logger.child({ groupId, topics: options.topics });
    const subscription: KafkaSubscription = new KafkaSubscription(consumer, groupId, options.eachBatch, startOffsets, logger, () =>
      this.subscriptions.delete(subscription),
    );

    try {
      await consumer.connect();
      await consumer.subscribe({
        topics: options.topics,
        fromBeginning: options.from.kind === 'committed' ? options.from.fallback === 'earliest' : true,
      });
      this.subscriptions.add(subscription);
      await subscription.start();
    } catch (error) {
      await subscription.stop();
      throw this.explain(error);
    }
    return subscription;
  }

  private requireAdmin(): Admin {
    if (!this.admin) throw new Error(`the Kafka transport for ${this.address} is not connected; call connect() first`);
    return this.admin;
  }

  private requireProducer(): Producer {
    this.requireAdmin();
    return this.producer!;
  }

  /** Returns a topic's partition count, throwing UnknownTopicError when it does not exist. */
  private async partitionCount(topic: string): Promise<number> {
    const known = this.partitionCounts.get(topic);
    if (known !== undefined) return known;
    validateTopicName(topic);
    const admin = this.requireAdmin();
    // Listing first avoids kafkajs retrying UNKNOWN_TOPIC_OR_PARTITION on a missing topic.
    const names = await this.call(() => admin.listTopics());
    if (!names.includes(topic)) throw new UnknownTopicError(topic, this.address);
    const metadata = await this.call(() => admin.fetchTopicMetadata({ topics: [topic] }));
    const count = metadata.topics[0].partitions.length;
    this.partitionCounts.set(topic, count);
    return count;
  }

  private async topicOffsets(topic: string): Promise<Array<{ partition: number; low: string; high: string }>> {
    const admin = this.requireAdmin();
    await this.partitionCount(topic);
    const offsets = await this.call(() => admin.fetchTopicOffsets(topic));
    return offsets.sort((a, b) => a.partition - b.partition);
  }

  /** Polls metadata until every partition of the topics has a leader, and records their counts. */
  private async waitForLeaders(topics: string[]): Promise<void> {
    const admin = this.requireAdmin();
    const deadline = Date.now() + this.leaderTimeoutMs;
    for (;;) {
      const metadata = await this.call(() => admin.fetchTopicMetadata({ topics }));
      const leaderless = metadata.topics.flatMap((topic) =>
        topic.partitions.filter((partition) => partition.leader < 0).map((partition) => `${topic.name}/${partition.partitionId}`),
      );
      if (leaderless.length === 0) {
        for (const topic of metadata.topics) this.partitionCounts.set(topic.name, topic.partitions.length);
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `partitions ${leaderless.join(', ')} on ${this.address} have no leader after ${this.leaderTimeoutMs} ms; check the brokers' health`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Runs a kafkajs call, turning connection failures into BrokerUnreachableError. */
  private async call<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw this.explain(error);
    }
  }

  private explain(error: unknown): unknown {
    if (error instanceof UsageError || error instanceof BrokerUnreachableError) return error;
    return isConnectionFailure(error) ? new BrokerUnreachableError(this.address, error) : error;
  }
}
