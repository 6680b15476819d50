import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subject, firstValueFrom, from, lastValueFrom, toArray } from 'rxjs';
import { createTransport } from '../../src/streams/create-transport';
import { ackAfterAll, produceAcked, produceTo, RecordWriter } from '../../src/streams/sink';
import { topicSource } from '../../src/streams/source';
import type { Prompt } from '../../src/streams/records';
import type { ProduceRecord, RecordPosition, Transport } from '../../src/streams/transport';
import { SchemaValidationError } from '../../src/streams/avro';
import { kafkaBrokersOrSkip, uniqueTopicName } from '../helpers/kafka';
import { setLogLevel } from '../../src/util/logger';

setLogLevel('warn');

function promptRecord(i: number): Prompt {
  return { id: `p${i}`, text: `prompt number ${i}`, source: 'test', tags: [], meta: {}, createdAt: BigInt(i) };
}

/** Wraps a transport to record the size of each produce call. */
function countingProduce(transport: Transport, sizes: number[]): Transport {
  return new Proxy(transport, {
    get(target, property, receiver) {
      if (property === 'produce') {
        return (records: ProduceRecord[]) => {
          sizes.push(records.length);
          return target.produce(records);
        };
      }
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const kafka = kafkaBrokersOrSkip();
const dataDir = mkdtempSync(join(tmpdir(), 'tsalign-sink-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

const cases = [
  { name: 'embedded', skip: undefined, options: { dataDir } },
  { name: 'kafka', skip: kafka.skip, options: { brokers: kafka.brokers, clientId: 'tsalign-sink-test' } },
];

for (const transportCase of cases) {
  describe(`sink on ${transportCase.name}`, { skip: transportCase.skip }, () => {
    let transport: Transport;
    before(async () => {
      transport = createTransport(transportCase.options);
      await transport.connect();
    });
    after(async () => transport?.close());

    test('produceTo batches and keeps order', async () => {
      const topic = uniqueTopicName('sink-order');
      await transport.createTopics([{ name: topic, partitions: 2 }]);
      const sizes: number[] = [];
      const records = Array.from({ length: 25 }, (_, i) => promptRecord(i));
      const positions = await lastValueFrom(
        from(records).pipe(produceTo(countingProduce(transport, sizes), { topic, recordType: 'Prompt', key: (prompt) => prompt.id, maxBatch: 10 }), toArray()),
      );
      assert.equal(positions.length, 25);
      assert.deepEqual(sizes, [10, 10, 5], 'records that arrive together share produce calls');
      assert.ok(positions.every((position) => position.topic === topic));

      const source = topicSource(transport, { topic, recordType: 'Prompt', from: { kind: 'earliest' }, maxInFlight: 100 });
      const read = new Map<string, RecordPosition>();
      await new Promise<void>((resolve, reject) => {
        source.subscribe({
          next: ({ record, message, ack }) => {
            read.set(record.id, { topic: message.topic, partition: message.partition, offset: message.offset });
            ack();
            if (read.size === 25) resolve();
          },
          error: reject,
        });
      });
      await source.stop();
      records.forEach((record, i) => assert.deepEqual(read.get(record.id), positions[i], `position of ${record.id}`));
    });

    test('produceAcked acks after the write', async () => {
      const topic = uniqueTopicName('sink-acked');
      await transport.createTopics([{ name: topic, partitions: 1 }]);
      const acks: string[] = [];
      const input = new Subject<{ record: Prompt; ack(): void }>();
      const output = lastValueFrom(input.pipe(produceAcked(transport, { topic, recordType: 'Prompt', key: (prompt) => prompt.id }), toArray()));
      for (let i = 0; i < 3; i++) {
        const record = promptRecord(i);
        input.next({
          record,
          ack: () => {
            acks.push(record.id);
          },
        });
      }
      assert.deepEqual(acks, [], 'nothing is acked before the produce resolved');
      input.complete();
      const produced = await output;
      assert.deepEqual(acks, ['p0', 'p1', 'p2']);
      assert.deepEqual(produced.map((item) => [item.record.id, item.position.offset]), [
        ['p0', 0],
        ['p1', 1],
        ['p2', 2],
      ]);
      const ends = await transport.endOffsets(topic);
      assert.deepEqual(ends, [{ partition: 0, offset: 3 }]);
    });

    test('invalid record errors the output', async () => {
      const topic = uniqueTopicName('sink-invalid');
      await transport.createTopics([{ name: topic, partitions: 1 }]);
      const bad = { ...promptRecord(0), createdAt: 'yesterday' } as unknown as Prompt;
      await assert.rejects(
        firstValueFrom(from([bad]).pipe(produceTo(transport, { topic, recordType: 'Prompt', key: (prompt) => prompt.id }))),
        (error: unknown) => error instanceof SchemaValidationError,
      );
    });

    test('failed produce rejects each write', async () => {
      const writer = new RecordWriter(transport, { topic: uniqueTopicName('sink-missing'), recordType: 'Prompt', key: (prompt) => prompt.id });
      const writes = [writer.write(promptRecord(0)), writer.write(promptRecord(1))];
      for (const write of writes) await assert.rejects(write, /does not exist/);
      await writer.flush();
      assert.equal(writer.pending, 0);
    });
  });
}

describe('ackAfterAll', () => {
  test('acks once every part is acked', () => {
    let acked = 0;
    const parts = ackAfterAll(() => acked++, 3);
    parts[0]();
    parts[0]();
    parts[2]();
    assert.equal(acked, 0);
    parts[1]();
    assert.equal(acked, 1);
  });

  test('acks at once for zero parts', () => {
    let acked = 0;
    assert.deepEqual(ackAfterAll(() => acked++, 0), []);
    assert.equal(acked, 1);
  });
});
