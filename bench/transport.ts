/**
 * Transport throughput: records/s of a produce-then-consume pass over N records, raw against
 * through tsalign's sink and source with Avro, on Kafka and on the embedded log.
 *
 * Raw Kafka is kafkajs alone (producer.send in batches of 500, acks=all, then a consumer in a
 * consumer group with eachBatch); raw embedded is the EmbeddedTransport's produce and subscribe.
 * Both passes produce in batches of 500, and the raw messages are the Avro-encoded Prompt with
 * its schema header, so the ratio isolates tsalign's overhead: encoding, decoding, offset
 * tracking, commits and the RxJS plumbing. The records to write exist before the clock starts.
 * Each pass runs BENCH_TRANSPORT_REPEATS times (default 3), raw and tsalign taking turns, and
 * the table shows the median. Kafka is KAFKA_BROKERS, or a throwaway broker this function
 * starts and stops. Set BENCH_TRANSPORT_RECORDS to change N (default 20000), and
 * BENCH_TRANSPORTS to `embedded` or `kafka` to run one of them (default both).
 *
 * NOTE: the embedded ratio stays near 0.6 on a shared 2-core machine, short of 0.8, because the
 * raw embedded pass costs only about 3.8 us per record in all. On top of it, tsalign's pass
 * pays Avro encode (about 0.8 us on fresh records) and decode (about 0.5 us), which the raw
 * pass skips by reusing one encoded message, plus about 0.5 us of sink plumbing (RxJS emission
 * in and out, one queued message per record); the source adds almost nothing beyond decode.
 * Runs on this machine vary by about a quarter, so compare medians of several repeats.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { from, lastValueFrom } from 'rxjs';
import { createTransport } from '../src/streams/create-transport';
import { encodeRecord, type EncodedRecord } from '../src/streams/avro';
import { produceTo } from '../src/streams/sink';
import { topicSource } from '../src/streams/source';
import type { Prompt } from '../src/streams/records';
import type { Transport } from '../src/streams/transport';
import { startBroker, stopBroker } from '../scripts/kafka/broker';
import { setLogLevel } from '../src/util/logger';

const BATCH = 500;

interface PassResult {
  label: string;
  seconds: number;
}

function samplePrompt(i: number): Prompt {
  return {
    id: `bench-${i}`,
    text: `Human: please summarise paragraph ${i} of the report in two sentences.\n\nAssistant:`.padEnd(200, '.'),
    source: 'bench',
    tags: ['bench'],
    meta: {},
    createdAt: BigInt(Date.now()),
  };
}

/** Produces and consumes `count` records through tsalign's sink and source (Avro). */
async function tsalignPass(transport: Transport, count: number): Promise<number> {
  const topic = `bench-tsalign-${randomBytes(4).toString('hex')}`;
  await transport.createTopics([{ name: topic, partitions: 4 }]);
  const records = Array.from({ length: count }, (_, i) => samplePrompt(i));
  const started = performance.now();
  await lastValueFrom(from(records).pipe(produceTo(transport, { topic, recordType: 'Prompt', key: (prompt) => prompt.id, maxBatch: BATCH })));
  const source = topicSource(transport, { topic, recordType: 'Prompt', groupId: `${topic}-group`, from: { kind: 'earliest' }, maxInFlight: 2000 });
  await new Promise<void>((resolve, reject) => {
    let seen = 0;
    source.subscribe({
      next: ({ ack }) => {
        ack();
        if (++seen === count) resolve();
      },
      error: reject,
    });
  });
  // Stopping a consumer (leaving its group) is setup cost, as the raw passes leave it out too.
  const seconds = (performance.now() - started) / 1000;
  await source.stop();
  return seconds;
}

/** Produces and consumes `count` pre-encoded messages with the transport's own calls. */
async function rawTransportPass(transport: Transport, count: number, { value, headers }: EncodedRecord): Promise<number> {
  const topic = `bench-raw-${randomBytes(4).toString('hex')}`;
  await transport.createTopics([{ name: topic, partitions: 4 }]);
  const started = performance.now();
  for (let i = 0; i < count; i += BATCH) {
    const size = Math.min(BATCH, count - i);
    await transport.produce(Array.from({ length: size }, (_, j) => ({ topic, key: `bench-${i + j}`, value, headers })));
  }
  let seen = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const subscription = await transport.subscribe({
    topics: [topic],
    from: { kind: 'earliest' },
    eachBatch: async (messages) => {
      seen += messages.length;
      if (seen >= count) finish();
    },
  });
  await done;
  const seconds = (performance.now() - started) / 1000;
  await subscription.stop();
  return seconds;
}

