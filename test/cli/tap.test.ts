import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli, startCli, tempDir, waitForOutput } from './feed-cli';
import { formatRecord, parsePartitionOffset, parseSince, toJsonValue } from '../../src/cli/commands/tap';
import { UsageError } from '../../src/util/errors';
import { EmbeddedTransport } from '../../src/streams/embedded/embedded-transport';
import { RecordWriter } from '../../src/streams/sink';
import { ensureTopics, topicName } from '../../src/streams/topics';
import type { Prompt } from '../../src/streams/records';

const temp = tempDir('tsalign-tap-cli-');
after(() => temp.remove());

describe('tap on embedded', () => {
  const flags = ['--data-dir', join(temp.dir, 'data')];
  before(async () => {
    assert.equal((await runCli(['topics', 'create', ...flags])).code, 0);
    const fed = await runCli(['feed', '-', '--format', 'text', ...flags], { input: 'alpha\nbeta\ngamma\ndelta\n' });
    assert.equal(fed.code, 0, fed.stderr);
  });

  test('prints to end, with max and pretty', async () => {
    const all = await runCli(['tap', 'prompts', '--to-end', ...flags]);
    assert.equal(all.code, 0, all.stderr);
    const texts = all.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { text: string }).text);
    assert.deepEqual(texts.sort(), ['alpha', 'beta', 'delta', 'gamma']);

    const two = await runCli(['tap', 'tsalign.prompts', '--to-end', '--max', '2', ...flags]);
    assert.equal(two.stdout.trim().split('\n').length, 2);

    const pretty = await runCli(['tap', 'prompts', '--to-end', '--format', 'pretty', ...flags]);
    const headers = [...pretty.stdout.matchAll(/^# tsalign\.prompts partition (\d+) offset (\d+) key [0-9a-f]{32} at \S+Z$/gm)];
    assert.equal(headers.length, 4);

    // Start one partition at its first offset: only that partition's records are printed.
    const partition = headers[0][1];
    const inPartition = headers.filter((header) => header[1] === partition).length;
    const fromOffset = await runCli(['tap', 'prompts', '--to-end', '--from-offset', `${partition}:0`, ...flags]);
    assert.equal(fromOffset.code, 0, fromOffset.stderr);
    assert.equal(fromOffset.stdout.trim().split('\n').length, inPartition);
  });

  test('since selects by record time', async () => {
    const recent = await runCli(['tap', 'prompts', '--to-end', '--since', '1h', ...flags]);
    assert.equal(recent.stdout.trim().split('\n').length, 4);
    const future = await runCli(['tap', 'prompts', '--to-end', '--since', '2999-01-01T00:00:00Z', ...flags]);
    assert.equal(future.code, 0, future.stderr);
    assert.equal(future.stdout, '');
  });

  test('follows until SIGINT and exits 0', async () => {
    const tap = startCli(['tap', 'prompts', '--from-beginning', ...flags]);
    await waitForOutput(tap, 'stderr', 'tapping topic');
    await waitForOutput(tap, 'stdout', 'delta');
    tap.child.kill('SIGINT');
    const result = await tap.result;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim().split('\n').length, 4);
  });

  test('bad usage exits 2', async () => {
    const unknown = await runCli(['tap', 'answers', ...flags]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown topic "answers"; valid topics are: prompts, candidates, judgments, pairs, model-updates, rounds, metrics, dlq/);
    const both = await runCli(['tap', 'prompts', '--from-beginning', '--since', '1h', ...flags]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /give at most one of --from-beginning, --from-offset and --since/);
    const partition = await runCli(['tap', 'prompts', '--from-offset', '9:0', ...flags]);
    assert.equal(partition.code, 2);
    assert.match(partition.stderr, /invalid --from-offset "9:0": the topic has partitions 0 to 3/);
  });
});

