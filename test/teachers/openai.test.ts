import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Candidate, Prompt } from '../../src/streams/records';
import { createOpenAiTeacher, resolveOpenAiTeacherConfig } from '../../src/teachers/openai';
import { NoJudgmentError, parseRetryAfterMs } from '../../src/teachers/openai-errors';
import { RetriableError, UsageError } from '../../src/util/errors';
import { rootLogger, setRootLogger } from '../../src/util/logger';
import { parseResponses, startOpenAiServer, type OpenAiServer, type ServerBehaviour } from '../helpers/openai-server';

const API_KEY = 'sk-test-secret-4f9c2b7e';
/** Ends a test that would otherwise hang if a stall were never cut off; not a timing check. */
const HANG_GUARD_MS = 30_000;

const prompt: Prompt = {
  id: 'p-judge',
  text: 'Say something kind.',
  source: 'feed',
  tags: [],
  meta: {},
  createdAt: 0n,
};

function candidates(...texts: string[]): Candidate[] {
  return texts.map((text, i) => ({ id: `c${i}`, text, tokens: text.length, logprob: -1 }));
}

function signal(): AbortSignal {
  return new AbortController().signal;
}

/** Prefers the response with more "!" characters. */
function preferExclamations(responseA: string, responseB: string): 'A' | 'B' {
  const count = (text: string) => [...text].filter((char) => char === '!').length;
  return count(responseA) > count(responseB) ? 'A' : 'B';
}

const servers: OpenAiServer[] = [];

async function serve(options: Parameters<typeof startOpenAiServer>[0]): Promise<OpenAiServer> {
  const server = await startOpenAiServer(options);
  servers.push(server);
  return server;
}

function teacherFor(server: OpenAiServer, overrides: Record<string, unknown> = {}) {
  return createOpenAiTeacher({ baseUrl: server.baseURL, model: 'judge-test', apiKey: API_KEY, ...overrides }, {});
}

/** Ranks two candidates with one request at a time, so the first scripted behaviour meets the first request. */
async function rankOnce(behaviour: ServerBehaviour, overrides: Record<string, unknown> = {}): Promise<number[]> {
  const server = await serve({ script: [behaviour] });
  const teacher = teacherFor(server, { concurrency: 1, ...overrides });
  return teacher.rank(prompt, candidates('first', 'second'), signal());
}

