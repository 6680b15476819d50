/**
 * Pairwise evaluation of a reward model: how often it scores the chosen response above the
 * rejected one.
 */
import { type PairwiseAccuracy, pairwiseAccuracy } from './stats';
import type { PromptResponse } from './dpo-step';

/** The part of a reward model that evaluation uses; `RewardModel` in src/models provides it. */
export interface RewardScorer {
  /** One score per (prompt, response), computed without a gradient tape. */
  score(batch: PromptResponse[]): Promise<number[]>;
}

/** Pairs scored per call to `score`; progress is reported after each chunk. */
const EVAL_CHUNK = 64;

/**
 * Scores the chosen and rejected response of every pair and returns the pairwise accuracy with
 * its 95% Wilson interval, where a tie counts as half a win. `onProgress` receives the number of
 * pairs scored so far.
 */
export async function evaluateRewardModel(
  model: RewardScorer,
  pairs: ReadonlyArray<{ prompt: string; chosen: string; rejected: string }>,
  onProgress?: (scored: number) => void,
): Promise<PairwiseAccuracy> {
  const chosen: number[] = [];
  const rejected: number[] = [];
  for (let start = 0; start < pairs.length; start += EVAL_CHUNK) {
    const chunk = pairs.slice(start, start + EVAL_CHUNK);
    const scores = await model.score(
      chunk.flatMap((pair) => [
        { prompt: pair.prompt, response: pair.chosen },
        { prompt: pair.prompt, response: pair.rejected },
      ]),
    );
    chunk.forEach((_, i) => {
      chosen.push(scores[2 * i]!);
      rejected.push(scores[2 * i + 1]!);
    });
    onProgress?.(chosen.length);
  }
  return pairwiseAccuracy(chosen, rejected);
}
