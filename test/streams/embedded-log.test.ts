import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { EmbeddedTransport } from '../../src/streams/embedded/embedded-transport';
import { checkFrame, decodeFrame, encodeFrame } from '../../src/streams/embedded/frame';
import { DataDirLockedError, LOCK_FILE_NAME } from '../../src/streams/embedded/lock';
import { PartitionLog } from '../../src/streams/embedded/partition-log';

const silent = pino({ level: 'silent' });
let dataDir: string;

beforeEach(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tsalign-embedded-'));
});

afterEach(async () => {
  await fs.rm(dataDir, { recursive: true, force: true });
});

function record(value: string, timestamp = 1_000) {
  return { timestamp, key: Buffer.from('k'), headers: { h: Buffer.from('v') }, value: Buffer.from(value) };
}

async function segmentFile(dir: string): Promise<string> {
  const names = (await fs.readdir(dir)).filter((name) => name.endsWith('.log')).sort();
  return path.join(dir, names[names.length - 1]);
}

test('frame round-trips every field', () => {
  const frame = encodeFrame({ timestamp: 1_700_000_000_123, key: null, headers: { a: Buffer.from('1'), 'ü': Buffer.alloc(0) }, value: Buffer.from('payload') });
  const check = checkFrame(frame);
  assert.equal(check.kind, 'complete');
  const decoded = decodeFrame(frame);
  assert.equal(decoded.timestamp, 1_700_000_000_123);
  assert.equal(decoded.key, null);
  assert.deepEqual(Object.keys(decoded.headers), ['a', 'ü']);
  assert.equal(decoded.headers.a.toString(), '1');
  assert.equal(decoded.value.toString(), 'payload');
  assert.equal(decoded.length, frame.length);
});

test('frame check finds torn and damaged frames', () => {
  const frame = encodeFrame(record('value'));
  assert.equal(checkFrame(frame.subarray(0, frame.length - 1)).kind, 'incomplete');
  assert.equal(checkFrame(frame.subarray(0, 5)).kind, 'incomplete');
  const damaged = Buffer.from(frame);
  damaged[damaged.length - 1] ^= 0xff;
  const check = checkFrame(damaged);
  assert.equal(check.kind, 'corrupt');
  assert.match((check as { reason: string }).reason, /crc32 mismatch/);
});

test('recovery truncates a torn final frame', async () => {
  const dir = path.join(dataDir, 'p0');
  const log = await PartitionLog.open(dir, { logger: silent });
  await log.append([record('a'), record('b'), record('c')]);
  await log.close();

  const file = await segmentFile(dir);
  const goodSize = (await fs.stat(file)).size;
  const torn = encodeFrame(record('d')).subarray(0, 13);
  await fs.appendFile(file, torn);

  const reopened = await PartitionLog.open(dir, { logger: silent });
  assert.equal(reopened.endOffset, 3);
  assert.equal((await fs.stat(file)).size, goodSize);
  assert.equal(await reopened.append([record('e')]), 3);
  const records = await reopened.read(0, 10, 1 << 20);
  assert.deepEqual(
    records.map((stored) => stored.value.toString()),
    ['a', 'b', 'c', 'e'],
  );
  await reopened.close();
});

test('recovery truncates a damaged final frame', async () => {
  const dir = path.join(dataDir, 'p0');
  const log = await PartitionLog.open(dir, { logger: silent });
  await log.append([record('a'), record('b')]);
  await log.close();

  const file = await segmentFile(dir);
  const content = await fs.readFile(file);
  content[content.length - 1] ^= 0xff;
  await fs.writeFile(file, content);

  const reopened = await PartitionLog.open(dir, { logger: silent });
  assert.equal(reopened.endOffset, 1);
  assert.deepEqual(
    (await reopened.read(0, 10, 1 << 20)).map((stored) => stored.value.toString()),
    ['a'],
  );
  await reopened.close();
});

