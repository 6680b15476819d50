/**
 * Ranking of a shortlist by pairwise comparisons with swapped positions.
 *
 * LLM judges favour one position (often the first), so every pair (i, j) is asked twice: once
 * with i shown as A and once with j shown as A. Each ordered comparison returns the probability
 * that the response shown first is better: 1 or 0 for a hard verdict, anything between for a
 * verdict read from logprobs. Response i's share of the pair is the mean of P(i better) over both
 * orders. So a verdict that flips with the order (both "A" or both "B") becomes a tie of 0.5
 * each, and a judge that always replies "A" ranks every pair as a tie.
 *
 * A response's score is the sum of its shares: the number of pairs it wins, with 0.5 per tie.
 * Identical texts tie without a call.
 */

/** Returns P(the response at index `first`, shown as A, is better than the one at `second`, shown as B). */
export type OrderedComparison = (first: number, second: number, signal: AbortSignal) => Promise<number>;

export interface PairwiseOptions {
  /** Maximum comparisons in flight at once. */
  concurrency: number;
  signal: AbortSignal;
}

/**
 * Returns one score per text, in the texts' order. Rejects with the first comparison's error and
 * aborts the comparisons still in flight, because one failed comparison leaves the ranking
 * incomplete. Rejects with the signal's reason when `options.signal` aborts.
 */
export async function rankByPairwiseComparison(
  texts: readonly string[],
  compare: OrderedComparison,
  options: PairwiseOptions,
): Promise<number[]> {
  options.signal.throwIfAborted();
  const scores = texts.map(() => 0);
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      if (texts[i] === texts[j]) {
        scores[i]! += 0.5;
        scores[j]! += 0.5;
      } else {
        pairs.push([i, j]);
      }
    }
  }
  const comparisons = pairs.flatMap(([i, j]): Array<[number, number]> => [
    [i, j],
    [j, i],
  ]);

  // Aborted by the caller's signal or by the first failed comparison, whichever comes first.
  const controller = new AbortController();
  const forwardAbort = () => controller.abort(options.signal.reason);
  options.signal.addEventListener('abort', forwardAbort, { once: true });

  /** P(first better) keyed by `${first},${second}`. */
  const firstWins = new Map<string, number>();
  let next = 0;
  const runWorker = async (): Promise<void> => {
    while (next < comparisons.length) {
      controller.signal.throwIfAborted();
      const [first, second] = comparisons[next++]!;
      firstWins.set(`${first},${second}`, await compare(first, second, controller.signal));
    }
  };
  const workerCount = Math.max(1, Math.min(options.concurrency, comparisons.length));
  try {
    await Promise.all(
      Array.from({ length: workerCount }, () =>
        runWorker().catch((error: unknown) => {
          controller.abort(error);
          throw error;
        }),
      ),
    );
  } finally {
    options.signal.removeEventListener('abort', forwardAbort);
  }

  for (const [i, j] of pairs) {
    const iShownFirst = firstWins.get(`${i},${j}`)!;
    const jShownFirst = firstWins.get(`${j},${i}`)!;
    const shareOfI = (iShownFirst + (1 - jShownFirst)) / 2;
    scores[i]! += shareOfI;
    scores[j]! += 1 - shareOfI;
  }
  return scores;
}