describe('tap beside a writer process', () => {
  // This test process is the writer: it holds the data directory's lock while tap runs.
  const dataDir = join(temp.dir, 'held');
  const flags = ['--data-dir', dataDir];
  const writer = new EmbeddedTransport({ dataDir });
  const prompts = new RecordWriter(writer, { topic: topicName('prompts'), recordType: 'Prompt', key: (prompt: Prompt) => prompt.id });
  const prompt = (text: string): Prompt => ({ id: `id-${text}`, text, source: 'test', tags: [], meta: {}, createdAt: BigInt(Date.now()) });

  before(async () => {
    await writer.connect();
    await ensureTopics(writer, 'tsalign.', ['prompts']);
    await Promise.all(['one', 'two', 'three'].map((text) => prompts.write(prompt(text))));
  });
  after(() => writer.close());

  test('to-end prints records while the lock is held', async () => {
    const tapped = await runCli(['tap', 'prompts', '--to-end', ...flags]);
    assert.equal(tapped.code, 0, tapped.stderr);
    const texts = tapped.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { text: string }).text);
    assert.deepEqual(texts.sort(), ['one', 'three', 'two']);
  });

  test('follows appends of the writer', { timeout: 60_000 }, async () => {
    const tap = startCli(['tap', 'prompts', '--from-beginning', ...flags]);
    // Once the records written before are printed, tap is following the end of the log.
    for (const text of ['one', 'two', 'three']) await waitForOutput(tap, 'stdout', `"${text}"`);
    await prompts.write(prompt('four'));
    await waitForOutput(tap, 'stdout', '"four"');
    await prompts.write(prompt('five'));
    await waitForOutput(tap, 'stdout', '"five"');
    tap.child.kill('SIGINT');
    const result = await tap.result;
    assert.equal(result.code, 0, result.stderr);
    const texts = result.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { text: string }).text);
    assert.equal(texts.length, 5);
    assert.deepEqual(texts.slice(3), ['four', 'five']);
  });

  test('topics list reads beside the writer', async () => {
    const listed = await runCli(['topics', 'list', '--json', ...flags]);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = (JSON.parse(listed.stdout) as { topics: Array<{ name: string; records: number }> }).topics;
    assert.equal(rows.find((row) => row.name === 'prompts')?.records, 5);
  });
});

describe('tap parsing', () => {
  test('parseSince takes ages and ISO dates', () => {
    const now = 10_000_000;
    assert.equal(parseSince('10m', now), now - 600_000);
    assert.equal(parseSince('1.5s', now), now - 1500);
    assert.equal(parseSince('2024-05-01T12:00:00Z', now), Date.UTC(2024, 4, 1, 12));
    for (const bad of ['10', '5x', 'yesterday', '2024-13-45']) {
      assert.throws(() => parseSince(bad, now), (error: unknown) => error instanceof UsageError && /invalid --since/.test(error.message), bad);
    }
  });

  test('parsePartitionOffset checks form and range', () => {
    assert.deepEqual(parsePartitionOffset('1:20', 4), { partition: 1, offset: 20 });
    assert.throws(() => parsePartitionOffset('1-20', 4), /write PARTITION:OFFSET/);
    assert.throws(() => parsePartitionOffset('4:0', 4), /partitions 0 to 3/);
  });

  test('json output converts bigints and bytes', () => {
    assert.deepEqual(toJsonValue({ a: 5n, b: 2n ** 60n, c: Buffer.from('hi'), d: [1n], e: null }), { a: 5, b: '1152921504606846976', c: 'aGk=', d: [1], e: null });
    const message = { topic: 't', partition: 0, offset: 3, key: null, value: Buffer.alloc(0), headers: {}, timestamp: 0 };
    assert.equal(formatRecord({ at: 1n }, message, 'json'), '{"at":1}\n');
    assert.equal(formatRecord({ at: 1n }, message, 'pretty'), '# t partition 0 offset 3 key null at 1970-01-01T00:00:00.000Z\n{\n  "at": 1\n}\n');
  });
});
