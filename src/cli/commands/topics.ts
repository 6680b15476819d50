/**
 * `tsalign topics [list|create]`: shows tsalign's topics with partitions and end offsets, or
 * creates the missing ones.
 */
import type { Command } from 'commander';
import { addCommonOptions, openTransport, parseWholeNumber, resolveCommonOptions, type CommonOptionValues } from '../common';
import { DEFAULT_PARTITIONS, ensureTopics, topicName } from '../../streams/topics';
import { TOPIC_NAMES, type TopicName } from '../../streams/records';
import type { Transport } from '../../streams/transport';
import { UsageError } from '../../util/errors';

interface TopicsOptionValues extends CommonOptionValues {
  partitions?: string;
  json?: boolean;
}

/** One row of `topics list`. */
export interface TopicRow {
  name: TopicName;
  topic: string;
  exists: boolean;
  partitions: number;
  /** End offset per partition, in partition order; empty when the topic does not exist. */
  endOffsets: number[];
  /** Records kept, the sum of end minus log start offsets. */
  records: number;
}

export function registerTopics(program: Command): void {
  const command = program
    .command('topics')
    .description("List tsalign's topics with partitions and end offsets, or create the missing ones.")
    .argument('[action]', 'list or create', 'list')
    .option('--partitions <n>', `partitions of each created topic, except model-updates and rounds which keep 1 (default: prompts ${DEFAULT_PARTITIONS.prompts}, metrics 1, dlq 1)`)
    .option('--json', 'print one JSON document instead of a table');
  addCommonOptions(command).action(async (action: string, values: TopicsOptionValues) => {
    await runTopics(action, values);
  });
}

export async function runTopics(action: string, values: TopicsOptionValues, out: NodeJS.WritableStream = process.stdout): Promise<TopicRow[]> {
  if (action !== 'list' && action !== 'create') {
    throw new UsageError(`unknown action ${JSON.stringify(action)} for tsalign topics; use list or create`);
  }
  const common = resolveCommonOptions(values);
  const partitions = values.partitions === undefined ? undefined : parseWholeNumber('--partitions', values.partitions, 1);
  if (partitions !== undefined && action !== 'create') {
    throw new UsageError('--partitions applies to `tsalign topics create` only');
  }

  const transport = await openTransport(common, 'tsalign-topics', { readOnly: action === 'list' });
  try {
    if (action === 'create') await ensureTopics(transport, common.topicPrefix, TOPIC_NAMES, partitions);
    const rows = await listRows(transport, common.topicPrefix);
    out.write(values.json ? `${JSON.stringify({ address: transport.address, topics: rows })}\n` : formatTable(rows, transport.address));
    return rows;
  } finally {
    await transport.close();
  }
}

async function listRows(transport: Transport, prefix: string): Promise<TopicRow[]> {
  const existing = new Map((await transport.listTopics()).map((info) => [info.name, info.partitions]));
  const rows: TopicRow[] = [];
  for (const name of TOPIC_NAMES) {
    const topic = topicName(name, prefix);
    const partitions = existing.get(topic);
    if (partitions === undefined) {
      rows.push({ name, topic, exists: false, partitions: 0, endOffsets: [], records: 0 });
      continue;
    }
    const ends = (await transport.endOffsets(topic)).sort((a, b) => a.partition - b.partition);
    const begins = new Map((await transport.beginOffsets(topic)).map((begin) => [begin.partition, begin.offset]));
    const records = ends.reduce((sum, end) => sum + end.offset - (begins.get(end.partition) ?? 0), 0);
    rows.push({ name, topic, exists: true, partitions, endOffsets: ends.map((end) => end.offset), records });
  }
  return rows;
}

function formatTable(rows: TopicRow[], address: string): string {
  const width = Math.max(5, ...rows.map((row) => row.topic.length));
  const lines = [`topics on ${address}`, `${'topic'.padEnd(width)}  partitions  records  end offsets`];
  for (const row of rows) {
    if (!row.exists) {
      lines.push(`${row.topic.padEnd(width)}  ${'-'.padStart(10)}  ${'-'.padStart(7)}  missing: run tsalign topics create`);
      continue;
    }
    const offsets = row.endOffsets.map((offset, partition) => `${partition}:${offset}`).join(' ');
    lines.push(`${row.topic.padEnd(width)}  ${String(row.partitions).padStart(10)}  ${String(row.records).padStart(7)}  ${offsets}`);
  }
  return `${lines.join('\n')}\n`;
}