/** Produces and consumes `count` messages with kafkajs alone. */
async function rawKafkaPass(brokers: string, count: number, { value, headers }: EncodedRecord): Promise<number> {
  const kafka = new Kafka({ clientId: 'tsalign-bench', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  const topic = `bench-kafkajs-${randomBytes(4).toString('hex')}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer();
  const consumer = kafka.consumer({ groupId: `${topic}-group` });
  await Promise.all([producer.connect(), consumer.connect()]);
  try {
    const started = performance.now();
    for (let i = 0; i < count; i += BATCH) {
      const size = Math.min(BATCH, count - i);
      await producer.send({ topic, acks: -1, messages: Array.from({ length: size }, (_, j) => ({ key: `bench-${i + j}`, value, headers })) });
    }
    await consumer.subscribe({ topic, fromBeginning: true });
    let seen = 0;
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachBatch: async ({ batch }) => {
            seen += batch.messages.length;
            if (seen >= count) resolve();
          },
        })
        .catch(reject);
    });
    return (performance.now() - started) / 1000;
  } finally {
    await Promise.all([producer.disconnect(), consumer.disconnect()]);
  }
}

/** Median records/s of one transport, raw and through tsalign's sink and source. */
export interface TransportBenchRow {
  transport: string;
  records: number;
  rawPerSecond: number;
  tsalignPerSecond: number;
}

function toRows(count: number, passes: Array<[string, PassResult, PassResult]>): TransportBenchRow[] {
  return passes.map(([transport, raw, tsalign]) => ({ transport, records: count, rawPerSecond: count / raw.seconds, tsalignPerSecond: count / tsalign.seconds }));
}

function printRows(count: number, rows: readonly TransportBenchRow[]): void {
  console.log(`transport throughput: ${count} records produced then consumed, records/s`);
  console.log(`${'transport'.padEnd(10)} ${'raw'.padStart(10)} ${'tsalign+avro'.padStart(13)} ${'ratio'.padStart(6)}`);
  for (const { transport, rawPerSecond, tsalignPerSecond } of rows) {
    console.log(`${transport.padEnd(10)} ${rawPerSecond.toFixed(0).padStart(10)} ${tsalignPerSecond.toFixed(0).padStart(13)} ${(tsalignPerSecond / rawPerSecond).toFixed(2).padStart(6)}`);
  }
}

/** Runs `raw` and `tsalign` `repeats` times, taking turns, and returns the median seconds of each. */
async function medianPasses(repeats: number, raw: () => Promise<number>, tsalign: () => Promise<number>): Promise<[PassResult, PassResult]> {
  const rawSeconds: number[] = [];
  const tsalignSeconds: number[] = [];
  for (let i = 0; i < repeats; i++) {
    rawSeconds.push(await raw());
    tsalignSeconds.push(await tsalign());
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  return [
    { label: 'raw', seconds: median(rawSeconds) },
    { label: 'tsalign', seconds: median(tsalignSeconds) },
  ];
}

/** Runs the transport benchmark, prints a table of records/s on stdout and returns its rows. */
export async function benchTransport(): Promise<TransportBenchRow[]> {
  setLogLevel('warn');
  const count = Number(process.env.BENCH_TRANSPORT_RECORDS ?? 20000);
  const repeats = Number(process.env.BENCH_TRANSPORT_REPEATS ?? 3);
  const transports = (process.env.BENCH_TRANSPORTS ?? 'embedded,kafka').split(',').map((name) => name.trim());
  const encoded = encodeRecord('Prompt', samplePrompt(0));
  const passes: Array<[string, PassResult, PassResult]> = [];

  if (transports.includes('embedded')) await benchEmbedded(count, repeats, encoded, passes);
  if (transports.includes('kafka')) await benchKafka(count, repeats, encoded, passes);
  const rows = toRows(count, passes);
  printRows(count, rows);
  return rows;
}

async function benchEmbedded(count: number, repeats: number, encoded: EncodedRecord, rows: Array<[string, PassResult, PassResult]>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tsalign-bench-'));
  try {
    const embedded = createTransport({ dataDir });
    await embedded.connect();
    try {
      const [raw, tsalign] = await medianPasses(repeats, () => rawTransportPass(embedded, count, encoded), () => tsalignPass(embedded, count));
      rows.push(['embedded', raw, tsalign]);
    } finally {
      await embedded.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function benchKafka(count: number, repeats: number, encoded: EncodedRecord, rows: Array<[string, PassResult, PassResult]>): Promise<void> {
  let brokers = process.env.KAFKA_BROKERS?.trim();
  let stateDir: string | undefined;
  if (!brokers) {
    stateDir = mkdtempSync(join(tmpdir(), 'tsalign-bench-kafka-'));
    brokers = (await startBroker({ stateDir, progress: (line) => console.error(`kafka: ${line}`) })).brokers;
  }
  try {
    const kafka = createTransport({ brokers, clientId: 'tsalign-bench' });
    await kafka.connect();
    try {
      const [raw, tsalign] = await medianPasses(repeats, () => rawKafkaPass(brokers, count, encoded), () => tsalignPass(kafka, count));
      rows.push(['kafka', raw, tsalign]);
    } finally {
      await kafka.close();
    }
  } finally {
    if (stateDir !== undefined) {
      await stopBroker({ stateDir });
      rmSync(stateDir, { recursive: true, force: true });
    }
  }
}

if (require.main === module) {
  benchTransport().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
