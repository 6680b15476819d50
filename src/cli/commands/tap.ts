/**
 * `tsalign tap TOPIC`: prints the decoded records of a topic, live until Ctrl-C, or up to the
 * end offsets seen at start with `--to-end`. Tap commits no offsets.
 *
 * `--format json` prints one JSON object per line. Avro longs (bigint) become JSON numbers when
 * they are safe integers (|n| <= 2^53 - 1) and decimal strings otherwise; bytes become base64
 * strings. `--format pretty` prints a header line with partition, offset, key and time, then the
 * record as indented JSON.
 */
import { once } from 'node:events';
import { Option, type Command } from 'commander';
import { addCommonOptions, openTransport, parseWholeNumber, resolveCommonOptions, type CommonOptionValues } from '../common';
import { topicSource, type Delivered } from '../../streams/source';
import { parseTopicName, recordTypeOf, requireTopic, topicName } from '../../streams/topics';
import { onShutdownSignal } from '../../streams/shutdown';
import type { ConsumedMessage, PartitionOffset, StartPosition, Transport } from '../../streams/transport';
import { UsageError } from '../../util/errors';
import { childLogger } from '../../util/logger';

export const TAP_FORMATS = ['json', 'pretty'] as const;
type TapFormat = (typeof TAP_FORMATS)[number];

interface TapOptionValues extends CommonOptionValues {
  fromBeginning?: boolean;
  fromOffset: string[];
  since?: string;
  max?: string;
  toEnd?: boolean;
  format: TapFormat;
}

export function registerTap(program: Command): void {
  const command = program
    .command('tap')
    .description('Print the decoded records of a topic (prompts, candidates, judgments, pairs, model-updates, rounds, metrics, dlq).')
    .argument('<topic>', 'topic name without the prefix, such as pairs')
    .option('--from-beginning', 'start at the first record (the default with --to-end)')
    .option('--from-offset <partition:offset>', 'start a partition at an offset; repeat for several partitions', (value: string, all: string[]) => [...all, value], [])
    .option('--since <time>', 'start at the first record at or after TIME: an ISO date, or an age such as 30s, 10m, 2h, 1d')
    .option('--max <n>', 'stop after N records')
    .option('--to-end', 'stop at the end offsets seen at start')
    .addOption(new Option('--format <format>', 'output: json (one object per line) or pretty').choices(TAP_FORMATS).default('json'));
  addCommonOptions(command).action(async (topic: string, values: TapOptionValues) => {
    await runTap(topic, values);
  });
}

/** Runs `tsalign tap`; resolves with the number of records printed. */
export async function runTap(topicArgument: string, values: TapOptionValues, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const common = resolveCommonOptions(values);
  const name = parseTopicName(topicArgument, common.topicPrefix);
  const topic = topicName(name, common.topicPrefix);
  const max = values.max === undefined ? undefined : parseWholeNumber('--max', values.max, 1);
  const startChoices = [values.fromBeginning, values.fromOffset.length > 0, values.since !== undefined].filter(Boolean).length;
  if (startChoices > 1) {
    throw new UsageError('give at most one of --from-beginning, --from-offset and --since');
  }
  const since = values.since === undefined ? undefined : parseSince(values.since, Date.now());
  const log = childLogger('tap', { topic });

  // Read-only, so tap can watch a data directory that a running job holds the writer lock of.
  const transport = await openTransport(common, 'tsalign-tap', { readOnly: true });
  try {
    await requireTopic(transport, topic);
    const from = await startPosition(transport, topic, values, since);
    // Offsets where --to-end stops, per partition; a partition already there needs no reading.
    const ends = values.toEnd ? await remainingEnds(transport, topic, from) : undefined;
    if (ends !== undefined && ends.size === 0) return 0;

    const source = topicSource(transport, { topic, recordType: recordTypeOf(name), from, maxInFlight: 256, onUndecodable: reportUndecodable(log) });
    const shutdown = onShutdownSignal(() => source.stop());
    let printed = 0;
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      void source.stop();
    };
    const stdoutClosed = (error: NodeJS.ErrnoException): void => {
      // A reader such as `head` closed the pipe: stop quietly.
      if (error.code === 'EPIPE') stop();
    };
    out.on('error', stdoutClosed);

    try {
      await new Promise<void>((resolve, reject) => {
        // Prints run one after another, so at most one waits for 'drain' at a time.
        let printing = Promise.resolve();
        source.subscribe({
          next: (delivered) => {
            printing = printing.then(() => print(delivered)).then(
              () => delivered.ack(),
              (error: unknown) => {
                if ((error as NodeJS.ErrnoException).code !== 'EPIPE') return reject(error);
                stdoutClosed(error as NodeJS.ErrnoException);
                delivered.ack();
              },
            );
          },
          error: reject,
          complete: resolve,
        });
        log.info({ from: from.kind, toEnd: values.toEnd === true, max }, 'tapping topic');

        const print = async (delivered: Delivered<unknown>): Promise<void> => {
          const { message } = delivered;
          if (stopping) return;
          const end = ends?.get(message.partition);
          if (ends !== undefined && (end === undefined || message.offset >= end)) return;
          printed++;
          if (!out.write(formatRecord(delivered.record, message, values.format))) await once(out, 'drain');
          if (end !== undefined && message.offset >= end - 1) ends?.delete(message.partition);
          if ((max !== undefined && printed >= max) || ends?.size === 0) stop();
        };
      });
    } finally {
      shutdown.dispose();
      out.off('error', stdoutClosed);
    }
    return printed;
  } finally {
    await transport.close();
  }
}