test('segments roll and read across', async () => {
  const dir = path.join(dataDir, 'p0');
  const frameBytes = encodeFrame(record('x0')).length;
  const log = await PartitionLog.open(dir, { logger: silent, segmentBytes: frameBytes * 2 });
  await log.append(['x0', 'x1', 'x2', 'x3', 'x4'].map((value, i) => record(value, 1_000 + i)));
  await log.close();

  const segments = (await fs.readdir(dir)).sort();
  assert.deepEqual(segments, ['00000000000000000000.log', '00000000000000000002.log', '00000000000000000004.log']);

  const reopened = await PartitionLog.open(dir, { logger: silent, segmentBytes: frameBytes * 2 });
  assert.equal(reopened.endOffset, 5);
  const values: string[] = [];
  for (let offset = 0; offset < reopened.endOffset; ) {
    const batch = await reopened.read(offset, 10, 1 << 20);
    values.push(...batch.map((stored) => stored.value.toString()));
    offset += batch.length;
  }
  assert.deepEqual(values, ['x0', 'x1', 'x2', 'x3', 'x4']);
  assert.equal(reopened.offsetForTime(1_003), 3);
  await reopened.close();
});

test('offsetForTime handles unordered timestamps', async () => {
  const log = await PartitionLog.open(path.join(dataDir, 'p0'), { logger: silent });
  await log.append([record('a', 100), record('b', 300), record('c', 200), record('d', 400)]);
  assert.equal(log.offsetForTime(0), 0);
  assert.equal(log.offsetForTime(250), 1);
  assert.equal(log.offsetForTime(350), 3);
  assert.equal(log.offsetForTime(500), 4);
  await log.close();
});

test('lock rejects a second transport', async () => {
  const first = new EmbeddedTransport({ dataDir });
  await first.connect();
  const second = new EmbeddedTransport({ dataDir });

  await assert.rejects(second.connect(), (error: unknown) => {
    assert.ok(error instanceof DataDirLockedError);
    assert.equal(error.holderPid, process.pid);
    assert.match(error.message, new RegExp(`data directory ${dataDir} is in use by process ${process.pid}`));
    assert.match(error.message, /use another --data-dir/);
    return true;
  });

  await first.close();
  await second.connect();
  await second.close();
});

test('lock of another live process is respected', async () => {
  const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    await fs.writeFile(
      path.join(dataDir, LOCK_FILE_NAME),
      JSON.stringify({ pid: holder.pid, hostname: os.hostname(), startedAt: new Date().toISOString() }),
    );
    const transport = new EmbeddedTransport({ dataDir });
    await assert.rejects(transport.connect(), new RegExp(`in use by process ${holder.pid}`));
  } finally {
    holder.kill();
  }
});

test('stale lock is taken over', async () => {
  const exited = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => exited.on('exit', resolve));
  await fs.writeFile(
    path.join(dataDir, LOCK_FILE_NAME),
    JSON.stringify({ pid: exited.pid, hostname: os.hostname(), startedAt: new Date().toISOString() }),
  );

  const transport = new EmbeddedTransport({ dataDir });
  await transport.connect();
  const lock = JSON.parse(await fs.readFile(path.join(dataDir, LOCK_FILE_NAME), 'utf8'));
  assert.equal(lock.pid, process.pid);
  await transport.close();
  await assert.rejects(fs.stat(path.join(dataDir, LOCK_FILE_NAME)), /ENOENT/);
});

test('records survive a restart', async () => {
  const first = new EmbeddedTransport({ dataDir });
  await first.connect();
  await first.createTopics([{ name: 'durable', partitions: 2 }]);
  await first.produce([
    { topic: 'durable', key: 'a', value: Buffer.from('one') },
    { topic: 'durable', key: 'b', value: Buffer.from('two') },
  ]);
  const endBefore = await first.endOffsets('durable');
  await first.close();

  const second = new EmbeddedTransport({ dataDir });
  await second.connect();
  assert.deepEqual(await second.listTopics(), [{ name: 'durable', partitions: 2 }]);
  assert.deepEqual(await second.endOffsets('durable'), endBefore);
  await second.close();
});

test('operations before connect fail clearly', async () => {
  const transport = new EmbeddedTransport({ dataDir });
  await assert.rejects(transport.listTopics(), /is not connected; call connect\(\) first/);
});
