/** Errors of the Kafka transport that point the user at the fix. */

/** The bootstrap brokers could not be reached. */
export class BrokerUnreachableError extends Error {
  override readonly name = 'BrokerUnreachableError';
  constructor(
    readonly brokers: string,
    cause: unknown,
  ) {
    super(
      `cannot reach the Kafka broker at ${brokers} (${rootMessage(cause)}); check --brokers or TSALIGN_BROKERS, ` +
        'or start a local broker with `npm run kafka:start`',
      { cause },
    );
  }
}

/** Names of kafkajs errors that mean no connection to any bootstrap broker could be made. */
const CONNECTION_ERRORS = new Set(['KafkaJSConnectionError', 'KafkaJSBrokerNotFound', 'KafkaJSRequestTimeoutError']);

/** True when `error` (or an error in its cause chain) is a kafkajs connection failure. */
export function isConnectionFailure(error: unknown): boolean {
  for (let current = error; current instanceof Error; current = (current as Error & { cause?: unknown }).cause) {
    if (CONNECTION_ERRORS.has(current.name)) return true;
    if (/ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|Connection timeout/.test(current.message)) return true;
  }
  return false;
}

/** Returns the message of the innermost cause, which names the socket error. */
export function rootMessage(error: unknown): string {
  let current = error;
  while (current instanceof Error && (current as Error & { cause?: unknown }).cause instanceof Error) {
    current = (current as Error & { cause?: unknown }).cause;
  }
  return current instanceof Error ? current.message : String(current);
}
