/**
 * A topic as an RxJS source of decoded records, with at-least-once delivery.
 *
 * ```
 * topic:      --m0--m1--m2--m3-----------
 * delivered:  --d0--d1----------d2--d3---   (maxInFlight 2: m2 waits until d0 or d1 is acked)
 * acks:       -------a1--a0---------------
 * commits:    -----------c2---------------  (offset 2 = the lowest un-acked offset)
 * ```
 *
 * Each emitted `Delivered` carries its record, the consumed message and `ack()`. The group's
 * offset of a partition advances only up to the lowest un-acknowledged offset, so after a crash
 * every record that was not acknowledged, and everything after it, is read again. Call `ack()`
 * once the record and everything produced from it are durable (see `produceAcked` in sink.ts).
 *
 * Example:
 * ```ts
 * const source = topicSource(transport, { topic: 'tsalign.prompts', recordType: 'Prompt',
 *   groupId: 'chain', from: { kind: 'committed', fallback: 'earliest' }, maxInFlight: 64,
 *   dlq: 'tsalign.dlq' });
 * source.subscribe(({ record, ack }) => { console.log(record.text); ack(); });
 * await source.stop(); // stops fetching, waits for the acks in flight, commits, completes
 * ```
 */
import { Observable, type Subscriber } from 'rxjs';
import { decodeRecord, encodeRecord, AvroDecodeError, UnknownSchemaError } from './avro';
import { OffsetTracker } from './offset-tracker';
import type { DeadLetter, RecordTypeName, RecordTypes } from './records';
import type { ConsumedMessage, StartPosition, Subscription, Transport } from './transport';
import { errorMessage } from '../util/errors';
import { childLogger, type Logger } from '../util/logger';

/** One consumed record and the callback that acknowledges it. */
export interface Delivered<T> {
  readonly record: T;
  readonly message: ConsumedMessage;
  /** Marks the record as processed; its offset may then be committed. Calls after the first do nothing. */
  ack(): void;
}

export interface TopicSourceOptions<K extends RecordTypeName> {
  /** Full topic name, prefix included. */
  topic: string;
  recordType: K;
  /** Consumer group whose offsets are read and committed; without one nothing is committed. */
  groupId?: string;
  from: StartPosition;
  /** Un-acknowledged records after which fetching pauses. */
  maxInFlight: number;
  /** Topic for messages that cannot be decoded, written as DeadLetter records. */
  dlq?: string;
  /**
   * Called for a message that cannot be decoded when there is no `dlq`; the message is then
   * acknowledged and skipped. Without `dlq` or this callback such a message errors the stream.
   */
  onUndecodable?: (message: ConsumedMessage, error: Error) => void;
  /** Milliseconds between commits while acks arrive. Default 1000. */
  commitIntervalMs?: number;
  /** Milliseconds an unsubscribed source waits for in-flight acks before its last commit. Default 5000. */
  drainTimeoutMs?: number;
}

/**
 * An Observable of a topic's records. Every subscription is its own consumer with its own
 * offset tracking. `stop()` ends all of them gracefully, and `closed()` waits for the last
 * commit of each subscription that ended, however it ended.
 */
export class TopicSource<T> extends Observable<Delivered<T>> {
  private readonly sessions = new Set<SourceSession<T>>();
  private readonly closing = new Set<Promise<void>>();

  constructor(transport: Transport, options: TopicSourceOptions<RecordTypeName>) {
    super((subscriber) => {
      const session = new SourceSession<T>(transport, options, subscriber);
      this.sessions.add(session);
      session.start();
      return () => {
        this.sessions.delete(session);
        const closed = session.close();
        this.closing.add(closed);
        void closed.finally(() => this.closing.delete(closed));
      };
    });
  }

  /**
   * Stops fetching, waits until every delivered record is acknowledged, commits and completes
   * each subscription. Resolves when all of that is done.
   */
  async stop(): Promise<void> {
    await Promise.all([...this.sessions].map((session) => session.drainAndComplete()));
    await this.closed();
  }

  /** Resolves when every subscription that ended so far has stopped fetching and committed. */
  async closed(): Promise<void> {
    await Promise.all([...this.closing]);
  }
}

/** Returns the records of a topic as a `TopicSource`; see the file comment for the contract. */
export function topicSource<K extends RecordTypeName>(transport: Transport, options: TopicSourceOptions<K>): TopicSource<RecordTypes[K]> {
  if (!Number.isInteger(options.maxInFlight) || options.maxInFlight < 1) {
    throw new RangeError(`maxInFlight must be a whole number of at least 1, got ${options.maxInFlight}`);
  }
  return new TopicSource<RecordTypes[K]>(transport, options);
}

