/**
 * Routes kafkajs's own log lines into pino.
 *
 * kafkajs logs retries and reconnects at ERROR although it recovers from most of them. The
 * transport reports what it cannot recover from itself, so kafkajs levels move down one step:
 * ERROR and WARN become warn, INFO (group joins, starts and stops) becomes debug, DEBUG becomes trace.
 * Failed connection attempts become debug too, because a broker that stays unreachable surfaces
 * as one BrokerUnreachableError.
 */
import { logLevel, type logCreator as LogCreator } from 'kafkajs';
import type { Logger } from 'pino';

/** kafkajs components whose errors are connection attempts that the transport retries or reports. */
const CONNECTION_NAMESPACES = new Set(['Connection', 'BrokerPool']);

/** Returns the kafkajs level that passes on what `logger` would print. */
export function kafkajsLevelFor(logger: Logger): logLevel {
  if (logger.isLevelEnabled('trace')) return logLevel.DEBUG;
  if (logger.isLevelEnabled('debug')) return logLevel.INFO;
  if (logger.isLevelEnabled('warn')) return logLevel.WARN;
  return logLevel.NOTHING;
}

/** Returns a kafkajs `logCreator` that writes to a child of `logger` named after the kafkajs namespace. */
export function pinoLogCreator(logger: Logger): LogCreator {
  return () =>
    ({ namespace, level, log }) => {
      // kafkajs puts the text in `message` and its context in the other fields.
      const { message, timestamp: _timestamp, logger: _logger, ...fields } = log as Record<string, unknown> & { message: string };
      const entry = { kafkajs: namespace, ...fields };
      if (CONNECTION_NAMESPACES.has(namespace) && level <= logLevel.WARN) {
        logger.debug(entry, message);
        return;
      }
      switch (level) {
        case logLevel.ERROR:
        case logLevel.WARN:
          logger.warn(entry, message);
          break;
        case logLevel.INFO:
          logger.debug(entry, message);
          break;
        default:
          logger.trace(entry, message);
      }
    };
}
