import {
  type Observable,
  type OperatorFunction,
  type SchedulerLike,
  asyncScheduler,
  catchError,
  connect,
  defer,
  filter,
  map,
  merge,
  mergeMap,
  of,
  retry,
  take,
  throwError,
  throwIfEmpty,
  timeout,
  timer,
} from 'rxjs';
import type { Candidate, Judgment } from '../streams/records';
import { RetriableError, errorMessage } from '../util/errors';
import { contentHash } from '../util/hash';
import { callAbortable } from './abortable';
import { assertValidOptions, isNonNegative, isPositiveInteger } from './options';
import { shortlistIndices } from './ranking';
import { type RetryOptions, retryOptionProblems, retryVerdict } from './retry-policy';
import { type Flow, type GatedItem, type JudgedItem, type RankingTeacher, bypassDeadLetters } from './types';

/** Teacher scores by judgment key. A `Map<string, number[]>` fits; so does a bounded LRU. */
export interface JudgmentCache {
  get(key: string): readonly number[] | undefined;
  set(key: string, scores: readonly number[]): unknown;
}

/** Counters of the teacher stage, updated in place; read them at any time. */
export interface TeacherStats {
  /** Attempts sent to the teacher, retries included. */
  calls: number;
  /** Requests served from the cache. */
  cacheHits: number;
  /** Retries scheduled after retriable failures. */
  retries: number;
  /** Attempts that timed out. */
  timeouts: number;
  /** Requests that failed for good; their items fell back to the student. */
  failures: number;
  /** Teacher-bound items whose shortlist had fewer than two distinct candidates, so no call was made. */
  skipped: number;
}

export function newTeacherStats(): TeacherStats {
  return { calls: 0, cacheHits: 0, retries: 0, timeouts: 0, failures: 0, skipped: 0 };
}

export interface TeacherOptions {
  teacher: RankingTeacher;
  /** m: the teacher ranks the student's top m and bottom m candidates. */
  shortlistSize: number;
  /** Maximum teacher requests in flight at once. */
  concurrency: number;
  /** Limit on one attempt, from the call until its verdict, in milliseconds; the attempt's signal aborts when it passes. */
  timeoutMs: number;
  retry: RetryOptions;
  cache?: JudgmentCache;
  /** Backoff jitter source in [0, 1); defaults to Math.random. */
  jitter?: () => number;
  stats?: TeacherStats;
  scheduler?: SchedulerLike;
}

/** Returns the judgment id and cache key: a content hash of (teacher, prompt text, shortlist texts). */
export function judgmentKey(teacherName: string, promptText: string, shortlistTexts: readonly string[]): string {
  return contentHash([teacherName, promptText, shortlistTexts]);
}

/**
 * Asks the teacher to rank the student's shortlist of every TEACHER and AUDIT item.
 *
 * The shortlist is `shortlistIndices(studentScores, ids, shortlistSize)`, best first. At most
 * `concurrency` requests run at once; STUDENT items pass straight through without waiting
 * for a slot. Each attempt gets its own AbortSignal and `timeoutMs`; a timeout aborts the
 * signal and counts as retriable. Only that one request is retried, never the upstream,
 * with the backoff of `retryVerdict`. A cached key costs no call and yields a judgment with
 * `cached: true` and latency 0. Otherwise `latencyMs` is the scheduler time from the first
 * attempt to the verdict, retries included.
 *
 * A request that fails for good yields a judgment with `error` set and empty scores, and
 * the item gets `teacherFailure`. The item then falls back to the student's scores, and the
 * stream goes on. Unsubscribing aborts every request in flight.
 *
 * ```
 * gated:                          -t-s-t-|        t TEACHER, s STUDENT
 * teacher (verdict after 3 ms):   ---sT---(T|)    T = item + judgment
 * ```
 *
 * Example: a TEACHER item with candidates a, b, c scored [0.2, 0.9, 0.1] by the student and
 * m = 1 sends the shortlist [b, c]; a verdict [3, 1] becomes
 * `judgment: { candidateIds: [b.id, c.id], scores: [3, 1], cached: false, error: null, ... }`.
 */