/** The state of one subscription: its transport subscription, offsets and waiters. */
class SourceSession<T> {
  private readonly tracker = new OffsetTracker();
  private readonly log: Logger;
  /** Set once no more records may be delivered: on stop, unsubscribe or error. */
  private stopping = false;
  /** Resolves with the transport subscription, or undefined when subscribing failed. */
  private subscription: Promise<Subscription | undefined> = Promise.resolve(undefined);
  /** Wakes a fetch that waits for room below maxInFlight. */
  private capacityWaiters: Array<() => void> = [];
  /** Wakes a drain that waits for the last ack. */
  private drainWaiters: Array<() => void> = [];
  private commitTimer: NodeJS.Timeout | undefined;
  /** The commit chain; commits run one at a time so offsets never go backwards. */
  private committing: Promise<void> = Promise.resolve();
  private closePromise: Promise<void> | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly options: TopicSourceOptions<RecordTypeName>,
    private readonly subscriber: Subscriber<Delivered<T>>,
  ) {
    this.log = childLogger('topic-source', { topic: options.topic, groupId: options.groupId });
  }

  start(): void {
    this.subscription = this.transport
      .subscribe({
        groupId: this.options.groupId,
        topics: [this.options.topic],
        from: this.options.from,
        eachBatch: (messages) => this.deliverBatch(messages),
      })
      .then(
        (subscription) => {
          subscription.done.then(
            () => {
              // The transport ended the subscription without being asked to (a deleted topic):
              // drain what is in flight and complete.
              if (!this.stopping) void this.drainAndComplete();
            },
            (error: unknown) => this.fail(error),
          );
          return subscription;
        },
        (error: unknown) => {
          this.fail(error);
          return undefined;
        },
      );
  }

  private async deliverBatch(messages: ConsumedMessage[]): Promise<void> {
    try {
      for (const message of messages) {
        // Await only when needed: a promise per record costs more than decoding it.
        if (this.tracker.inFlight >= this.options.maxInFlight) await this.waitForCapacity();
        // Records not delivered here were never tracked, so they are read again next time.
        if (this.stopping) return;
        const deadLetter = this.deliver(message);
        if (deadLetter !== undefined) await deadLetter;
      }
    } catch (error) {
      // Errors travel on the stream's error channel, not into the transport's fetch loop.
      this.fail(error);
    }
  }

  /** Decodes, tracks and emits one message; returns a promise only for an undecodable one. */
  private deliver(message: ConsumedMessage): Promise<void> | undefined {
    if (message.offset <= this.tracker.lastTracked(message.topic, message.partition)) {
      // The transport reads the partition again from an earlier offset (after a rebalance).
      // Records in flight from before stay in flight, but no longer hold back commits.
      this.log.warn({ partition: message.partition, offset: message.offset }, 'partition is read again from an earlier offset');
      this.tracker.reset(message.topic, message.partition);
    }

    let record: T;
    try {
      record = decodeRecord(this.options.recordType, message.value, message.headers) as T;
    } catch (error) {
      if (!(error instanceof UnknownSchemaError || error instanceof AvroDecodeError)) throw error;
      return this.deadLetter(message, error);
    }

    this.tracker.track(message);
    this.subscriber.next({ record, message, ack: this.ackOnce(message) });
    return undefined;
  }

  /** Returns the `ack` of one delivered message: it acknowledges the message on its first call. */
  private ackOnce(message: ConsumedMessage): () => void {
    let acked = false;
    // An unnamed function: tsx (esbuild keepNames) would wrap a named one in a defineProperty
    // call, which costs more per record than the closure.
    return () => {
      if (acked) return;
      acked = true;
      this.acknowledge(message);
    };
  }

  private async deadLetter(message: ConsumedMessage, error: Error): Promise<void> {
    const { partition, offset } = message;
    const dlq = this.options.dlq;
    if (dlq === undefined && this.options.onUndecodable !== undefined) {
      this.tracker.track(message);
      this.options.onUndecodable(message, error);
      this.acknowledge(message);
      return;
    }
    if (dlq === undefined) {
      throw new Error(
        `cannot decode ${this.options.recordType} at ${message.topic} partition ${partition} offset ${offset}: ${error.message}`,
        { cause: error },
      );
    }
    this.log.warn({ partition, offset, dlq, err: errorMessage(error) }, 'message cannot be decoded, writing it to the dead-letter topic');
    this.tracker.track(message);
    await writeDeadLetter(this.transport, dlq, message, `${error.name}: ${error.message}`);
    this.acknowledge(message);
  }

  private acknowledge(message: ConsumedMessage): void {
    if (!this.tracker.ack(message)) return;
    // Check first: splice allocates an array even when no fetch waits, and this runs per record.
    if (this.capacityWaiters.length > 0) for (const wake of this.capacityWaiters.splice(0)) wake();
    if (this.tracker.inFlight === 0 && this.drainWaiters.length > 0) for (const wake of this.drainWaiters.splice(0)) wake();
    this.scheduleCommit();
  }

  private async waitForCapacity(): Promise<void> {
    while (!this.stopping && this.tracker.inFlight >= this.options.maxInFlight) {
      await new Promise<void>((resolve) => this.capacityWaiters.push(resolve));
    }
  }

  /** Resolves when nothing is in flight, or after `timeoutMs` when given. */
  private async waitForDrain(timeoutMs?: number): Promise<void> {
    if (this.tracker.inFlight === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.drainWaiters.push(resolve);
      if (timeoutMs !== undefined) timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
    if (this.tracker.inFlight > 0) {
      this.log.warn({ inFlight: this.tracker.inFlight, timeoutMs }, 'records still unacknowledged at close; they will be read again');
    }
  }

  private scheduleCommit(): void {
    if (this.options.groupId === undefined || this.commitTimer !== undefined) return;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = undefined;
      void this.commit();
    }, this.options.commitIntervalMs ?? 1000);
    this.commitTimer.unref();
  }

  private commit(): Promise<void> {
    const groupId = this.options.groupId;
    if (groupId === undefined) return Promise.resolve();
    this.committing = this.committing.then(async () => {
      const positions = this.tracker.committable();
      if (positions.length === 0) return;
      try {
        await this.transport.commit(groupId, positions);
        this.log.debug({ positions }, 'committed offsets');
      } catch (error) {
        // A later commit carries these partitions' newer offsets; until then a restart reads
        // the records again, which at-least-once delivery allows.
        this.log.error({ positions, err: errorMessage(error) }, 'offset commit failed');
      }
    });
    return this.committing;
  }

  private fail(error: unknown): void {
    if (this.subscriber.closed) {
      this.log.error({ err: errorMessage(error) }, 'topic source failed after its subscriber closed');
      return;
    }
    this.stopping = true;
    this.wakeAll();
    this.subscriber.error(error);
  }

  private wakeAll(): void {
    for (const wake of this.capacityWaiters.splice(0)) wake();
  }

  /** Graceful stop: no more fetches, every delivered record acked, a commit, then complete. */
  async drainAndComplete(): Promise<void> {
    this.stopping = true;
    this.wakeAll();
    await (await this.subscription)?.stop();
    await this.waitForDrain();
    await this.commit();
    if (!this.subscriber.closed) this.subscriber.complete();
  }

  /** Teardown after unsubscribe, error or complete; safe to call more than once. */
  close(): Promise<void> {
    this.closePromise ??= (async () => {
      this.stopping = true;
      this.wakeAll();
      try {
        await (await this.subscription)?.stop();
      } catch (error) {
        this.log.error({ err: errorMessage(error) }, 'stopping the subscription failed');
      }
      // Operators downstream may still finish writes of records delivered before the
      // unsubscribe and ack them, so their offsets get committed too.
      await this.waitForDrain(this.options.drainTimeoutMs ?? 5000);
      clearTimeout(this.commitTimer);
      this.commitTimer = undefined;
      await this.commit();
    })();
    return this.closePromise;
  }
}

/** Writes one undecodable message to the dead-letter topic, bytes unchanged, with the reason. */
export async function writeDeadLetter(transport: Transport, dlq: string, message: ConsumedMessage, error: string): Promise<void> {
  const letter: DeadLetter = {
    topic: message.topic,
    partition: message.partition,
    offset: BigInt(message.offset),
    key: message.key === null ? null : message.key.toString('utf8'),
    value: message.value,
    error,
    at: BigInt(Date.now()),
  };
  const encoded = encodeRecord('DeadLetter', letter);
  await transport.produce([{ topic: dlq, key: letter.key, value: encoded.value, headers: encoded.headers }]);
}
