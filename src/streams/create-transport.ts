import { EmbeddedTransport } from './embedded/embedded-transport';
import { KafkaTransport } from './kafka/kafka-transport';
import type { Transport } from './transport';

export interface CreateTransportOptions {
  /** Kafka bootstrap brokers, `host:port[,host:port...]`; falls back to TSALIGN_BROKERS. */
  brokers?: string;
  /** Data directory of the embedded log; default `./.tsalign`. */
  dataDir?: string;
  /** Kafka client id; default `tsalign`. */
  clientId?: string;
  /**
   * Open the embedded log read-only, beside the process that writes it (see EmbeddedTransport).
   * Kafka needs no such mode, so it ignores this. Default false.
   */
  readOnly?: boolean;
}

/**
 * Creates the transport the options select: Kafka when brokers are given (by option or
 * TSALIGN_BROKERS), else the embedded log. The caller connects it.
 */
export function createTransport(options: CreateTransportOptions = {}): Transport {
  const brokers = options.brokers?.trim() || process.env.TSALIGN_BROKERS?.trim();
  if (brokers) {
    return new KafkaTransport(options.clientId ? { brokers, clientId: options.clientId } : { brokers });
  }
  return new EmbeddedTransport({ ...(options.dataDir ? { dataDir: options.dataDir } : {}), readOnly: options.readOnly === true });
}
