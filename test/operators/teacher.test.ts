import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { NEVER, type Observable, map, throwError, timer } from 'rxjs';
import type { Candidate, Judgment, Prompt } from '../../src/streams/records';
import { shortlistIndices } from '../../src/operators/ranking';
import { retryVerdict, type RetryOptions } from '../../src/operators/retry-policy';
import { judgmentKey, newTeacherStats, teacher, type TeacherOptions } from '../../src/operators/teacher';
import type { GatedItem, JudgedItem, RankingTeacher } from '../../src/operators/types';
import { RetriableError } from '../../src/util/errors';
import { gatedItem, newTestScheduler } from './fixtures';

const retryOptions: RetryOptions = { maxRetries: 2, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 120_000 };

/** Returns a teacher that runs `attempts[n]` on attempt n (0-based, per prompt) and records calls and signals. */
function scriptedTeacher(attempts: ((shortlist: readonly Candidate[]) => Observable<number[]>)[]) {
  const calls: { promptId: string; signal: AbortSignal }[] = [];
  const perPrompt = new Map<string, number>();
  const judge: RankingTeacher = {
    name: 'judge',
    rank: (prompt: Prompt, shortlist, signal) => {
      calls.push({ promptId: prompt.id, signal });
      const attempt = perPrompt.get(prompt.id) ?? 0;
      perPrompt.set(prompt.id, attempt + 1);
      const script = attempts[Math.min(attempt, attempts.length - 1)]!;
      return script(shortlist);
    },
  };
  return { judge, calls };
}

/** Scores the shortlist by its position after `delayMs`: the first candidate gets the lowest score. */
const answerAfter = (delayMs: number) => (shortlist: readonly Candidate[]) =>
  timer(delayMs).pipe(map(() => shortlist.map((_candidate, index) => index + 1)));
const failWith = (error: Error) => () => throwError(() => error);

function options(judge: RankingTeacher, overrides: Partial<TeacherOptions> = {}): TeacherOptions {
  return { teacher: judge, shortlistSize: 1, concurrency: 2, timeoutMs: 1000, retry: retryOptions, jitter: () => 0, ...overrides };
}

function judged(item: GatedItem, fields: Partial<Judgment> & { candidateIndices: number[] }): JudgedItem {
  const shortlist = fields.candidateIndices.map((index) => item.candidates[index]!);
  const { candidateIndices: _unused, ...rest } = fields;
  const judgment: Judgment = {
    id: judgmentKey('judge', item.prompt.text, shortlist.map((candidate) => candidate.text)),
    promptId: item.prompt.id,
    round: item.round,
    teacher: 'judge',
    candidateIds: shortlist.map((candidate) => candidate.id),
    scores: shortlist.map((_candidate, index) => index + 1),
    latencyMs: 0,
    cached: false,
    error: null,
    ...rest,
  };
  const teacherFailure =
    judgment.error === null
      ? null
      : { stage: 'teacher' as const, promptId: item.prompt.id, round: item.round, error: judgment.error, at: 0 };
  return { ...item, judgment, teacherFailure };
}

function withFailureAt(item: JudgedItem, at: number): JudgedItem {
  return { ...item, teacherFailure: item.teacherFailure && { ...item.teacherFailure, at } };
}

const unsure = gatedItem('u', [0.1, 0.9, 0.5], 'TEACHER');
const confident = gatedItem('c', [3, 0], 'STUDENT');
const passed = (item: GatedItem): JudgedItem => ({ ...item, judgment: null, teacherFailure: null });

describe('shortlistIndices', () => {
  test('takes top m and bottom m', () => {
    assert.deepEqual(shortlistIndices([0.1, 0.9, 0.5, 0.7, 0.3], ['a', 'b', 'c', 'd', 'e'], 1), [1, 0]);
    assert.deepEqual(shortlistIndices([0.1, 0.9, 0.5, 0.7, 0.3], ['a', 'b', 'c', 'd', 'e'], 2), [1, 3, 4, 0]);
  });

  test('takes all when K <= 2m', () => {
    assert.deepEqual(shortlistIndices([0.1, 0.9, 0.5], ['a', 'b', 'c'], 2), [1, 2, 0]);
  });

  test('drops repeated candidate ids', () => {
    assert.deepEqual(shortlistIndices([0.9, 0.9, 0.1], ['a', 'a', 'b'], 2), [0, 2]);
  });

  test('repeats do not crowd out distinct candidates', () => {
    // Four copies of the best text would fill a top-2 slot twice; the shortlist keeps b and c.
    const ids = ['a', 'a', 'a', 'a', 'b', 'c', 'd'];
    const scores = [0.9, 0.9, 0.9, 0.9, 0.8, 0.5, 0.1];
    assert.deepEqual(shortlistIndices(scores, ids, 2), [0, 4, 5, 6]);
  });
});