after(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

describe('openai teacher ranking', () => {
  test('ranks by the judge preference', async () => {
    const server = await serve({ prefer: preferExclamations });
    const teacher = teacherFor(server);
    const scores = await teacher.rank(prompt, candidates('a', 'b!!', 'c!', 'd!!!'), signal());
    assert.deepEqual(scores, [0, 2, 1, 3]);
    assert.equal(server.requests.length, 12);
  });

  test('asks every pair in both orders', async () => {
    const server = await serve({ prefer: preferExclamations });
    await teacherFor(server).rank(prompt, candidates('x', 'y!', 'z!!'), signal());
    const orders = server.requests.map((request) => {
      const { responseA, responseB } = parseResponses(request.body.messages[1]!.content);
      return `${responseA}|${responseB}`;
    });
    assert.deepEqual(orders.sort(), ['x|y!', 'x|z!!', 'y!|x', 'y!|z!!', 'z!!|x', 'z!!|y!']);
  });

  test('requests a deterministic short reply', async () => {
    const server = await serve({});
    await teacherFor(server, { maxTokens: 3 }).rank(prompt, candidates('GOOD', 'bad'), signal());
    const request = server.requests[0]!;
    assert.equal(request.url, '/v1/chat/completions');
    assert.equal(request.body.model, 'judge-test');
    assert.equal(request.body.temperature, 0);
    assert.equal(request.body.max_tokens, 3);
    assert.equal(request.body.logprobs, undefined);
    assert.equal(request.headers.authorization, `Bearer ${API_KEY}`);
    assert.match(request.body.messages[1]!.content, /Say something kind\./);
  });

  test('marker judge picks the marked response', async () => {
    const server = await serve({});
    const scores = await teacherFor(server).rank(prompt, candidates('bad', 'GOOD one'), signal());
    assert.deepEqual(scores, [0, 1]);
  });

  test('position bias cancels into ties', async () => {
    const server = await serve({ fallback: { kind: 'always-a' } });
    const scores = await teacherFor(server).rank(prompt, candidates('a', 'b', 'c', 'd'), signal());
    assert.deepEqual(scores, [1.5, 1.5, 1.5, 1.5]);
  });

  test('identical texts tie without a request', async () => {
    const server = await serve({});
    const scores = await teacherFor(server).rank(prompt, candidates('same', 'same'), signal());
    assert.deepEqual(scores, [0.5, 0.5]);
    assert.equal(server.requests.length, 0);
  });

  test('logprobs give soft verdicts', async () => {
    const server = await serve({ fallback: { kind: 'judge-logprobs', probability: 0.8 } });
    const scores = await teacherFor(server, { logprobs: true }).rank(prompt, candidates('GOOD', 'bad'), signal());
    assert.equal(server.requests[0]!.body.logprobs, true);
    assert.equal(server.requests[0]!.body.top_logprobs, 5);
    assert.ok(Math.abs(scores[0]! - 0.8) < 1e-9, `score ${scores[0]} is not 0.8`);
    assert.ok(Math.abs(scores[1]! - 0.2) < 1e-9, `score ${scores[1]} is not 0.2`);
  });
});

describe('openai teacher failures', () => {
  const retriableCases: Array<[string, ServerBehaviour, number | undefined]> = [
    ['429 with Retry-After seconds', { kind: 'status', status: 429, headers: { 'retry-after': '7' } }, 7000],
    ['429 with Retry-After beyond 60 s', { kind: 'status', status: 429, headers: { 'retry-after': '120' } }, 120_000],
    ['429 with retry-after-ms', { kind: 'status', status: 429, headers: { 'retry-after-ms': '1500' } }, 1500],
    ['500 without Retry-After', { kind: 'status', status: 500 }, undefined],
    ['503 with Retry-After', { kind: 'status', status: 503, headers: { 'retry-after': '2' } }, 2000],
    ['connection reset', { kind: 'reset' }, undefined],
  ];
  for (const [name, behaviour, retryAfterMs] of retriableCases) {
    test(`${name} is retriable`, async () => {
      await assert.rejects(rankOnce(behaviour), (error: unknown) => {
        assert.ok(error instanceof RetriableError, `expected RetriableError, got ${String(error)}`);
        assert.equal(error.retryAfterMs, retryAfterMs);
        return true;
      });
    });
  }

  test('client makes no retries of its own', async () => {
    const server = await serve({ script: [{ kind: 'status', status: 500 }] });
    await assert.rejects(teacherFor(server, { concurrency: 1 }).rank(prompt, candidates('a', 'b'), signal()));
    assert.equal(server.requests.length, 1);
  });

  const fatalCases: Array<[number, RegExp]> = [
    [400, /HTTP 400.*check that model "judge-test"/],
    [401, /HTTP 401.*check the API key/],
    [403, /HTTP 403.*may use model "judge-test"/],
    [404, /HTTP 404.*check teacher\.openai\.baseUrl/],
  ];
  for (const [status, message] of fatalCases) {
    test(`HTTP ${status} is not retriable`, async () => {
      await assert.rejects(rankOnce({ kind: 'status', status }), (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.ok(!(error instanceof RetriableError), `HTTP ${status} became retriable`);
        assert.match(error.message, message);
        return true;
      });
    });
  }

  const noJudgmentCases: Array<[string, ServerBehaviour, RegExp]> = [
    ['malformed verdict', { kind: 'reply', content: 'Response A is better.' }, /unparseable verdict "Response A is better\."/],
    ['lower-case verdict', { kind: 'reply', content: 'a' }, /unparseable verdict "a"/],
    ['truncated reply', { kind: 'reply', content: 'A', finishReason: 'length' }, /truncated verdict \(finish_reason "length"\)/],
    ['empty reply', { kind: 'reply', content: '   ' }, /empty verdict/],
    ['null content', { kind: 'reply', content: null }, /empty verdict/],
    ['error object in a 200', { kind: 'error-in-200' }, /error object in a 200 response: model overloaded/],
  ];
  for (const [name, behaviour, message] of noJudgmentCases) {
    test(`${name} is no judgment`, async () => {
      await assert.rejects(rankOnce(behaviour), (error: unknown) => {
        assert.ok(error instanceof NoJudgmentError, `expected NoJudgmentError, got ${String(error)}`);
        assert.ok(!(error instanceof RetriableError));
        assert.match(error.message, message);
        return true;
      });
    });
  }

  test('missing logprobs are no judgment', async () => {
    await assert.rejects(rankOnce({ kind: 'reply', content: 'A' }, { logprobs: true }), (error: unknown) => {
      assert.ok(error instanceof NoJudgmentError);
      assert.match(error.message, /no logprobs although they were requested/);
      return true;
    });
  });

  test('stall inside the body times out', { timeout: HANG_GUARD_MS }, async () => {
    await assert.rejects(rankOnce({ kind: 'stall-body' }, { timeoutMs: 200 }), (error: unknown) => {
      assert.ok(error instanceof RetriableError, `expected RetriableError, got ${String(error)}`);
      assert.match(error.message, /timed out after 200 ms/);
      return true;
    });
  });

  test('stall before the headers times out', { timeout: HANG_GUARD_MS }, async () => {
    await assert.rejects(rankOnce({ kind: 'stall-headers' }, { timeoutMs: 200 }), (error: unknown) => {
      assert.ok(error instanceof RetriableError, `expected RetriableError, got ${String(error)}`);
      assert.match(error.message, /timed out/);
      return true;
    });
  });

  test('aborted signal rejects with its reason', { timeout: HANG_GUARD_MS }, async () => {
    const server = await serve({ fallback: { kind: 'stall-body' } });
    const controller = new AbortController();
    const ranking = teacherFor(server, { timeoutMs: 600_000 }).rank(prompt, candidates('a', 'b'), controller.signal);
    const reason = new Error('shutting down');
    // Aborting while the first request is in flight: the stall never ends by itself.
    while (server.requests.length === 0) await new Promise((resolve) => setImmediate(resolve));
    controller.abort(reason);
    await assert.rejects(ranking, (error: unknown) => {
      assert.equal(error, reason);
      return true;
    });
  });

  test('first failure stops the other requests', { timeout: HANG_GUARD_MS }, async () => {
    const server = await serve({ script: [{ kind: 'status', status: 401 }], fallback: { kind: 'stall-body' } });
    await assert.rejects(
      teacherFor(server, { concurrency: 2, timeoutMs: 600_000 }).rank(prompt, candidates('a', 'b', 'c'), signal()),
      /HTTP 401/,
    );
  });
});

describe('parseRetryAfterMs', () => {
  const headers = (entries: Record<string, string>) => new Headers(entries);
  const now = Date.parse('2024-05-01T12:00:00Z');

  test('reads seconds, fractions and dates', () => {
    assert.equal(parseRetryAfterMs(headers({ 'retry-after': '3' }), now), 3000);
    assert.equal(parseRetryAfterMs(headers({ 'retry-after': '0.5' }), now), 500);
    assert.equal(parseRetryAfterMs(headers({ 'retry-after': '3600' }), now), 3_600_000);
    assert.equal(parseRetryAfterMs(headers({ 'retry-after': 'Wed, 01 May 2024 12:01:30 GMT' }), now), 90_000);
  });

  test('past date gives zero', () => {
    assert.equal(parseRetryAfterMs(headers({ 'retry-after': 'Wed, 01 May 2024 11:00:00 GMT' }), now), 0);
  });

  test('retry-after-ms wins over Retry-After', () => {
    assert.equal(parseRetryAfterMs(headers({ 'retry-after-ms': '250', 'retry-after': '9' }), now), 250);
  });

  test('missing or invalid values give undefined', () => {
    assert.equal(parseRetryAfterMs(headers({}), now), undefined);
    assert.equal(parseRetryAfterMs(headers({ 'retry-after': 'soon' }), now), undefined);
    assert.equal(parseRetryAfterMs(headers({ 'retry-after': '-5' }), now), undefined);
    assert.equal(parseRetryAfterMs(undefined, now), undefined);
  });
});

describe('openai teacher config', () => {
  test('missing model names teacher.openai.model', () => {
    assert.throws(
      () => resolveOpenAiTeacherConfig({ apiKey: 'k' }, {}),
      (error: unknown) => error instanceof UsageError && /missing teacher\.openai\.model/.test(error.message),
    );
  });

  test('missing key names the variable', () => {
    assert.throws(() => resolveOpenAiTeacherConfig({ model: 'm' }, {}), /variable OPENAI_API_KEY .*apiKeyEnv\) is not set/);
    assert.throws(() => resolveOpenAiTeacherConfig({ model: 'm', apiKeyEnv: 'JUDGE_KEY' }, {}), /variable JUDGE_KEY /);
  });

  test('key comes from the named variable', () => {
    const resolved = resolveOpenAiTeacherConfig({ model: 'm', apiKeyEnv: 'JUDGE_KEY' }, { JUDGE_KEY: 'judge-key' });
    assert.equal(resolved.apiKey, 'judge-key');
  });

  test('key and base URL come from the environment', () => {
    const resolved = resolveOpenAiTeacherConfig(
      { model: 'm' },
      { OPENAI_API_KEY: 'env-key', OPENAI_BASE_URL: 'http://127.0.0.1:1/v1' },
    );
    assert.equal(resolved.apiKey, 'env-key');
    assert.equal(resolved.baseURL, 'http://127.0.0.1:1/v1');
    assert.equal(resolved.maxTokens, 8);
  });

  test('invalid values name their key', () => {
    assert.throws(() => resolveOpenAiTeacherConfig({ model: 'm', apiKey: 'k', baseUrl: 'localhost:8000' }, {}), /invalid teacher\.openai\.baseUrl/);
    assert.throws(() => resolveOpenAiTeacherConfig({ model: 'm', apiKey: 'k', maxTokens: 0 }, {}), /invalid teacher\.openai\.maxTokens 0/);
    assert.throws(() => resolveOpenAiTeacherConfig({ model: 'm', apiKey: 'k', timeoutMs: 1.5 }, {}), /invalid teacher\.openai\.timeoutMs/);
    assert.throws(
      () => resolveOpenAiTeacherConfig({ model: 'm', apiKey: 'k', logprobs: 'yes' as unknown as boolean }, {}),
      /invalid teacher\.openai\.logprobs "yes"/,
    );
  });
});

