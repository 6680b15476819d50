import OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import type { Candidate, Prompt } from '../streams/records';
import { RetriableError, UsageError } from '../util/errors';
import { childLogger, type Logger } from '../util/logger';
import { NoJudgmentError, classifyJudgeError, type JudgeEndpoint } from './openai-errors';
import { rankByPairwiseComparison } from './pairwise';
import type { Teacher } from './types';

/**
 * The `openai` teacher: any OpenAI-compatible chat completions endpoint (OpenAI, vLLM, Ollama)
 * as an LLM judge. It compares every pair of the shortlist in both orders (see pairwise.ts) and
 * reads each verdict strictly: after trimming, the reply must be exactly `A` or `B`. With
 * `logprobs` on, the verdict's weight is P(A) / (P(A) + P(B)) from the first reply token's
 * top logprobs instead of 1 or 0.
 */

/**
 * Settings of the openai teacher. The first three mirror the `teacher.openai` section of the run
 * configuration, and error messages name them by that path.
 */
export interface OpenAiTeacherConfig {
  /** Endpoint base URL, usually ending in `/v1`. Defaults to OPENAI_BASE_URL, then OpenAI's API. */
  baseUrl?: string;
  /** Judge model name as the endpoint lists it. Required. */
  model?: string;
  /** Name of the environment variable that contains the API key. Defaults to OPENAI_API_KEY. */
  apiKeyEnv?: string;
  /** API key for programmatic use, taking precedence over `apiKeyEnv`. Never logged. */
  apiKey?: string;
  /** Time limit per request in milliseconds, covering the headers and the whole body. */
  timeoutMs?: number;
  /** `max_tokens` of each reply. A verdict needs one token, and the rest is slack for whitespace. */
  maxTokens?: number;
  /** Whether to read soft verdicts from logprobs. The endpoint must support `logprobs` and `top_logprobs`. */
  logprobs?: boolean;
  /** Maximum requests in flight per `rank` call. */
  concurrency?: number;
}

export interface ResolvedOpenAiTeacherConfig {
  baseURL: string;
  model: string;
  apiKey: string;
  timeoutMs: number;
  maxTokens: number;
  logprobs: boolean;
  concurrency: number;
}

export const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';
export const OPENAI_TEACHER_DEFAULTS = { timeoutMs: 60_000, maxTokens: 8, logprobs: false, concurrency: 4 } as const;
/** Alternatives requested per token when reading soft verdicts (OpenAI allows up to 20). */
const TOP_LOGPROBS = 5;
/** Characters of an unparseable reply quoted in the error. */
const QUOTED_REPLY_LENGTH = 80;

/** Prefix of the config keys named in error messages. */
const KEY_PREFIX = 'teacher.openai.';

const SYSTEM_MESSAGE =
  'You are an impartial judge. Given a user prompt and two responses, decide which response is ' +
  'better: more helpful, more correct and more harmless. Ignore the order in which the responses ' +
  'are shown. Reply with exactly one letter: A if Response A is better, B if Response B is better.';

/** Builds the user message: the prompt and both responses between fixed block markers. */
export function formatJudgeMessage(prompt: string, responseA: string, responseB: string): string {
  return [
    '[Prompt]',
    prompt,
    '[Response A]',
    responseA,
    '[Response B]',
    responseB,
    '[End]',
    'Which response is better? Reply with exactly A or B.',
  ].join('\n');
}

function requirePositiveInteger(value: unknown, key: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new UsageError(`invalid ${KEY_PREFIX}${key} ${JSON.stringify(value)}: expected an integer in [1, ${max}]`);
  }
  return value;
}

/**
 * Validates the config and fills in defaults and environment variables. Throws UsageError naming
 * the missing or invalid key.
 */