describe('retryVerdict', () => {
  test('backs off exponentially with jitter', () => {
    const delays = [1, 2, 3, 4, 5].map((retry) =>
      retryVerdict(new RetriableError('503'), retry, { ...retryOptions, maxRetries: 5 }, 0.5),
    );
    assert.deepEqual(delays, [75, 150, 300, 600, 750].map((delayMs) => ({ retry: true, delayMs })));
  });

  test('stops at once on other errors', () => {
    const verdict = retryVerdict(new Error('400 bad request'), 1, retryOptions, 0);
    assert.equal(verdict.retry, false);
    assert.equal(!verdict.retry && verdict.error.message, '400 bad request');
  });

  test('honours Retry-After beyond 60 s', () => {
    assert.deepEqual(retryVerdict(new RetriableError('429', 90_000), 1, retryOptions, 0.9), { retry: true, delayMs: 90_000 });
  });

  test('gives up past maxRetryAfterMs', () => {
    const verdict = retryVerdict(new RetriableError('429', 200_000), 1, retryOptions, 0);
    assert.equal(verdict.retry, false);
    assert.match(!verdict.retry ? verdict.error.message : '', /retry after 200000 ms, more than maxRetryAfterMs 120000 ms/);
  });

  test('gives up after maxRetries', () => {
    const verdict = retryVerdict(new RetriableError('503'), 3, retryOptions, 0);
    assert.equal(!verdict.retry && verdict.error.message, 'gave up after 2 retries: 503');
  });
});

