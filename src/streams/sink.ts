/**
 * Writing records to a topic: a batching writer and the RxJS operators built on it.
 *
 * Records that arrive while a produce call is in flight are gathered into the next call, so a
 * burst costs one round trip per batch instead of one per record, and output order is input
 * order.
 */
import { Observable, type OperatorFunction } from 'rxjs';
import { encodeRecord } from './avro';
import type { RecordTypeName, RecordTypes } from './records';
import type { ProduceRecord, RecordPosition, Transport } from './transport';

export interface SinkOptions<K extends RecordTypeName> {
  /** Full topic name, prefix included. */
  topic: string;
  recordType: K;
  /** Message key of a record, usually its id; records with one key share a partition. */
  key(record: RecordTypes[K]): string | null;
  /** Maximum records per produce call. Default 500. */
  maxBatch?: number;
}

interface QueuedWrite {
  message: ProduceRecord;
  resolve(position: RecordPosition): void;
  reject(error: unknown): void;
}

/**
 * Encodes and produces records in batches. `write` resolves once its record is durable;
 * writes fail in their own promise, and a failed batch fails every write in it.
 */
export class RecordWriter<K extends RecordTypeName> {
  /** Writes waiting for the next produce call. */
  private queue: QueuedWrite[] = [];
  /** The produce call in flight, if any. */
  private inFlight: Promise<void> | undefined;
  private readonly maxBatch: number;

  constructor(
    private readonly transport: Transport,
    private readonly options: SinkOptions<K>,
  ) {
    this.maxBatch = options.maxBatch ?? 500;
  }

  /** Writes still queued or in flight. */
  get pending(): number {
    return this.queue.length + (this.inFlight === undefined ? 0 : 1);
  }

  /**
   * Encodes a record and queues it. Throws a SchemaValidationError at once, before anything is
   * queued, when the record does not match its schema.
   */
  write(record: RecordTypes[K]): Promise<RecordPosition> {
    const encoded = encodeRecord(this.options.recordType, record);
    const message: ProduceRecord = {
      topic: this.options.topic,
      key: this.options.key(record),
      value: encoded.value,
      headers: encoded.headers,
    };
    return new Promise<RecordPosition>((resolve, reject) => {
      this.queue.push({ message, resolve, reject });
      // Start on a microtask so that writes made in the same tick share the batch.
      if (this.inFlight === undefined) this.inFlight = Promise.resolve().then(() => this.drain());
    });
  }

  /** Resolves when every write made so far has settled. */
  async flush(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const positions = await this.transport.produce(batch.map((write) => write.message));
        batch.forEach((write, i) => write.resolve(positions[i]));
      } catch (error) {
        for (const write of batch) write.reject(error);
      }
    }
    this.inFlight = undefined;
  }
}

/** A record on its way to a topic with the acknowledgement of the delivery it came from. */
export interface Pending<T> {
  readonly record: T;
  ack(): void;
}

/** A record that is durable on its topic. */
export interface Produced<T> {
  readonly record: T;
  readonly position: RecordPosition;
}

/**
 * Produces each record to a topic and emits its position once durable, in input order.
 *
 * ```
 * records:    --a-b-c------|
 * produce:    --[a]-[b,c]--          (b and c arrive while a is in flight: one batch)
 * positions:  ------pa----pb-pc|
 * ```
 *
 * A record that fails validation or a failed produce errors the output. The output completes
 * after the input completed and every write settled.
 */
export function produceTo<K extends RecordTypeName>(transport: Transport, options: SinkOptions<K>): OperatorFunction<RecordTypes[K], RecordPosition> {
  return writeEach(transport, options, (record: RecordTypes[K]) => record, (_record, position) => position);
}

/**
 * Produces each pending record, then calls its `ack` and emits it with its position, so the
 * delivery it came from is committed only after the write is durable. Acks run even when the
 * output was unsubscribed meanwhile, because the record was written.
 *
 * ```
 * pending:    --a-b---|
 * produce:    --[a]-[b]-
 * ack:        ------A---B            (A: a.ack() once a is durable)
 * produced:   ------a'--b'|
 * ```
 */
export function produceAcked<K extends RecordTypeName>(
  transport: Transport,
  options: SinkOptions<K>,
): OperatorFunction<Pending<RecordTypes[K]>, Produced<RecordTypes[K]>> {
  return writeEach(
    transport,
    options,
    (pending: Pending<RecordTypes[K]>) => pending.record,
    (pending, position) => {
      pending.ack();
      return { record: pending.record, position };
    },
  );
}

function writeEach<K extends RecordTypeName, I, O>(
  transport: Transport,
  options: SinkOptions<K>,
  recordOf: (item: I) => RecordTypes[K],
  onWritten: (item: I, position: RecordPosition) => O,
): OperatorFunction<I, O> {
  return (input) =>
    new Observable<O>((subscriber) => {
      const writer = new RecordWriter(transport, options);
      // Writes started and not yet settled; the output completes when it is 0 after the input.
      let unsettled = 0;
      let inputComplete = false;

      const subscription = input.subscribe({
        next: (item) => {
          let written: Promise<RecordPosition>;
          try {
            written = writer.write(recordOf(item));
          } catch (error) {
            subscriber.error(error);
            return;
          }
          unsettled++;
          written.then(
            (position) => {
              unsettled--;
              const output = onWritten(item, position);
              // Emitting after the await keeps order: writes settle in the order they were made.
              subscriber.next(output);
              if (inputComplete && unsettled === 0) subscriber.complete();
            },
            (error: unknown) => subscriber.error(error),
          );
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          inputComplete = true;
          if (unsettled === 0) subscriber.complete();
        },
      });
      return subscription;
    });
}

/**
 * Returns `count` acknowledgements that call `ack` once all of them were called, for a record
 * that produces several outputs. With `count` 0 it calls `ack` at once.
 */
export function ackAfterAll(ack: () => void, count: number): Array<() => void> {
  if (count === 0) {
    ack();
    return [];
  }
  let remaining = count;
  return Array.from({ length: count }, () => {
    let called = false;
    return () => {
      if (called) return;
      called = true;
      remaining--;
      if (remaining === 0) ack();
    };
  });
}
