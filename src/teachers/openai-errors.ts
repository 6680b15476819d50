import { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { RetriableError, errorMessage } from '../util/errors';

/**
 * Sorting of judge endpoint failures into retriable and non-retriable errors. The teacher
 * operator of the chain owns retries, so this module decides only which failures a retry may
 * fix and how long the server asked us to wait.
 */

/**
 * The judge gave no usable verdict: a truncated, empty or unparseable reply, an error object
 * inside a 200 response, or missing logprobs that were requested. A retry of the same request
 * would most likely give the same reply, so this error is not retriable, and callers must never
 * treat it as a win for either response.
 */
export class NoJudgmentError extends Error {
  override readonly name = 'NoJudgmentError';
}

/** Endpoint and model of a failed request, for error messages. */
export interface JudgeEndpoint {
  baseURL: string;
  model: string;
}

/** Socket-level error codes that mean the connection broke, so a new request may succeed. */
const CONNECTION_ERROR_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * Returns the wait a response asked for, in milliseconds: `retry-after-ms` first, then
 * `Retry-After` as seconds or as an HTTP date (a date in the past gives 0). Large values are
 * kept as sent, because the caller's backoff decides how long it is willing to wait. Returns
 * undefined when neither header is present or valid.
 */
export function parseRetryAfterMs(
  headers: Pick<Headers, 'get'> | undefined,
  now: number = Date.now(),
): number | undefined {
  const milliseconds = headers?.get('retry-after-ms')?.trim();
  if (milliseconds && /^\d+(\.\d+)?$/.test(milliseconds)) return Number(milliseconds);

  const retryAfter = headers?.get('retry-after')?.trim();
  if (!retryAfter) return undefined;
  if (/^\d+(\.\d+)?$/.test(retryAfter)) return Number(retryAfter) * 1000;
  // An HTTP date names its weekday and month. Date.parse would also read "-5" as a year.
  if (!/[a-z]/i.test(retryAfter)) return undefined;
  const date = Date.parse(retryAfter);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Returns the first socket error code in an error's cause chain, if any. */
function connectionErrorCode(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Advice for the status codes that point at a configuration mistake. */
function adviceForStatus(status: number, endpoint: JudgeEndpoint): string {
  switch (status) {
    case 400:
      return `check that model "${endpoint.model}" serves chat completions and accepts teacher.openai.maxTokens, temperature 0 and, if set, teacher.openai.logprobs`;
    case 401:
      return 'check the API key in the environment variable named by teacher.openai.apiKeyEnv (OPENAI_API_KEY by default)';
    case 403:
      return `check that the API key may use model "${endpoint.model}"`;
    case 404:
      return `check teacher.openai.baseUrl (most servers expect it to end in /v1) and that the server serves model "${endpoint.model}"`;
    default:
      return 'check teacher.openai.baseUrl, teacher.openai.model and the API key';
  }
}

/**
 * Maps an error thrown by one chat completion request to the error the teacher throws.
 * 408, 429, 5xx, timeouts and broken connections give RetriableError, with `retryAfterMs` from
 * the response headers. A body that is not JSON gives NoJudgmentError. Every other HTTP error
 * gives a plain Error naming the status and what to check. Unknown errors pass through as they
 * are, so they stay non-retriable.
 */
export function classifyJudgeError(error: unknown, endpoint: JudgeEndpoint): Error {
  const where = `judge request to ${endpoint.baseURL} (model "${endpoint.model}")`;

  if (error instanceof APIConnectionTimeoutError) {
    return new RetriableError(`${where} timed out before the response headers arrived`, undefined, { cause: error });
  }
  if (error instanceof APIConnectionError) {
    const cause = errorMessage(error.cause ?? error);
    return new RetriableError(`${where} failed to connect: ${cause}`, undefined, { cause: error });
  }
  if (error instanceof APIError && typeof error.status === 'number') {
    const status = error.status;
    if (status === 408 || status === 429 || status >= 500) {
      const retryAfterMs = parseRetryAfterMs(error.headers);
      return new RetriableError(`${where} failed with HTTP ${status}: ${error.message}`, retryAfterMs, {
        cause: error,
      });
    }
    return new Error(`${where} failed with HTTP ${status}: ${error.message}; ${adviceForStatus(status, endpoint)}`, {
      cause: error,
    });
  }

  const code = connectionErrorCode(error);
  if (code !== undefined) {
    return new RetriableError(`${where} lost its connection (${code}): ${errorMessage(error)}`, undefined, {
      cause: error,
    });
  }
  if (error instanceof SyntaxError) {
    return new NoJudgmentError(`${where} returned a response body that is not valid JSON: ${error.message}`, {
      cause: error,
    });
  }
  return error instanceof Error ? error : new Error(`${where} failed: ${errorMessage(error)}`);
}