describe('openai teacher logging', () => {
  let lines: string[] = [];
  const previous = rootLogger();

  before(() => {
    lines = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString('utf8'));
        callback();
      },
    });
    setRootLogger(pino({ level: 'trace', base: undefined }, sink));
  });

  after(() => {
    setRootLogger(previous);
  });

  test('API key never reaches the log', async () => {
    const server = await serve({
      script: [
        { kind: 'status', status: 401, message: 'Incorrect API key provided: sk-***' },
        { kind: 'status', status: 429, headers: { 'retry-after': '1' } },
        { kind: 'reply', content: 'maybe' },
      ],
    });
    const teacher = teacherFor(server, { concurrency: 1 });
    for (let i = 0; i < 3; i++) {
      await assert.rejects(teacher.rank(prompt, candidates('a', 'b'), signal()));
    }
    await teacher.rank(prompt, candidates('GOOD', 'b'), signal());

    const output = lines.join('');
    assert.match(output, /"component":"teacher.openai"/);
    assert.match(output, /"baseURL":"http:\/\/127\.0\.0\.1:\d+\/v1"/);
    assert.match(output, /judge request failed/);
    assert.match(output, /judge gave no verdict/);
    assert.ok(!output.includes(API_KEY), 'the API key appears in the log output');
  });
});
