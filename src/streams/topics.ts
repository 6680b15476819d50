/**
 * tsalign's topics: full names with the prefix, the record type each carries, default
 * partition counts, and creation of the missing ones.
 */
import { TOPIC_NAMES, TOPIC_RECORDS, type RecordTypeName, type TopicName } from './records';
import type { TopicSpec, Transport } from './transport';
import { UsageError } from '../util/errors';

export const DEFAULT_TOPIC_PREFIX = 'tsalign.';

/**
 * Partitions per topic when created. The chain spreads over prompt partitions; model updates
 * and round manifests need one partition, because readers rely on their total order.
 */
export const DEFAULT_PARTITIONS: Readonly<Record<TopicName, number>> = {
  prompts: 4,
  candidates: 4,
  judgments: 4,
  pairs: 4,
  'model-updates': 1,
  rounds: 1,
  metrics: 1,
  dlq: 1,
};

/** Topics whose order across all records matters, so they keep one partition whatever is asked. */
const SINGLE_PARTITION_TOPICS: ReadonlySet<TopicName> = new Set(['model-updates', 'rounds']);

/** Kafka's limit on topic names: 249 characters of ASCII letters, digits, '.', '_' and '-'. */
const LEGAL_TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

/** Throws UsageError unless the prefix keeps every topic name legal for Kafka. */
export function checkTopicPrefix(prefix: string): void {
  const longest = Math.max(...TOPIC_NAMES.map((name) => name.length));
  if (prefix !== '' && !LEGAL_TOPIC.test(prefix)) {
    throw new UsageError(`invalid --topic-prefix ${JSON.stringify(prefix)}: use only ASCII letters, digits, '.', '_' and '-'`);
  }
  if (prefix.length + longest > 249) {
    throw new UsageError(`--topic-prefix is ${prefix.length} characters long; topic names must stay within 249 characters`);
  }
}

/** Returns the full topic name, such as `tsalign.prompts`. */
export function topicName(name: TopicName, prefix = DEFAULT_TOPIC_PREFIX): string {
  return `${prefix}${name}`;
}

/** Returns the record type a topic carries. */
export function recordTypeOf(name: TopicName): RecordTypeName {
  return TOPIC_RECORDS[name];
}

/**
 * Parses a topic name as users type it: without the prefix (`pairs`) or with it
 * (`tsalign.pairs`). Throws UsageError listing the valid names otherwise.
 */
export function parseTopicName(input: string, prefix = DEFAULT_TOPIC_PREFIX): TopicName {
  const bare = prefix !== '' && input.startsWith(prefix) ? input.slice(prefix.length) : input;
  if ((TOPIC_NAMES as readonly string[]).includes(bare)) return bare as TopicName;
  throw new UsageError(`unknown topic ${JSON.stringify(input)}; valid topics are: ${TOPIC_NAMES.join(', ')}`);
}

/**
 * Returns the specs of the named topics. `partitions` overrides the defaults, as one count
 * for all or per topic; model-updates and rounds always get one partition.
 */
export function topicSpecs(
  prefix = DEFAULT_TOPIC_PREFIX,
  names: readonly TopicName[] = TOPIC_NAMES,
  partitions?: number | Partial<Record<TopicName, number>>,
): TopicSpec[] {
  return names.map((name) => {
    let count = typeof partitions === 'number' ? partitions : (partitions?.[name] ?? DEFAULT_PARTITIONS[name]);
    if (SINGLE_PARTITION_TOPICS.has(name)) count = 1;
    if (!Number.isInteger(count) || count < 1) {
      throw new UsageError(`invalid partition count ${count} for topic ${name}: give a whole number of at least 1`);
    }
    return { name: topicName(name, prefix), partitions: count };
  });
}

/** Creates the named topics that do not exist yet; existing topics keep their partitions. */
export async function ensureTopics(
  transport: Transport,
  prefix = DEFAULT_TOPIC_PREFIX,
  names: readonly TopicName[] = TOPIC_NAMES,
  partitions?: number | Partial<Record<TopicName, number>>,
): Promise<void> {
  const specs = topicSpecs(prefix, names, partitions);
  const existing = new Set((await transport.listTopics()).map((topic) => topic.name));
  const missing = specs.filter((spec) => !existing.has(spec.name));
  if (missing.length > 0) await transport.createTopics(missing);
}

/** Throws UsageError when a topic does not exist, naming the command that creates it. */
export async function requireTopic(transport: Transport, topic: string): Promise<void> {
  const topics = await transport.listTopics();
  if (!topics.some((info) => info.name === topic)) {
    throw new UsageError(
      `topic ${topic} does not exist on ${transport.address}; create the topics with \`tsalign topics create\`, ` +
        'or check --topic-prefix and --brokers/--data-dir',
    );
  }
}
