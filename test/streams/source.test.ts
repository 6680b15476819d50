import { describe, test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subscription as RxSubscription } from 'rxjs';
import { createTransport } from '../../src/streams/create-transport';
import { encodeRecord, decodeRecord, SCHEMA_HEADER } from '../../src/streams/avro';
import { topicSource, type Delivered, type TopicSource } from '../../src/streams/source';
import type { Prompt } from '../../src/streams/records';
import type { Transport } from '../../src/streams/transport';
import { kafkaBrokersOrSkip, uniqueTopicName } from '../helpers/kafka';
import { setLogLevel } from '../../src/util/logger';

setLogLevel('warn');

/** Opens transports on one store, so a test can close one and open another as a restart. */
interface TransportCase {
  name: string;
  skip?: string;
  open(): Promise<Transport>;
  cleanup(): void;
}

function embeddedCase(): TransportCase {
  const dataDir = mkdtempSync(join(tmpdir(), 'tsalign-source-'));
  return {
    name: 'embedded',
    open: async () => {
      const transport = createTransport({ dataDir });
      await transport.connect();
      return transport;
    },
    cleanup: () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

function kafkaCase(): TransportCase {
  const { brokers, skip } = kafkaBrokersOrSkip();
  return {
    name: 'kafka',
    skip,
    open: async () => {
      const transport = createTransport({ brokers, clientId: 'tsalign-source-test' });
      await transport.connect();
      return transport;
    },
    cleanup: () => undefined,
  };
}

export function promptRecord(i: number): Prompt {
  return { id: `p${i}`, text: `prompt number ${i}`, source: 'test', tags: [], meta: {}, createdAt: BigInt(1_700_000_000_000 + i) };
}

async function producePrompts(transport: Transport, topic: string, from: number, count: number): Promise<void> {
  const messages = Array.from({ length: count }, (_, i) => {
    const encoded = encodeRecord('Prompt', promptRecord(from + i));
    return { topic, key: `p${from + i}`, value: encoded.value, headers: encoded.headers, partition: 0 };
  });
  await transport.produce(messages);
}

/** Subscribes and resolves once `count` records arrived; the subscription stays open. */
function take<T>(source: TopicSource<T>, count: number, onNext?: (delivered: Delivered<T>, seen: number) => void) {
  const seen: Array<Delivered<T>> = [];
  let subscription!: RxSubscription;
  const arrived = new Promise<Array<Delivered<T>>>((resolve, reject) => {
    subscription = source.subscribe({
      next: (delivered) => {
        seen.push(delivered);
        onNext?.(delivered, seen.length);
        if (seen.length === count) resolve(seen);
      },
      error: reject,
    });
  });
  return { arrived, subscription, seen };
}

for (const makeCase of [embeddedCase, kafkaCase]) {
  const transportCase = makeCase();
  describe(`topicSource on ${transportCase.name}`, { skip: transportCase.skip }, () => {
    const open: Transport[] = [];
    const openTransport = async () => {
      const transport = await transportCase.open();
      open.push(transport);
      return transport;
    };
    afterEach(async () => {
      for (const transport of open.splice(0)) await transport.close();
    });
    process.on('exit', () => transportCase.cleanup());

    test('redelivers un-acked records after restart', async () => {
      const topic = uniqueTopicName('source-redeliver');
      const groupId = uniqueTopicName('group');
      let transport = await openTransport();
      await transport.createTopics([{ name: topic, partitions: 1 }]);
      await producePrompts(transport, topic, 0, 10);

      const options = { topic, recordType: 'Prompt' as const, groupId, from: { kind: 'committed', fallback: 'earliest' } as const, maxInFlight: 100, drainTimeoutMs: 50 };
      const first = topicSource(transport, options);
      const run = take(first, 10);
      const delivered = await run.arrived;
      assert.deepEqual(delivered.map((d) => d.record.id), Array.from({ length: 10 }, (_, i) => `p${i}`));
      for (const i of [0, 1, 2, 3, 5, 6]) delivered[i].ack();
      run.subscription.unsubscribe();
      await first.closed();

      const committed = await transport.committedOffsets(groupId, topic);
      assert.deepEqual(committed, [{ partition: 0, offset: 4 }], 'the commit stops at the lowest un-acked offset 4');

      await transport.close();
      open.splice(0);
      transport = await openTransport();
      const second = topicSource(transport, options);
      const rerun = take(second, 6);
      const redelivered = await rerun.arrived;
      assert.deepEqual(redelivered.map((d) => d.record.id), ['p4', 'p5', 'p6', 'p7', 'p8', 'p9']);
      for (const d of redelivered) d.ack();
      const stopped = second.stop();
      await stopped;
      assert.deepEqual(await transport.committedOffsets(groupId, topic), [{ partition: 0, offset: 10 }]);
    });

    test('stop waits for in-flight acks and commits', async () => {
      const topic = uniqueTopicName('source-stop');
      const groupId = uniqueTopicName('group');
      const transport = await openTransport();
      await transport.createTopics([{ name: topic, partitions: 1 }]);
      await producePrompts(transport, topic, 0, 5);

      const source = topicSource(transport, { topic, recordType: 'Prompt', groupId, from: { kind: 'earliest' }, maxInFlight: 100 });
      let completed = false;
      const seen: Array<Delivered<Prompt>> = [];
      const allSeen = new Promise<void>((resolve) => {
        source.subscribe({
          next: (d) => {
            seen.push(d);
            if (seen.length === 5) resolve();
          },
          complete: () => (completed = true),
        });
      });
      await allSeen;
      const stopped = source.stop();
      let stopResolved = false;
      void stopped.then(() => (stopResolved = true));
      for (const d of seen) {
        await new Promise((resolve) => setImmediate(resolve));
        assert.equal(stopResolved, false, `stop resolved before ${d.record.id} was acked`);
        d.ack();
      }
      await stopped;
      assert.equal(completed, true);
      assert.deepEqual(await transport.committedOffsets(groupId, topic), [{ partition: 0, offset: 5 }]);
    });

    test('pauses fetching at maxInFlight', async () => {
      const topic = uniqueTopicName('source-bounded');
      const transport = await openTransport();
      await transport.createTopics([{ name: topic, partitions: 1 }]);
      await producePrompts(transport, topic, 0, 40);

      const maxInFlight = 3;
      let acked = 0;
      let largestInFlight = 0;
      const source = topicSource(transport, { topic, recordType: 'Prompt', from: { kind: 'earliest' }, maxInFlight });
      const run = take(source, 40, (delivered, seen) => {
        largestInFlight = Math.max(largestInFlight, seen - acked);
        // Acks arrive later, so an unbounded source would deliver far ahead of them.
        setTimeout(() => {
          acked++;
          delivered.ack();
        }, 1);
      });
      await run.arrived;
      await source.stop();
      assert.equal(largestInFlight, maxInFlight);
    });

    test('writes undecodable messages to the dlq', async () => {
      const topic = uniqueTopicName('source-dlq');
      const dlq = uniqueTopicName('source-dlq-letters');
      const groupId = uniqueTopicName('group');
      const transport = await openTransport();
      await transport.createTopics([
        { name: topic, partitions: 1 },
        { name: dlq, partitions: 1 },
      ]);
      await producePrompts(transport, topic, 0, 1);
      const unknownValue = encodeRecord('Prompt', promptRecord(1)).value;
      await transport.produce([{ topic, key: 'bad', value: unknownValue, headers: { [SCHEMA_HEADER]: Buffer.from('00000000deadbeef') }, partition: 0 }]);
      await producePrompts(transport, topic, 2, 1);

      const source = topicSource(transport, { topic, recordType: 'Prompt', groupId, from: { kind: 'earliest' }, maxInFlight: 10, dlq });
      const run = take(source, 2, (d) => d.ack());
      const delivered = await run.arrived;
      assert.deepEqual(delivered.map((d) => d.record.id), ['p0', 'p2']);
      await source.stop();
      assert.deepEqual(await transport.committedOffsets(groupId, topic), [{ partition: 0, offset: 3 }], 'the dead-lettered offset is committed too');

      const letters = topicSource(transport, { topic: dlq, recordType: 'DeadLetter', from: { kind: 'earliest' }, maxInFlight: 10 });
      const [letter] = await take(letters, 1, (d) => d.ack()).arrived;
      await letters.stop();
      assert.equal(letter.record.topic, topic);
      assert.equal(letter.record.partition, 0);
      assert.equal(letter.record.offset, 1n);
      assert.equal(letter.record.key, 'bad');
      assert.deepEqual(letter.record.value, unknownValue);
      assert.match(letter.record.error, /UnknownSchemaError: .*00000000deadbeef/);
    });

    test('errors on undecodable message without dlq', async () => {
      const topic = uniqueTopicName('source-nodlq');
      const transport = await openTransport();
      await transport.createTopics([{ name: topic, partitions: 1 }]);
      await transport.produce([{ topic, key: null, value: Buffer.from([1, 2, 3]), headers: {}, partition: 0 }]);
      const source = topicSource(transport, { topic, recordType: 'Prompt', from: { kind: 'earliest' }, maxInFlight: 10 });
      await assert.rejects(take(source, 1).arrived, /cannot decode Prompt at .* partition 0 offset 0: /);
      await source.closed();
    });

    test('decodes what the serde encoded', async () => {
      const topic = uniqueTopicName('source-roundtrip');
      const transport = await openTransport();
      await transport.createTopics([{ name: topic, partitions: 1 }]);
      await producePrompts(transport, topic, 7, 1);
      const source = topicSource(transport, { topic, recordType: 'Prompt', from: { kind: 'earliest' }, maxInFlight: 10 });
      const [delivered] = await take(source, 1, (d) => d.ack()).arrived;
      await source.stop();
      assert.deepEqual(delivered.record, promptRecord(7));
      assert.deepEqual(decodeRecord('Prompt', delivered.message.value, delivered.message.headers), promptRecord(7));
      assert.equal(delivered.message.offset, 0);
    });
  });
}