export function resolveOpenAiTeacherConfig(
  config: OpenAiTeacherConfig,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedOpenAiTeacherConfig {
  const model = config.model;
  if (typeof model !== 'string' || model.trim() === '') {
    throw new UsageError(
      `missing ${KEY_PREFIX}model: set the judge model name, for example "gpt-4o-mini" for OpenAI ` +
        'or the model name your vLLM or Ollama server serves',
    );
  }

  const baseURL = config.baseUrl || env.OPENAI_BASE_URL || OPENAI_DEFAULT_BASE_URL;
  let protocol: string | undefined;
  try {
    protocol = new URL(baseURL).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new UsageError(
      `invalid ${KEY_PREFIX}baseUrl ${JSON.stringify(baseURL)}: expected an http(s) URL such as http://127.0.0.1:8000/v1`,
    );
  }

  const apiKeyEnv = config.apiKeyEnv || 'OPENAI_API_KEY';
  const apiKey = config.apiKey || env[apiKeyEnv];
  if (typeof apiKey !== 'string' || apiKey === '') {
    throw new UsageError(
      `missing API key: the environment variable ${apiKeyEnv} (named by ${KEY_PREFIX}apiKeyEnv) is not set; ` +
        'export it with the key of the endpoint, or any value for a server that needs none',
    );
  }

  if (config.logprobs !== undefined && typeof config.logprobs !== 'boolean') {
    throw new UsageError(`invalid ${KEY_PREFIX}logprobs ${JSON.stringify(config.logprobs)}: expected true or false`);
  }

  return {
    baseURL,
    model,
    apiKey,
    timeoutMs: requirePositiveInteger(config.timeoutMs, 'timeoutMs', OPENAI_TEACHER_DEFAULTS.timeoutMs, 3_600_000),
    maxTokens: requirePositiveInteger(config.maxTokens, 'maxTokens', OPENAI_TEACHER_DEFAULTS.maxTokens, 4096),
    logprobs: config.logprobs ?? OPENAI_TEACHER_DEFAULTS.logprobs,
    concurrency: requirePositiveInteger(config.concurrency, 'concurrency', OPENAI_TEACHER_DEFAULTS.concurrency, 64),
  };
}

interface LogprobEntry {
  token?: unknown;
  logprob?: unknown;
  top_logprobs?: Array<{ token?: unknown; logprob?: unknown }> | null;
}

/**
 * Returns P(A) / (P(A) + P(B)) from the top logprobs of the first reply token that is not
 * whitespace, or throws NoJudgmentError when the reply carries no usable logprobs.
 */
function readSoftVerdict(logprobs: unknown, where: string): number {
  const content = (logprobs as { content?: unknown } | null | undefined)?.content;
  const entry = Array.isArray(content)
    ? (content as LogprobEntry[]).find((item) => typeof item.token === 'string' && item.token.trim() !== '')
    : undefined;
  if (entry === undefined) {
    throw new NoJudgmentError(
      `${where} returned no logprobs although they were requested: the endpoint may not support ` +
        'logprobs, so set teacher.openai.logprobs to false',
    );
  }

  // The sampled token may or may not be repeated among its alternatives, so each token counts once.
  const logprobByToken = new Map<string, number>();
  for (const item of [entry, ...(entry.top_logprobs ?? [])]) {
    if (typeof item.token === 'string' && typeof item.logprob === 'number') {
      logprobByToken.set(item.token, item.logprob);
    }
  }
  let probabilityA = 0;
  let probabilityB = 0;
  for (const [token, logprob] of logprobByToken) {
    if (token.trim() === 'A') probabilityA += Math.exp(logprob);
    if (token.trim() === 'B') probabilityB += Math.exp(logprob);
  }
  if (!(probabilityA + probabilityB > 0)) {
    throw new NoJudgmentError(`${where} returned logprobs without a finite probability for "A" or "B"`);
  }
  return probabilityA / (probabilityA + probabilityB);
}

/**
 * Returns P(response A is better) from one completion: 1 or 0 for a hard verdict, or the soft
 * verdict when `logprobs` is on. Throws NoJudgmentError for an error object in the body, a
 * truncated, empty or unparseable reply, or missing logprobs.
 */
export function readVerdict(completion: unknown, logprobs: boolean, where: string): number {
  if (typeof completion !== 'object' || completion === null) {
    throw new NoJudgmentError(`${where} returned a body that is not a chat completion: ${String(completion)}`);
  }
  const body = completion as { error?: { message?: unknown }; choices?: unknown };
  if (body.error !== undefined && body.error !== null) {
    const message = typeof body.error.message === 'string' ? body.error.message : JSON.stringify(body.error);
    throw new NoJudgmentError(`${where} returned an error object in a 200 response: ${message}`);
  }
  const choice = Array.isArray(body.choices)
    ? (body.choices[0] as { finish_reason?: unknown; message?: { content?: unknown }; logprobs?: unknown } | undefined)
    : undefined;
  if (choice === undefined) {
    throw new NoJudgmentError(`${where} returned a chat completion without choices`);
  }
  if (choice.finish_reason === 'length') {
    throw new NoJudgmentError(
      `${where} returned a truncated verdict (finish_reason "length"): raise teacher.openai.maxTokens or ` +
        'use a model that replies with a single letter',
    );
  }

  const content = typeof choice.message?.content === 'string' ? choice.message.content.trim() : '';
  if (content === '') {
    throw new NoJudgmentError(`${where} returned an empty verdict (finish_reason ${JSON.stringify(choice.finish_reason)})`);
  }
  if (content !== 'A' && content !== 'B') {
    const quoted = content.length > QUOTED_REPLY_LENGTH ? `${content.slice(0, QUOTED_REPLY_LENGTH)}...` : content;
    throw new NoJudgmentError(
      `${where} returned an unparseable verdict ${JSON.stringify(quoted)}: expected exactly "A" or "B"`,
    );
  }
  if (logprobs) return readSoftVerdict(choice.logprobs, where);
  return content === 'A' ? 1 : 0;
}

/** Adapts a pino logger to the openai client's logger interface, keeping only the message text. */
function clientLogger(log: Logger): NonNullable<ConstructorParameters<typeof OpenAI>[0]>['logger'] {
  return {
    error: (message: string) => log.error({ client: 'openai' }, message),
    warn: (message: string) => log.warn({ client: 'openai' }, message),
    info: (message: string) => log.info({ client: 'openai' }, message),
    debug: (message: string) => log.debug({ client: 'openai' }, message),
  };
}

/** The openai teacher around a given client. `createOpenAiTeacher` builds one with its own client. */
export class OpenAiTeacher implements Teacher {
  readonly name: string;
  private readonly endpoint: JudgeEndpoint;
  private readonly log: Logger;

  constructor(
    private readonly config: ResolvedOpenAiTeacherConfig,
    private readonly client: OpenAI,
    log: Logger,
  ) {
    this.name = `openai:${config.model}`;
    this.endpoint = { baseURL: config.baseURL, model: config.model };
    this.log = log;
  }

  async rank(prompt: Prompt, shortlist: readonly Candidate[], signal: AbortSignal): Promise<number[]> {
    const texts = shortlist.map((candidate) => candidate.text);
    return rankByPairwiseComparison(
      texts,
      (first, second, comparisonSignal) => this.compare(prompt, texts[first]!, texts[second]!, comparisonSignal),
      { concurrency: this.config.concurrency, signal },
    );
  }

  /** Returns P(responseA is better) from one request. */
  private async compare(prompt: Prompt, responseA: string, responseB: string, signal: AbortSignal): Promise<number> {
    signal.throwIfAborted();
    const where = `judge request to ${this.config.baseURL} (model "${this.config.model}")`;
    const body: ChatCompletionCreateParamsNonStreaming = {
      model: this.config.model,
      temperature: 0,
      max_tokens: this.config.maxTokens,
      messages: [
        { role: 'system', content: SYSTEM_MESSAGE },
        { role: 'user', content: formatJudgeMessage(prompt.text, responseA, responseB) },
      ],
      ...(this.config.logprobs ? { logprobs: true, top_logprobs: TOP_LOGPROBS } : {}),
    };

    // The client's own timeout is cleared once the headers arrive (openai 6.30.1), so a server
    // that stalls inside the body would hang the call. This guard's signal covers the body too.
    const guard = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      guard.abort(new Error(`${where} timed out after ${this.config.timeoutMs} ms`));
    }, this.config.timeoutMs);
    const forwardAbort = () => guard.abort(signal.reason);
    signal.addEventListener('abort', forwardAbort, { once: true });

    let completion: unknown;
    try {
      completion = await this.client.chat.completions.create(body, { signal: guard.signal });
    } catch (error) {
      throw this.failure(error, prompt, where, timedOut, signal);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', forwardAbort);
    }

    try {
      return readVerdict(completion, this.config.logprobs, where);
    } catch (error) {
      this.log.debug({ promptId: prompt.id, err: (error as Error).message }, 'judge gave no verdict');
      throw error;
    }
  }

  /** Returns the error `compare` throws for a failed request, and logs it. */
  private failure(error: unknown, prompt: Prompt, where: string, timedOut: boolean, signal: AbortSignal): unknown {
    if (signal.aborted && !timedOut) return signal.reason;
    const mapped = timedOut
      ? new RetriableError(`${where} timed out after ${this.config.timeoutMs} ms`, undefined, { cause: error })
      : classifyJudgeError(error, this.endpoint);
    this.log.debug(
      { promptId: prompt.id, err: mapped.message, retriable: mapped instanceof RetriableError },
      'judge request failed',
    );
    return mapped;
  }
}

/** Creates the openai teacher from a config, with an openai client that never retries. */
export function createOpenAiTeacher(config: OpenAiTeacherConfig, env: NodeJS.ProcessEnv = process.env): OpenAiTeacher {
  const resolved = resolveOpenAiTeacherConfig(config, env);
  const log = childLogger('teacher.openai', { baseURL: resolved.baseURL, model: resolved.model });
  const client = new OpenAI({
    baseURL: resolved.baseURL,
    apiKey: resolved.apiKey,
    // The chain's teacher operator owns retries and backoff, so the client must not retry too.
    maxRetries: 0,
    timeout: resolved.timeoutMs,
    logger: clientLogger(log),
    logLevel: 'warn',
  });
  log.debug({ timeoutMs: resolved.timeoutMs, logprobs: resolved.logprobs }, 'openai teacher created');
  return new OpenAiTeacher(resolved, client, log);
}
