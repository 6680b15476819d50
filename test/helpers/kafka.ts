/**
 * Kafka for tests: where the broker is, why Kafka tests skip, and unique topic names.
 *
 * `npm test` (scripts/run-tests.js) starts a throwaway broker and sets KAFKA_BROKERS. Run alone
 * with `node --import tsx --test FILE`, Kafka tests skip unless KAFKA_BROKERS is set, for
 * example to the address `npm run kafka:start` prints.
 */
import { randomBytes } from 'node:crypto';

/**
 * Returns `{ brokers }` when a broker is configured, else `{ skip: reason }` for
 * `test(name, { skip }, ...)`. Under TSALIGN_REQUIRE_KAFKA=1 a missing broker throws instead.
 */
export function kafkaBrokersOrSkip(): { brokers?: string; skip?: string } {
  const brokers = process.env.KAFKA_BROKERS?.trim();
  if (brokers) return { brokers };

  const reason =
    process.env.TSALIGN_KAFKA_UNAVAILABLE ??
    'KAFKA_BROKERS is not set: run the tests with `npm test`, which starts a broker, ' +
      'or start one with `npm run kafka:start` and export KAFKA_BROKERS=<the printed address>';
  if (process.env.TSALIGN_REQUIRE_KAFKA === '1') {
    throw new Error(`TSALIGN_REQUIRE_KAFKA=1 but there is no Kafka broker for the tests (${reason})`);
  }
  return { skip: reason };
}

let topicCounter = 0;

/**
 * Returns a topic name no other test (or earlier run against the same broker) uses:
 * `<prefix>-<pid>-<random>-<n>`, within Kafka's legal characters.
 */
export function uniqueTopicName(prefix = 'test'): string {
  topicCounter += 1;
  const safePrefix = prefix.replace(/[^a-zA-Z0-9._-]/g, '-');
  return `${safePrefix}-${process.pid}-${randomBytes(3).toString('hex')}-${topicCounter}`;
}