function reportUndecodable(log: ReturnType<typeof childLogger>) {
  return (message: ConsumedMessage, error: Error): void => {
    log.warn({ partition: message.partition, offset: message.offset, err: error.message }, 'message cannot be decoded, skipped');
  };
}

async function startPosition(transport: Transport, topic: string, values: TapOptionValues, since: number | undefined): Promise<StartPosition> {
  if (values.fromOffset.length > 0) {
    const partitions = (await transport.endOffsets(topic)).length;
    return { kind: 'offsets', topic, offsets: values.fromOffset.map((value) => parsePartitionOffset(value, partitions)), fallback: 'latest' };
  }
  if (since !== undefined) return { kind: 'time', at: since };
  if (values.fromBeginning || values.toEnd) return { kind: 'earliest' };
  return { kind: 'latest' };
}

/** Returns the end offset per partition for the partitions that have records after `from`. */
async function remainingEnds(transport: Transport, topic: string, from: StartPosition): Promise<Map<number, number>> {
  const ends = await transport.endOffsets(topic);
  let starts: PartitionOffset[];
  switch (from.kind) {
    case 'earliest':
      starts = await transport.beginOffsets(topic);
      break;
    case 'time':
      starts = await transport.offsetsForTime(topic, from.at);
      break;
    case 'offsets': {
      const given = new Map(from.offsets.map((entry) => [entry.partition, entry.offset]));
      starts = ends.map(({ partition, offset }) => ({ partition, offset: given.get(partition) ?? offset }));
      break;
    }
    default:
      starts = ends;
  }
  const startOf = new Map(starts.map((entry) => [entry.partition, entry.offset]));
  const remaining = new Map<number, number>();
  for (const { partition, offset } of ends) {
    if ((startOf.get(partition) ?? offset) < offset) remaining.set(partition, offset);
  }
  return remaining;
}

/** Parses `--from-offset P:O`; throws UsageError naming the value. */
export function parsePartitionOffset(value: string, partitions: number): PartitionOffset {
  const match = /^(\d+):(\d+)$/.exec(value.trim());
  if (match === null) {
    throw new UsageError(`invalid --from-offset ${JSON.stringify(value)}: write PARTITION:OFFSET, such as 0:120`);
  }
  const partition = Number(match[1]);
  if (partition >= partitions) {
    throw new UsageError(`invalid --from-offset ${JSON.stringify(value)}: the topic has partitions 0 to ${partitions - 1}`);
  }
  return { partition, offset: Number(match[2]) };
}

const AGE_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `--since`: an ISO 8601 date or an age such as `10m`; returns epoch milliseconds. */
export function parseSince(value: string, now: number): number {
  const age = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim());
  if (age !== null) return now - Number(age[1]) * AGE_UNITS[age[2]];
  if (/^\d{4}-\d{2}-\d{2}/.test(value.trim())) {
    const at = Date.parse(value);
    if (!Number.isNaN(at)) return at;
  }
  throw new UsageError(`invalid --since ${JSON.stringify(value)}: give an ISO date such as 2024-05-01T12:00:00Z, or an age such as 30s, 10m, 2h or 1d`);
}

/** Formats one record for output, ending with a newline. */
export function formatRecord(record: unknown, message: ConsumedMessage, format: TapFormat): string {
  const json = toJsonValue(record);
  if (format === 'json') return `${JSON.stringify(json)}\n`;
  const key = message.key === null ? 'null' : message.key.toString('utf8');
  const at = new Date(message.timestamp).toISOString();
  return `# ${message.topic} partition ${message.partition} offset ${message.offset} key ${key} at ${at}\n${JSON.stringify(json, null, 2)}\n`;
}

/** Converts a decoded record to plain JSON: safe bigints to numbers, others to strings, bytes to base64. */
export function toJsonValue(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  }
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (typeof value === 'object' && value !== null) {
    const result: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(value)) result[key] = toJsonValue(field);
    return result;
  }
  return value;
}
