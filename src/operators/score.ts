import { type OperatorFunction, type SchedulerLike, asyncScheduler } from 'rxjs';
import { batchedStage, batchingProblems } from './batch';
import { assertValidOptions } from './options';
import type { Flow, SampledItem, ScoredItem, ScorerHandle } from './types';

export interface ScoreOptions {
  /** Returns the current student; read once per batch, so a hot swap applies to the next batch. */
  student: () => ScorerHandle;
  /** Maximum prompts per scorer call. */
  batchSize: number;
  /** Maximum wait in milliseconds for a batch to fill after its first prompt arrived. */
  batchWindowMs: number;
  scheduler?: SchedulerLike;
}

/**
 * Scores every candidate with the current student version, batched across prompts.
 *
 * The student's reward per candidate and its version are recorded on the item. A prompt the
 * scorer fails on, or whose scores are not one finite number per candidate, becomes a dead
 * letter and the other prompts flow on. Unsubscribing aborts the scorer call in progress.
 *
 * ```
 * sampled:                      -a-b-------c-|
 * score({ batchSize: 2, ... }): ---(AB)------(C|)     one scorer call per batch
 * ```
 *
 * Example: a sampled item with candidates ["yes", "no"] and a student at version "s1" that
 * rewards them 0.9 and -0.3 becomes `{ ...item, studentVersion: "s1", studentScores: [0.9, -0.3] }`.
 */
export function score<T extends SampledItem>(options: ScoreOptions): OperatorFunction<Flow<T>, Flow<T & ScoredItem>> {
  const { batchSize, batchWindowMs } = options;
  assertValidOptions('score', batchingProblems(batchSize, batchWindowMs));

  return batchedStage<T, ScorerHandle, number[], T & ScoredItem>({
    stage: 'score',
    batchSize,
    batchWindowMs,
    scheduler: options.scheduler ?? asyncScheduler,
    acquire: options.student,
    run: (student, items, signal) =>
      student.score(
        items.map((item) => ({ prompt: item.prompt, candidates: item.candidates })),
        signal,
      ),
    complete: (item, scores, student) => {
      const valid =
        Array.isArray(scores) &&
        scores.length === item.candidates.length &&
        scores.every((value) => Number.isFinite(value));
      if (!valid) {
        throw new Error(
          `student ${student.version} returned invalid scores for prompt ${item.prompt.id}: ` +
            `expected ${item.candidates.length} finite numbers, got ${JSON.stringify(scores)}`,
        );
      }
      return { ...item, studentVersion: student.version, studentScores: scores };
    },
  });
}
