import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { EmbeddedTransport, ReadOnlyTransportError } from '../../src/streams/embedded/embedded-transport';
import { encodeFrame } from '../../src/streams/embedded/frame';
import { DataDirLockedError } from '../../src/streams/embedded/lock';
import { PartitionLog } from '../../src/streams/embedded/partition-log';
import type { ConsumedMessage } from '../../src/streams/transport';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const silent = pino({ level: 'silent' });
let dataDir: string;

beforeEach(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsalign-follow-'));
});

afterEach(async () => {
  await fs.rm(dataDir, { recursive: true, force: true });
});

function record(value: string) {
  return { timestamp: 1_000, key: null, headers: {}, value: Buffer.from(value) };
}

/**
 * The writer process: creates the topic, prints `ready`, appends `count` records one produce
 * call at a time with pauses, round-robin over two partitions, then waits for stdin to close.
 */
const WRITER_SOURCE = `
import { EmbeddedTransport } from ${JSON.stringify(path.join(REPO_ROOT, 'src/streams/embedded/embedded-transport'))};
async function main() {
  const [dataDir, topic, count] = process.argv.slice(2);
  const transport = new EmbeddedTransport({ dataDir, segmentBytes: 256 });
  await transport.connect();
  await transport.createTopics([{ name: topic, partitions: 2 }]);
  process.stdout.write('ready\\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  for (let i = 0; i < Number(count); i++) {
    await transport.produce([{ topic, key: null, partition: i % 2, value: Buffer.from('record-' + i) }]);
    if (i % 5 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  process.stdout.write('done\\n');
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once('end', resolve));
  await transport.close();
}
main().catch((error) => { console.error(error); process.exit(1); });
`;

async function startWriter(topic: string, count: number): Promise<{ child: ChildProcess; lines: string[]; nextLine(text: string): Promise<void> }> {
  const script = path.join(dataDir, 'writer.ts');
  await fs.writeFile(script, WRITER_SOURCE);
  const child = spawn(process.execPath, ['--import', 'tsx', script, path.join(dataDir, 'data'), topic, String(count)], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let buffered = '';
  const waiters: Array<() => void> = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
    for (const wake of waiters.splice(0)) wake();
  });
  const nextLine = async (text: string): Promise<void> => {
    while (!lines.includes(text)) {
      if (child.exitCode !== null) throw new Error(`writer exited with ${child.exitCode} before printing ${text}`);
      await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), once(child, 'exit')]);
    }
  };
  return { child, lines, nextLine };
}

test('reader follows appends of another process', { timeout: 60_000 }, async () => {
  const topic = 'followed';
  const count = 60;
  // The reader connects before the topic exists: it must find the topic the writer creates.
  const reader = new EmbeddedTransport({ dataDir: path.join(dataDir, 'data'), readOnly: true });
  await reader.connect();
  assert.deepEqual(await reader.listTopics(), []);

  const writer = await startWriter(topic, count);
  try {
    await writer.nextLine('ready');
    assert.deepEqual(await reader.listTopics(), [{ name: topic, partitions: 2 }]);

    // The writer holds the lock, so a second writer is rejected while the reader is not.
    const second = new EmbeddedTransport({ dataDir: path.join(dataDir, 'data') });
    await assert.rejects(second.connect(), DataDirLockedError);

    const received: ConsumedMessage[] = [];
    let finish!: () => void;
    const all = new Promise<void>((resolve) => (finish = resolve));
    const subscription = await reader.subscribe({
      topics: [topic],
      from: { kind: 'earliest' },
      eachBatch: async (messages) => {
        received.push(...messages);
        if (received.length >= count) finish();
      },
    });
    writer.child.stdin!.write('go\n');
    await all;
    await writer.nextLine('done');
    await subscription.stop();
    await subscription.done;

    assert.equal(received.length, count);
    for (const partition of [0, 1]) {
      const values = received.filter((message) => message.partition === partition).map((message) => message.value.toString());
      const expected = Array.from({ length: count / 2 }, (_, i) => `record-${i * 2 + partition}`);
      assert.deepEqual(values, expected, `partition ${partition}`);
      const offsets = received.filter((message) => message.partition === partition).map((message) => message.offset);
      assert.deepEqual(offsets, expected.map((_, i) => i), `offsets of partition ${partition}`);
    }
    // 256-byte segments hold a few records each, so the reader crossed into segments created after it opened.
    const segments = (await fs.readdir(path.join(dataDir, 'data', 'topics', topic, '0'))).filter((name) => name.endsWith('.log'));
    assert.ok(segments.length > 2, `expected several segments, found ${segments.length}`);
    assert.deepEqual(await reader.endOffsets(topic), [
      { partition: 0, offset: count / 2 },
      { partition: 1, offset: count / 2 },
    ]);
  } finally {
    writer.child.stdin!.end();
    if (writer.child.exitCode === null) await once(writer.child, 'exit');
    await reader.close();
  }
  assert.equal(writer.child.exitCode, 0);
});

