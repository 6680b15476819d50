import { RetriableError, errorMessage } from '../util/errors';

export interface RetryOptions {
  /** Maximum retries after the first attempt. */
  maxRetries: number;
  /** Backoff before the first retry, in milliseconds; doubles with each retry. */
  baseDelayMs: number;
  /** Cap of the exponential backoff, in milliseconds; a server's Retry-After is not capped by it. */
  maxDelayMs: number;
  /** Maximum Retry-After the caller honours, in milliseconds; a longer one gives up at once. */
  maxRetryAfterMs: number;
}

export type RetryVerdict = { retry: true; delayMs: number } | { retry: false; error: Error };

/**
 * Decides whether a failed request is retried and after how long. This is the one place
 * that sorts failures:
 * - an error that is not a `RetriableError` (a bad request, an unparseable verdict) stops at once;
 * - after `maxRetries` retries the request gives up, naming the last error;
 * - a `retryAfterMs` from the server is honoured exactly, even beyond 60 s, up to
 *   `maxRetryAfterMs`; a longer wait gives up with an error that says so;
 * - otherwise the delay is min(maxDelayMs, baseDelayMs * 2^(retry - 1)) with equal jitter:
 *   half of it fixed and half scaled by `jitter` in [0, 1).
 *
 * `retry` is the 1-based number of the retry about to happen.
 *
 * Example: with baseDelayMs 100, maxDelayMs 1000 and jitter 0.5, retries 1 to 5 wait
 * 75, 150, 300, 600 and 750 ms.
 */
export function retryVerdict(error: unknown, retry: number, options: RetryOptions, jitter: number): RetryVerdict {
  if (!(error instanceof RetriableError)) {
    return { retry: false, error: error instanceof Error ? error : new Error(errorMessage(error)) };
  }
  if (retry > options.maxRetries) {
    return {
      retry: false,
      error: new Error(`gave up after ${options.maxRetries} retries: ${error.message}`, { cause: error }),
    };
  }
  const retryAfterMs = error.retryAfterMs;
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs >= 0) {
    if (retryAfterMs > options.maxRetryAfterMs) {
      return {
        retry: false,
        error: new Error(
          `gave up: the server asked to retry after ${retryAfterMs} ms, more than maxRetryAfterMs ` +
            `${options.maxRetryAfterMs} ms; raise retry.maxRetryAfterMs to wait that long (${error.message})`,
          { cause: error },
        ),
      };
    }
    return { retry: true, delayMs: retryAfterMs };
  }
  const backoff = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (retry - 1));
  return { retry: true, delayMs: backoff / 2 + (backoff / 2) * jitter };
}

/** Lists what is wrong with retry options. */
export function retryOptionProblems(options: RetryOptions): string[] {
  const problems: string[] = [];
  if (!Number.isInteger(options.maxRetries) || options.maxRetries < 0) {
    problems.push(`retry.maxRetries must be an integer >= 0, got ${options.maxRetries}`);
  }
  for (const key of ['baseDelayMs', 'maxDelayMs', 'maxRetryAfterMs'] as const) {
    const value = options[key];
    if (!Number.isFinite(value) || value < 0) problems.push(`retry.${key} must be a number >= 0, got ${value}`);
  }
  return problems;
}
