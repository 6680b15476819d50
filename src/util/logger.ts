import pino, { type Logger } from 'pino';

/**
 * The process-wide pino logger. Logs go to stderr so that stdout carries only data.
 * Each component takes a child with `childLogger('component-name', { ids })`.
 */
let root: Logger = pino(
  {
    level: process.env.TSALIGN_LOG_LEVEL ?? 'info',
    base: undefined,
    redact: {
      paths: ['apiKey', '*.apiKey', 'authorization', '*.authorization', 'headers.authorization'],
      censor: '[redacted]',
    },
  },
  pino.destination({ fd: 2, sync: true }),
);

/** Sets the level of the root logger and every child created afterwards. */
export function setLogLevel(level: string): void {
  root.level = level;
}

/** Replaces the root logger (tests use this to capture output). */
export function setRootLogger(logger: Logger): void {
  root = logger;
}

export function rootLogger(): Logger {
  return root;
}

/** Returns a child logger for one component, with ids in fields. */
export function childLogger(component: string, fields: Record<string, unknown> = {}): Logger {
  return root.child({ component, ...fields });
}

export type { Logger };
