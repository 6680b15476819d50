/**
 * The transport contract (src/streams/transport.ts), run against both transports. Kafka cases
 * skip with the reason when no broker is configured (see test/helpers/kafka.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedTransport } from '../../src/streams/embedded/embedded-transport';
import { BrokerUnreachableError } from '../../src/streams/kafka/errors';
import { KafkaTransport } from '../../src/streams/kafka/kafka-transport';
import { partitionForKey } from '../../src/streams/partitioner';
import {
  UnknownTopicError,
  type ConsumedMessage,
  type StartPosition,
  type Subscription,
  type Transport,
} from '../../src/streams/transport';
import { freeLoopbackPort } from '../../scripts/kafka/broker';
import { kafkaBrokersOrSkip, uniqueTopicName } from '../helpers/kafka';

type TestTransport = Transport & { deleteTopics(names: string[]): Promise<void> };

interface TransportFixture {
  name: 'embedded' | 'kafka';
  skip: string | undefined;
  /** Creates and connects a transport; `reopen` closes it and opens a new one on the same log. */
  open(): Promise<TestTransport>;
  /** Closes `current` and opens a transport on the same data, as a restarted process would. */
  reopen(current: TestTransport): Promise<TestTransport>;
  cleanup(): Promise<void>;
}

function embeddedFixture(): TransportFixture {
  let dataDir: string | undefined;
  return {
    name: 'embedded',
    skip: undefined,
    async open() {
      dataDir ??= await fs.mkdtemp(path.join(os.tmpdir(), 'tsalign-contract-'));
      const transport = new EmbeddedTransport({ dataDir });
      await transport.connect();
      return transport;
    },
    async reopen(current) {
      await current.close();
      return this.open();
    },
    async cleanup() {
      if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

function kafkaFixture(): TransportFixture {
  const { brokers, skip } = kafkaBrokersOrSkip();
  return {
    name: 'kafka',
    skip,
    async open() {
      const transport = new KafkaTransport({ brokers: brokers!, clientId: 'tsalign-contract-test' });
      await transport.connect();
      return transport;
    },
    async reopen(current) {
      await current.close();
      return this.open();
    },
    async cleanup() {},
  };
}

/** Subscribes and collects messages until `count` have arrived, then stops. */
async function consume(transport: Transport, topics: string[], from: StartPosition, count: number, groupId?: string) {
  const messages: ConsumedMessage[] = [];
  let subscription: Subscription | undefined;
  let reached!: () => void;
  const enough = new Promise<void>((resolve) => (reached = resolve));
  subscription = await transport.subscribe({
    topics,
    from,
    groupId,
    eachBatch: async (batch) => {
      messages.push(...batch);
      if (messages.length >= count) reached();
    },
  });
  if (count === 0) reached();
  await Promise.race([enough, subscription.done]);
  await subscription.stop();
  return messages;
}

function values(messages: ConsumedMessage[]): string[] {
  return messages.map((message) => message.value.toString('utf8'));
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((settle) => (resolve = settle));
  return { promise, resolve };
}

for (const fixture of [embeddedFixture(), kafkaFixture()]) {
  describe(`${fixture.name} transport contract`, { skip: fixture.skip, timeout: 120_000 }, () => {
    let transport: TestTransport;
    const created: string[] = [];

    async function newTopic(partitions: number, label: string): Promise<string> {
      const name = uniqueTopicName(`contract-${label}`);
      await transport.createTopics([{ name, partitions }]);
      created.push(name);
      return name;
    }

    before(async () => {
      transport = await fixture.open();
    });

    after(async () => {
      if (transport) {
        await transport.deleteTopics(created).catch(() => {});
        await transport.close();
      }
      await fixture.cleanup();
    });

    test('createTopics is idempotent', async () => {
      const name = await newTopic(3, 'create');
      await transport.createTopics([{ name, partitions: 3 }]);

      const topics = await transport.listTopics();
      assert.deepEqual(
        topics.filter((topic) => topic.name === name),
        [{ name, partitions: 3 }],
      );
      assert.deepEqual(await transport.endOffsets(name), [
        { partition: 0, offset: 0 },
        { partition: 1, offset: 0 },
        { partition: 2, offset: 0 },
      ]);
    });

    test('createTopics rejects invalid specs', async () => {
      await assert.rejects(transport.createTopics([{ name: 'bad name', partitions: 1 }]), /invalid topic name "bad name"/);
      await assert.rejects(transport.createTopics([{ name: 'ok-name', partitions: 0 }]), /invalid partition count 0/);
    });

    test('keyed produce keeps a key on one partition', async () => {
      const topic = await newTopic(3, 'keys');
      const keys = ['alpha', 'beta', 'gamma', 'delta'];
      const records = keys.flatMap((key) => [1, 2, 3].map((n) => ({ topic, key, value: Buffer.from(`${key}-${n}`) })));
      const positions = await transport.produce(records);

      assert.equal(positions.length, records.length);
      for (const [index, record] of records.entries()) {
        assert.equal(positions[index].topic, topic);
        assert.equal(positions[index].partition, partitionForKey(record.key, 3), `partition of ${record.key}`);
      }
      for (const key of keys) {
        const offsets = positions.filter((_, index) => records[index].key === key).map((position) => position.offset);
        assert.ok(offsets[0] < offsets[1], `offsets of ${key} increase: ${offsets}`);
        assert.ok(offsets[1] < offsets[2], `offsets of ${key} increase: ${offsets}`);
      }
    });

    test('offsets advance with produce', async () => {
      const topic = await newTopic(2, 'offsets');
      await transport.produce([
        { topic, key: null, partition: 0, value: Buffer.from('a') },
        { topic, key: null, partition: 0, value: Buffer.from('b') },
        { topic, key: null, partition: 1, value: Buffer.from('c') },
      ]);
      const positions = await transport.produce([{ topic, key: null, partition: 0, value: Buffer.from('d') }]);

      assert.deepEqual(positions, [{ topic, partition: 0, offset: 2 }]);
      assert.deepEqual(await transport.beginOffsets(topic), [
        { partition: 0, offset: 0 },
        { partition: 1, offset: 0 },
      ]);
      assert.deepEqual(await transport.endOffsets(topic), [
        { partition: 0, offset: 3 },
        { partition: 1, offset: 1 },
      ]);
    });

    test('produce rejects a missing partition', async () => {
      const topic = await newTopic(2, 'bad-partition');
      await assert.rejects(
        transport.produce([{ topic, key: null, partition: 2, value: Buffer.from('x') }]),
        /invalid partition 2 for topic .* partitions 0 to 1/,
      );
    });

    test('consume from earliest', async () => {
      const topic = await newTopic(2, 'earliest');
      await transport.produce([
        { topic, key: 'k', value: Buffer.from('one'), headers: { schema: 'abc', raw: Buffer.from([1, 2]) }, timestamp: 1_700_000_000_000 },
        { topic, key: null, partition: 1, value: Buffer.from('two') },
      ]);
      const messages = await consume(transport, [topic], { kind: 'earliest' }, 2);

      assert.deepEqual(values(messages).sort(), ['one', 'two']);
      const first = messages.find((message) => message.value.toString() === 'one')!;
      assert.equal(first.key?.toString(), 'k');
      assert.equal(first.partition, partitionForKey('k', 2));
      assert.equal(first.offset, 0);
      assert.equal(first.timestamp, 1_700_000_000_000);
      assert.equal(first.headers.schema.toString(), 'abc');
      assert.deepEqual([...first.headers.raw], [1, 2]);
      const second = messages.find((message) => message.value.toString() === 'two')!;
      assert.equal(second.key, null);
    });

    test('consume from latest', async () => {
      const topic = await newTopic(1, 'latest');
      await transport.produce([{ topic, key: null, value: Buffer.from('before') }]);
      const messages: ConsumedMessage[] = [];
      const arrived = deferred();
      const subscription = await transport.subscribe({
        topics: [topic],
        from: { kind: 'latest' },
        eachBatch: async (batch) => {
          messages.push(...batch);
          arrived.resolve();
        },
      });
      await transport.produce([{ topic, key: null, value: Buffer.from('after') }]);
      await arrived.promise;
      await subscription.stop();

      assert.deepEqual(values(messages), ['after']);
      assert.equal(messages[0].offset, 1);
    });

    test('consume from explicit offsets', async () => {
      const topic = await newTopic(2, 'explicit');
      await transport.produce(
        ['p0-0', 'p0-1', 'p0-2', 'p0-3'].map((value) => ({ topic, key: null, partition: 0, value: Buffer.from(value) })),
      );
      await transport.produce([{ topic, key: null, partition: 1, value: Buffer.from('p1-0') }]);

      const messages = await consume(
        transport,
        [topic],
        { kind: 'offsets', topic, offsets: [{ partition: 0, offset: 2 }], fallback: 'earliest' },
        3,
      );
      assert.deepEqual(values(messages).sort(), ['p0-2', 'p0-3', 'p1-0']);
      await assert.rejects(
        transport.subscribe({
          topics: [topic],
          from: { kind: 'offsets', topic, offsets: [{ partition: 0, offset: 9 }], fallback: 'earliest' },
          eachBatch: async () => {},
        }),
        /invalid start offset 9 for .*\/0: the partition holds offsets 0 to 4/,
      );
    });

    test('consume from a time', async () => {
      const topic = await newTopic(1, 'time');
      const base = 1_800_000_000_000;
      await transport.produce(
        [0, 1, 2, 3, 4].map((i) => ({ topic, key: null, value: Buffer.from(`t${i}`), timestamp: base + i * 1000 })),
      );

      assert.deepEqual(await transport.offsetsForTime(topic, base + 2000), [{ partition: 0, offset: 2 }]);
      assert.deepEqual(await transport.offsetsForTime(topic, base + 1500), [{ partition: 0, offset: 2 }]);
      assert.deepEqual(await transport.offsetsForTime(topic, base + 9000), [{ partition: 0, offset: 5 }]);
      const messages = await consume(transport, [topic], { kind: 'time', at: base + 2500 }, 2);
      assert.deepEqual(values(messages), ['t3', 't4']);
    });

    test('committed offsets survive a new subscription', async () => {
      const topic = await newTopic(2, 'commit');
      const groupId = uniqueTopicName('group');
      await transport.produce(
        ['a', 'b', 'c', 'd'].map((value) => ({ topic, key: null, partition: 0, value: Buffer.from(value) })),
      );

      assert.deepEqual(await transport.committedOffsets(groupId, topic), [
        { partition: 0, offset: -1 },
        { partition: 1, offset: -1 },
      ]);
      await transport.commit(groupId, [{ topic, partition: 0, offset: 2 }]);
      assert.deepEqual(await transport.committedOffsets(groupId, topic), [
        { partition: 0, offset: 2 },
        { partition: 1, offset: -1 },
      ]);

      const messages = await consume(transport, [topic], { kind: 'committed', fallback: 'earliest' }, 2, groupId);
      assert.deepEqual(values(messages), ['c', 'd']);
    });

    test('commit inside a running subscription', async () => {
      const topic = await newTopic(1, 'commit-live');
      const groupId = uniqueTopicName('group');
      await transport.produce(['a', 'b'].map((value) => ({ topic, key: null, value: Buffer.from(value) })));
      const seen = deferred();
      const subscription = await transport.subscribe({
        topics: [topic],
        groupId,
        from: { kind: 'committed', fallback: 'earliest' },
        eachBatch: async (batch) => {
          const last = batch[batch.length - 1];
          await transport.commit(groupId, [{ topic, partition: last.partition, offset: last.offset + 1 }]);
          if (last.offset === 1) seen.resolve();
        },
      });
      await seen.promise;
      await subscription.stop();

      assert.deepEqual(await transport.committedOffsets(groupId, topic), [{ partition: 0, offset: 2 }]);
    });

    test('committed offsets survive a restart', { skip: fixture.name === 'kafka' ? 'a broker keeps commits itself' : undefined }, async () => {
      const topic = await newTopic(1, 'restart');
      const groupId = 'restart-group';
      await transport.produce(['a', 'b', 'c'].map((value) => ({ topic, key: null, value: Buffer.from(value) })));
      await transport.commit(groupId, [{ topic, partition: 0, offset: 1 }]);

      transport = await fixture.reopen(transport);

      assert.deepEqual(await transport.committedOffsets(groupId, topic), [{ partition: 0, offset: 1 }]);
      assert.deepEqual(await transport.endOffsets(topic), [{ partition: 0, offset: 3 }]);
      const messages = await consume(transport, [topic], { kind: 'committed', fallback: 'latest' }, 2, groupId);
      assert.deepEqual(values(messages), ['b', 'c']);
    });

    test('committed start falls back without commits', async () => {
      const topic = await newTopic(1, 'fallback');
      const groupId = uniqueTopicName('group');
      await transport.produce([{ topic, key: null, value: Buffer.from('old') }]);
      const messages: ConsumedMessage[] = [];
      const arrived = deferred();
      const subscription = await transport.subscribe({
        topics: [topic],
        groupId,
        from: { kind: 'committed', fallback: 'latest' },
        eachBatch: async (batch) => {
          messages.push(...batch);
          arrived.resolve();
        },
      });
      await transport.produce([{ topic, key: null, value: Buffer.from('new') }]);
      await arrived.promise;
      await subscription.stop();

      assert.deepEqual(values(messages), ['new']);
    });

    test('next batch waits for the handler', async () => {
      const topic = await newTopic(1, 'backpressure');
      await transport.produce([{ topic, key: null, value: Buffer.from('first') }]);
      const messages: ConsumedMessage[] = [];
      let handlerRunning = false;
      let overlaps = 0;
      let calls = 0;
      const all = deferred();
      const subscription = await transport.subscribe({
        topics: [topic],
        from: { kind: 'earliest' },
        eachBatch: async (batch) => {
          if (handlerRunning) overlaps += 1;
          handlerRunning = true;
          calls += 1;
          if (calls === 1) {
            // More records arrive while this batch is held; they must wait for it.
            await transport.produce([{ topic, key: null, value: Buffer.from('second') }]);
            await new Promise((resolve) => setTimeout(resolve, 300));
          }
          messages.push(...batch);
          handlerRunning = false;
          if (messages.length >= 2) all.resolve();
        },
      });
      await all.promise;
      await subscription.stop();

      assert.equal(overlaps, 0);
      assert.deepEqual(values(messages), ['first', 'second']);
    });

    test('stop waits for the handler', async () => {
      const topic = await newTopic(1, 'stop');
      await transport.produce([{ topic, key: null, value: Buffer.from('x') }]);
      const entered = deferred();
      const release = deferred();
      let settled = false;
      const subscription = await transport.subscribe({
        topics: [topic],
        from: { kind: 'earliest' },
        eachBatch: async () => {
          entered.resolve();
          await release.promise;
          settled = true;
        },
      });
      await entered.promise;
      const stopped = subscription.stop();
      setTimeout(release.resolve, 50);
      await stopped;

      assert.equal(settled, true);
      await subscription.done;
    });

    test('handler failure ends the subscription', async () => {
      const topic = await newTopic(1, 'failure');
      await transport.produce([{ topic, key: null, value: Buffer.from('x') }]);
      const subscription = await transport.subscribe({
        topics: [topic],
        from: { kind: 'earliest' },
        eachBatch: async () => {
          throw new Error('handler broke');
        },
      });

      await assert.rejects(subscription.done, /handler broke/);
      await subscription.stop();
    });

    test('unknown topic names the fix', async () => {
      const topic = uniqueTopicName('missing');
      const expected = (error: unknown) => {
        assert.ok(error instanceof UnknownTopicError);
        assert.match(error.message, new RegExp(`topic "${topic}" does not exist`));
        assert.match(error.message, /tsalign topics create/);
        return true;
      };
      await assert.rejects(transport.produce([{ topic, key: 'k', value: Buffer.from('x') }]), expected);
      await assert.rejects(transport.endOffsets(topic), expected);
      await assert.rejects(transport.subscribe({ topics: [topic], from: { kind: 'earliest' }, eachBatch: async () => {} }), expected);
    });
  });
}

describe('kafka transport connection', () => {
  test('unreachable broker fails fast', { timeout: 20_000 }, async () => {
    const port = await freeLoopbackPort();
    const address = `127.0.0.1:${port}`;
    const transport = new KafkaTransport({ brokers: address });

    await assert.rejects(transport.connect(), (error: unknown) => {
      assert.ok(error instanceof BrokerUnreachableError);
      assert.match(error.message, new RegExp(`cannot reach the Kafka broker at ${address}`));
      assert.match(error.message, /--brokers or TSALIGN_BROKERS/);
      assert.match(error.message, /npm run kafka:start/);
      return true;
    });
  });

  test('invalid broker address is a usage error', () => {
    assert.throws(() => new KafkaTransport({ brokers: 'localhost' }), /invalid broker address "localhost": expected host:port/);
    assert.throws(() => new KafkaTransport({ brokers: ' , ' }), /no Kafka brokers given/);
  });
});
