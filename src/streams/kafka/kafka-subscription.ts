/**
 * A subscription on Kafka: one kafkajs consumer in a consumer group, run with `eachBatch`.
 *
 * Offsets are resolved only after the handler's promise settles (`eachBatchAutoResolve: false`)
 * and never committed automatically (`autoCommit: false`): callers commit through
 * `Transport.commit` once the records' results are acknowledged. Start offsets resolved at
 * subscribe time are sought when a partition is first assigned (on GROUP_JOIN).
 */
import type { Consumer, EachBatchPayload, IHeaders, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import type { ConsumedMessage, RecordPosition, Subscription } from '../transport';

export class KafkaSubscription implements Subscription {
  readonly done: Promise<void>;
  private settleDone!: { resolve: () => void; reject: (error: unknown) => void };
  /** Set once stop() is called or the handler failed; later batches are dropped unhandled. */
  private stopping = false;
  private stopped: Promise<void> | undefined;
  /** Handler error that ended the subscription. */
  private failure: unknown;
  /** The handler call in progress, so stop() can wait for it. */
  private inFlight: Promise<void> = Promise.resolve();
  /** Partitions whose start offset was already sought ("topic/partition"). */
  private readonly started = new Set<string>();

  constructor(
    readonly consumer: Consumer,
    readonly groupId: string,
    private readonly eachBatch: (messages: ConsumedMessage[]) => Promise<void>,
    /** Offsets to seek on first assignment, per "topic/partition"; others start where the group committed. */
    private readonly startOffsets: Map<string, number>,
    private readonly logger: Logger,
    private readonly onEnd: () => void,
  ) {
    this.done = new Promise<void>((resolve, reject) => (this.settleDone = { resolve, reject }));
    // Callers may only call stop() and never look at `done`; a failure is logged in fail().
    this.done.catch(() => {});
  }

  /** Joins the group and starts fetching; resolves once the first assignment is received. */
  async start(): Promise<void> {
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      const assignment = event.payload.memberAssignment;
      this.logger.debug({ memberId: event.payload.memberId, assignment }, 'consumer group joined');
      for (const [topic, partitions] of Object.entries(assignment)) {
        for (const partition of partitions) {
          const key = `${topic}/${partition}`;
          const offset = this.startOffsets.get(key);
          // Seek only on the first assignment; after a rebalance the consumer continues.
          if (offset === undefined || this.started.has(key)) continue;
          this.started.add(key);
          this.consumer.seek({ topic, partition, offset: String(offset) });
        }
      }
    });
    this.consumer.on(this.consumer.events.CRASH, (event) => {
      if (event.payload.restart) {
        this.logger.warn({ err: event.payload.error }, 'consumer crashed; kafkajs restarts it');
      } else {
        this.fail(event.payload.error);
      }
    });

    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.handleBatch(payload),
    });
  }

  stop(): Promise<void> {
    this.stopping = true;
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  /** Commits next-to-read offsets as a member of the group. */
  async commit(positions: RecordPosition[]): Promise<void> {
    await this.consumer.commitOffsets(
      positions.map(({ topic, partition, offset }) => ({ topic, partition, offset: String(offset) })),
    );
  }

  private async handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (this.stopping || payload.isStale() || batch.messages.length === 0) return;

    const messages = batch.messages.map((message) => toConsumedMessage(batch.topic, batch.partition, message));
    const handled = this.eachBatch(messages);
    this.inFlight = handled.then(
      () => {},
      () => {},
    );
    try {
      await handled;
    } catch (error) {
      // Not rethrown: kafkajs would retry the batch. The subscription ends with the error.
      this.fail(error);
      return;
    }
    payload.resolveOffset(batch.messages[batch.messages.length - 1].offset);
    if (!this.stopping) await payload.heartbeat();
  }

  private fail(error: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.logger.error({ err: error }, 'subscription failed');
    void this.stop();
  }

  private async shutdown(): Promise<void> {
    // kafkajs's disconnect waits for the batch in progress, but stop() must not resolve before
    // the handler settles even if kafkajs gave up on it.
    await this.inFlight;
    try {
      await this.consumer.disconnect();
    } catch (error) {
      this.logger.warn({ err: error }, 'consumer disconnect failed');
    }
    this.onEnd();
    this.logger.debug('subscription stopped');
    if (this.failure !== undefined) this.settleDone.reject(this.failure);
    else this.settleDone.resolve();
  }
}

function toConsumedMessage(topic: string, partition: number, message: KafkaMessage): ConsumedMessage {
  return {
    topic,
    partition,
    offset: Number(message.offset),
    key: message.key ?? null,
    value: message.value ?? Buffer.alloc(0),
    headers: toHeaderBuffers(message.headers),
    timestamp: Number(message.timestamp),
  };
}

/** Kafka headers may repeat a name; the last value wins, as tsalign writes each name once. */
function toHeaderBuffers(headers: IHeaders | undefined): Record<string, Buffer> {
  const buffers: Record<string, Buffer> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    buffers[name] = typeof last === 'string' ? Buffer.from(last, 'utf8') : last;
  }
  return buffers;
}