export function teacher<T extends GatedItem>(options: TeacherOptions): OperatorFunction<Flow<T>, Flow<T & JudgedItem>> {
  const { teacher: judge, shortlistSize, concurrency, timeoutMs, cache } = options;
  assertValidOptions('teacher', [
    ...(isPositiveInteger(shortlistSize) ? [] : [`shortlistSize must be an integer >= 1, got ${shortlistSize}`]),
    ...(isPositiveInteger(concurrency) ? [] : [`concurrency must be an integer >= 1, got ${concurrency}`]),
    ...(isNonNegative(timeoutMs) && timeoutMs > 0 ? [] : [`timeoutMs must be a number > 0, got ${timeoutMs}`]),
    ...retryOptionProblems(options.retry),
  ]);
  const scheduler = options.scheduler ?? asyncScheduler;
  const jitter = options.jitter ?? Math.random;
  const stats = options.stats ?? newTeacherStats();

  const passThrough = (item: T): T & JudgedItem => ({ ...item, judgment: null, teacherFailure: null });

  const requestVerdict = (item: T, shortlist: Candidate[]): Observable<number[]> =>
    defer(() => {
      stats.calls += 1;
      return callAbortable((signal) => judge.rank(item.prompt, shortlist, signal));
    }).pipe(
      take(1),
      throwIfEmpty(() => new Error(`teacher ${judge.name} returned no verdict for prompt ${item.prompt.id}`)),
      timeout({
        first: timeoutMs,
        scheduler,
        with: () => {
          stats.timeouts += 1;
          return throwError(
            () => new RetriableError(`teacher ${judge.name} timed out after ${timeoutMs} ms on prompt ${item.prompt.id}`),
          );
        },
      }),
      map((scores) => validVerdict(scores, shortlist.length, judge.name, item.prompt.id)),
      retry({
        delay: (error: unknown, retryNumber: number) => {
          const verdict = retryVerdict(error, retryNumber, options.retry, jitter());
          if (!verdict.retry) return throwError(() => verdict.error);
          stats.retries += 1;
          return timer(verdict.delayMs, scheduler);
        },
      }),
    );

  const judgeItem = (item: T): Observable<T & JudgedItem> =>
    defer(() => {
      const started = scheduler.now();
      const ids = item.candidates.map((candidate) => candidate.id);
      const shortlist = shortlistIndices(item.studentScores, ids, shortlistSize).map(
        (index) => item.candidates[index] as Candidate,
      );
      if (shortlist.length < 2) {
        stats.skipped += 1;
        return of(passThrough(item));
      }

      const key = judgmentKey(judge.name, item.prompt.text, shortlist.map((candidate) => candidate.text));
      const base = {
        id: key,
        promptId: item.prompt.id,
        round: item.round,
        teacher: judge.name,
        candidateIds: shortlist.map((candidate) => candidate.id),
      };
      const judged = (judgment: Judgment, failure: JudgedItem['teacherFailure']): T & JudgedItem => ({
        ...item,
        judgment,
        teacherFailure: failure,
      });

      // NOTE: the cache is read before the call and written after it, so two identical
      // requests in flight at the same time both reach the teacher.
      const hit = cache?.get(key);
      if (hit !== undefined) {
        stats.cacheHits += 1;
        return of(judged({ ...base, scores: [...hit], latencyMs: 0, cached: true, error: null }, null));
      }

      return requestVerdict(item, shortlist).pipe(
        map((scores) => {
          cache?.set(key, scores);
          return judged({ ...base, scores, latencyMs: scheduler.now() - started, cached: false, error: null }, null);
        }),
        catchError((error: unknown) => {
          stats.failures += 1;
          const now = scheduler.now();
          const message = `teacher ${judge.name} failed on prompt ${item.prompt.id}: ${errorMessage(error)}`;
          return of(
            judged(
              { ...base, scores: [], latencyMs: now - started, cached: false, error: message },
              { stage: 'teacher', promptId: item.prompt.id, round: item.round, error: message, at: now },
            ),
          );
        }),
      );
    });

  return bypassDeadLetters<T, T & JudgedItem>((source) =>
    source.pipe(
      connect((shared) =>
        merge(
          shared.pipe(
            filter((item) => item.candidateSet.decision === 'STUDENT'),
            map(passThrough),
          ),
          shared.pipe(
            filter((item) => item.candidateSet.decision !== 'STUDENT'),
            mergeMap(judgeItem, concurrency),
          ),
        ),
      ),
    ),
  );
}

function validVerdict(scores: unknown, expected: number, teacherName: string, promptId: string): number[] {
  if (!Array.isArray(scores) || scores.length !== expected || !scores.every((value) => Number.isFinite(value))) {
    // Not retriable: the same request would most likely get the same malformed verdict.
    throw new Error(
      `teacher ${teacherName} returned an invalid verdict for prompt ${promptId}: ` +
        `expected ${expected} finite scores, got ${JSON.stringify(scores)}`,
    );
  }
  return scores as number[];
}
