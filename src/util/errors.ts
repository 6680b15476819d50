/**
 * Error classes shared across tsalign. Messages say what failed, on which value, and what to do.
 * The command line maps `UsageError` to exit code 2 and everything else to exit code 1.
 */

/** Invalid usage or input: a bad flag, a bad config key, a malformed record. Exit code 2. */
export class UsageError extends Error {
  override name: string = 'UsageError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A failure that a retry may fix: timeouts, 429, 5xx, connection resets. */
export class RetriableError extends Error {
  override name: string = 'RetriableError';
  readonly retriable = true;
  constructor(
    message: string,
    /** Milliseconds to wait, from the server's Retry-After, when it sent one. */
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Returns the message of any thrown value. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
