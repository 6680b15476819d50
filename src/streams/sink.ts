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
  resolve(position: RecordPosition): void;
  reject(error: unknown): void;
}

/**
 * Called once per produce call with the tags of its records, in write order, and either their
 * positions or the error that failed the whole batch.
 */
type BatchSettled<T> = (tags: readonly T[], positions: readonly RecordPosition[] | undefined, error: unknown) => void;

/**
 * Encodes records and produces them in batches, tagging each record with a caller's value and
 * reporting each batch once. The operators use it directly, so a record costs no promise.
 */
class BatchWriter<K extends RecordTypeName, T> {
  /** Messages waiting for a produce call, from `head` on, and the tag of each. */
  private messages: ProduceRecord[] = [];
  private tags: T[] = [];
  private head = 0;
  /** The drain loop, while it runs. */
  inFlight: Promise<void> | undefined;
  private readonly maxBatch: number;

  constructor(
    private readonly transport: Transport,
    private readonly options: SinkOptions<K>,
    private readonly settled: BatchSettled<T>,
  ) {
    this.maxBatch = options.maxBatch ?? 500;
  }

  get queued(): number {
    return this.messages.length - this.head;
  }

  /** Encodes and queues a record. Throws a SchemaValidationError, queueing nothing, for an invalid one. */
  add(record: RecordTypes[K], tag: T): void {
    const encoded = encodeRecord(this.options.recordType, record);
    this.messages.push({ topic: this.options.topic, key: this.options.key(record), value: encoded.value, headers: encoded.headers });
    this.tags.push(tag);
    // Start on a microtask so that writes made in the same tick share the batch.
    this.inFlight ??= Promise.resolve().then(() => this.drain());
  }

  private async drain(): Promise<void> {
    while (this.head < this.messages.length) {
      const end = Math.min(this.head + this.maxBatch, this.messages.length);
      let messages: ProduceRecord[];
      let tags: T[];
      if (this.head === 0 && end === this.messages.length) {
        // The whole queue fits one batch: hand it over rather than copy it.
        messages = this.messages;
        tags = this.tags;
        this.messages = [];
        this.tags = [];
      } else {
        messages = this.messages.slice(this.head, end);
        tags = this.tags.slice(this.head, end);
        this.head = end;
        if (this.head === this.messages.length) {
          this.messages = [];
          this.tags = [];
          this.head = 0;
        }
      }
      let positions: RecordPosition[];
      try {
        positions = await this.transport.produce(messages);
      } catch (error) {
        this.settled(tags, undefined, error);
        continue;
      }
      this.settled(tags, positions, undefined);
    }
    this.inFlight = undefined;
  }
}

/**
 * Encodes and produces records in batches. `write` resolves once its record is durable;
 * writes fail in their own promise, and a failed batch fails every write in it.
 */
export class RecordWriter<K extends RecordTypeName> {
  private readonly batches: BatchWriter<K, QueuedWrite>;

  constructor(transport: Transport, options: SinkOptions<K>) {
    this.batches = new BatchWriter<K, QueuedWrite>(transport, options, (writes, positions, error) => {
      if (positions === undefined) for (const write of writes) write.reject(error);
      else for (let i = 0; i < writes.length; i++) writes[i].resolve(positions[i]);
    });
  }

  /** Writes still queued or in flight. */
  get pending(): number {
    return this.batches.queued + (this.batches.inFlight === undefined ? 0 : 1);
  }

  /**
   * Encodes a record and queues it. Throws a SchemaValidationError at once, before anything is
   * queued, when the record does not match its schema.
   */
  write(record: RecordTypes[K]): Promise<RecordPosition> {
    let settle!: QueuedWrite;
    const written = new Promise<RecordPosition>((resolve, reject) => (settle = { resolve, reject }));
    this.batches.add(record, settle);
    return written;
  }

  /** Resolves when every write made so far has settled. */
  async flush(): Promise<void> {
    while (this.batches.inFlight !== undefined) await this.batches.inFlight;
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
      // Writes started and not yet settled; the output completes when it is 0 after the input.
      let unsettled = 0;
      let inputComplete = false;
      // One callback per produce call: batches settle in the order they were made, so emitting
      // here keeps input order without a promise per record.
      const writer = new BatchWriter<K, I>(transport, options, (items, positions, error) => {
        unsettled -= items.length;
        if (positions === undefined) {
          subscriber.error(error);
          return;
        }
        try {
          for (let i = 0; i < items.length; i++) subscriber.next(onWritten(items[i], positions[i]));
        } catch (callbackError) {
          // An item's ack threw: the stream fails, and the writer goes on with the next batch.
          subscriber.error(callbackError);
          return;
        }
        if (inputComplete && unsettled === 0) subscriber.complete();
      });

      return input.subscribe({
        next: (item) => {
          try {
            writer.add(recordOf(item), item);
          } catch (error) {
            subscriber.error(error);
            return;
          }
          unsettled++;
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          inputComplete = true;
          if (unsettled === 0) subscriber.complete();
        },
      });
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