describe('teacher', () => {
  test('judges the shortlist and passes student items', () => {
    const { judge, calls } = scriptedTeacher([answerAfter(3)]);
    const stats = newTeacherStats();
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('-u-c-|', { u: unsure, c: confident }).pipe(teacher(options(judge, { stats })));
      expectObservable(output).toBe('---cu|', {
        u: judged(unsure, { candidateIndices: [1, 0], latencyMs: 3 }),
        c: passed(confident),
      });
    });
    assert.equal(calls.length, 1);
    assert.deepEqual(stats, { calls: 1, cacheHits: 0, retries: 0, timeouts: 0, failures: 0, skipped: 0 });
  });

  test('bounds concurrent requests', () => {
    const { judge } = scriptedTeacher([answerAfter(5)]);
    const [a, b, c] = ['a', 'b', 'c'].map((id) => gatedItem(id, [0, 1], 'TEACHER'));
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('(abc)', { a, b, c }).pipe(teacher(options(judge, { concurrency: 2 })));
      expectObservable(output).toBe('-----(ab)-c', {
        a: judged(a!, { candidateIndices: [1, 0], latencyMs: 5 }),
        b: judged(b!, { candidateIndices: [1, 0], latencyMs: 5 }),
        c: judged(c!, { candidateIndices: [1, 0], latencyMs: 5 }),
      });
    });
  });

  test('student items skip a full teacher', () => {
    const { judge } = scriptedTeacher([() => NEVER]);
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('u-c', { u: unsure, c: confident }).pipe(teacher(options(judge, { concurrency: 1 })));
      expectObservable(output, '^--!').toBe('--c', { c: passed(confident) });
    });
  });

  test('retries after a Retry-After beyond 60 s', () => {
    const { judge, calls } = scriptedTeacher([failWith(new RetriableError('429 slow down', 90_000)), answerAfter(2)]);
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('u', { u: unsure }).pipe(teacher(options(judge)));
      expectObservable(output).toBe('90002ms u', { u: judged(unsure, { candidateIndices: [1, 0], latencyMs: 90_002 }) });
    });
    assert.equal(calls.length, 2);
  });

  test('gives up past maxRetryAfterMs', () => {
    const { judge, calls } = scriptedTeacher([failWith(new RetriableError('429 slow down', 600_000))]);
    const outputs: JudgedItem[] = [];
    newTestScheduler().run(({ hot, flush }) => {
      hot('u', { u: unsure }).pipe(teacher(options(judge))).subscribe((value) => outputs.push(value as JudgedItem));
      flush();
    });
    assert.equal(calls.length, 1);
    assert.equal(outputs.length, 1);
    assert.match(outputs[0]!.judgment!.error!, /^teacher judge failed on prompt u: gave up: the server asked to retry after 600000 ms/);
  });

  test('backs off and falls back after maxRetries', () => {
    const stats = newTeacherStats();
    const { judge, calls } = scriptedTeacher([failWith(new RetriableError('503 unavailable'))]);
    const message = 'teacher judge failed on prompt u: gave up after 2 retries: 503 unavailable';
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('u-c', { u: unsure, c: confident }).pipe(teacher(options(judge, { stats })));
      // Jitter 0 halves each backoff: 50 ms, then 100 ms.
      expectObservable(output).toBe('--c 147ms u', {
        c: passed(confident),
        u: withFailureAt(judged(unsure, { candidateIndices: [1, 0], scores: [], latencyMs: 150, error: message }), 150),
      });
    });
    assert.equal(calls.length, 3);
    assert.deepEqual(stats, { calls: 3, cacheHits: 0, retries: 2, timeouts: 0, failures: 1, skipped: 0 });
  });

  test('does not retry a malformed verdict', () => {
    const { judge, calls } = scriptedTeacher([() => timer(1).pipe(map(() => [1]))]);
    const outputs: JudgedItem[] = [];
    newTestScheduler().run(({ hot, flush }) => {
      hot('u', { u: unsure }).pipe(teacher(options(judge))).subscribe((value) => outputs.push(value as JudgedItem));
      flush();
    });
    assert.equal(calls.length, 1);
    assert.match(outputs[0]!.teacherFailure!.error, /invalid verdict for prompt u: expected 2 finite scores, got \[1\]/);
    assert.equal(outputs[0]!.teacherFailure!.promptId, 'u');
  });

  test('times out a stalled call and aborts it', () => {
    const stats = newTeacherStats();
    const { judge, calls } = scriptedTeacher([() => NEVER, answerAfter(1)]);
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('u', { u: unsure }).pipe(teacher(options(judge, { timeoutMs: 10, stats })));
      // 10 ms timeout, 50 ms backoff, 1 ms until the verdict.
      expectObservable(output).toBe('61ms u', { u: judged(unsure, { candidateIndices: [1, 0], latencyMs: 61 }) });
    });
    assert.equal(calls[0]?.signal.aborted, true);
    assert.equal(calls[1]?.signal.aborted, false);
    assert.equal(stats.timeouts, 1);
  });

  test('cache answers a redelivered prompt', () => {
    const { judge, calls } = scriptedTeacher([answerAfter(4)]);
    const cache = new Map<string, readonly number[]>();
    const stats = newTeacherStats();
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('u---------u', { u: unsure }).pipe(teacher(options(judge, { cache, stats })));
      expectObservable(output).toBe('----x-----y', {
        x: judged(unsure, { candidateIndices: [1, 0], latencyMs: 4 }),
        y: judged(unsure, { candidateIndices: [1, 0], latencyMs: 0, cached: true }),
      });
    });
    assert.equal(calls.length, 1);
    assert.equal(stats.cacheHits, 1);
  });

  test('unsubscribe aborts requests in flight', () => {
    const { judge, calls } = scriptedTeacher([() => NEVER]);
    const [a, b] = ['a', 'b'].map((id) => gatedItem(id, [0, 1], 'AUDIT'));
    newTestScheduler().run(({ hot, expectObservable }) => {
      expectObservable(hot('ab', { a, b }).pipe(teacher(options(judge))), '^---!').toBe('');
    });
    assert.deepEqual(
      calls.map((call) => call.signal.aborted),
      [true, true],
    );
  });

  test('skips shortlists of one distinct candidate', () => {
    const { judge, calls } = scriptedTeacher([answerAfter(1)]);
    const same = gatedItem('s', [0.2, 0.1], 'TEACHER');
    const twin = { ...same, candidates: [same.candidates[0]!, same.candidates[0]!] };
    newTestScheduler().run(({ hot, expectObservable }) => {
      expectObservable(hot('s', { s: twin }).pipe(teacher(options(judge)))).toBe('s', { s: passed(twin) });
    });
    assert.equal(calls.length, 0);
  });
});