test('read-only transport rejects writes', async () => {
  const writer = new EmbeddedTransport({ dataDir });
  await writer.connect();
  await writer.createTopics([{ name: 't', partitions: 1 }]);
  await writer.produce([{ topic: 't', key: null, value: Buffer.from('a') }]);

  const reader = new EmbeddedTransport({ dataDir, readOnly: true });
  await reader.connect();
  try {
    await assert.rejects(reader.produce([{ topic: 't', key: null, value: Buffer.from('b') }]), (error: unknown) => {
      assert.ok(error instanceof ReadOnlyTransportError);
      assert.match(error.message, /cannot produce: the embedded log at .* is open read-only/);
      return true;
    });
    await assert.rejects(reader.commit('group', [{ topic: 't', partition: 0, offset: 1 }]), ReadOnlyTransportError);
    await assert.rejects(reader.createTopics([{ name: 'u', partitions: 1 }]), ReadOnlyTransportError);
    await assert.rejects(reader.deleteTopics(['t']), ReadOnlyTransportError);
    assert.deepEqual(await reader.endOffsets('t'), [{ partition: 0, offset: 1 }]);

    // The reader sees the writer's later appends and commits without reopening.
    await writer.produce([{ topic: 't', key: null, value: Buffer.from('b') }]);
    await writer.commit('group', [{ topic: 't', partition: 0, offset: 2 }]);
    assert.deepEqual(await reader.endOffsets('t'), [{ partition: 0, offset: 2 }]);
    assert.deepEqual(await reader.committedOffsets('group', 't'), [{ partition: 0, offset: 2 }]);
  } finally {
    await reader.close();
    await writer.close();
  }
});

test('read-only log waits at a torn frame', async () => {
  const dir = path.join(dataDir, 'p0');
  const log = await PartitionLog.open(dir, { logger: silent });
  await log.append([record('a')]);
  const reader = await PartitionLog.open(dir, { logger: silent, readOnly: true });
  assert.equal(reader.endOffset, 1);

  // A frame written in two parts, as a reader may see an append in progress.
  const segment = path.join(dir, (await fs.readdir(dir)).find((name) => name.endsWith('.log'))!);
  const frame = encodeFrame(record('b'));
  await fs.appendFile(segment, frame.subarray(0, 5));
  assert.equal(await reader.refresh(), false);
  await fs.appendFile(segment, frame.subarray(5, frame.length - 1));
  assert.equal(await reader.refresh(), false);
  assert.equal(reader.endOffset, 1);
  await fs.appendFile(segment, frame.subarray(frame.length - 1));
  assert.equal(await reader.refresh(), true);
  assert.equal(reader.endOffset, 2);
  assert.deepEqual((await reader.read(0, 10, 1 << 20)).map((stored) => stored.value.toString()), ['a', 'b']);

  // A damaged tail is not an error for a reader either: it waits, and the file is unchanged.
  const damaged = encodeFrame(record('c'));
  damaged[damaged.length - 1] ^= 0xff;
  await fs.appendFile(segment, damaged);
  const size = (await fs.stat(segment)).size;
  assert.equal(await reader.refresh(), false);
  assert.equal((await fs.stat(segment)).size, size);
  const reopened = await PartitionLog.open(dir, { logger: silent, readOnly: true });
  assert.equal(reopened.endOffset, 2);
  assert.equal((await fs.stat(segment)).size, size);

  await reopened.close();
  await reader.close();
  await log.close();
});
