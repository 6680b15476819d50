/**
 * Pairwise accuracy with a 95% confidence interval, for reward-model evaluation.
 */

/** Two-sided 95% standard normal quantile. */
export const Z_95 = 1.959963984540054;

/** Result of comparing a reward model's scores on n preference pairs. */
export interface PairwiseAccuracy {
  n: number;
  /** Pairs whose chosen response scored strictly higher. */
  wins: number;
  /** Pairs whose chosen response scored strictly lower. */
  losses: number;
  /** Pairs with equal scores; each counts as half a win. */
  ties: number;
  /** (wins + ties / 2) / n; 0 when n is 0. */
  accuracy: number;
  /** Wilson score interval at 95% around `accuracy`. */
  low: number;
  high: number;
}

/**
 * Returns the Wilson score interval (Wilson 1927) for a proportion p observed on n trials:
 * (p + z^2/(2n) +- z sqrt(p(1-p)/n + z^2/(4n^2))) / (1 + z^2/n).
 * Unlike the normal approximation it stays inside [0, 1] and is sound near 0 and 1.
 * With n = 0 it returns the uninformative interval [0, 1].
 */
export function wilsonInterval(p: number, n: number, z = Z_95): { low: number; high: number } {
  if (n === 0) return { low: 0, high: 1 };
  if (!(p >= 0 && p <= 1)) throw new RangeError(`proportion must be in [0, 1], got ${p}`);
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denominator;
  const halfWidth = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denominator;
  return { low: Math.max(0, center - halfWidth), high: Math.min(1, center + halfWidth) };
}

/**
 * Counts wins, losses and ties of chosen over rejected scores and returns the accuracy with its
 * 95% Wilson interval. A tie counts as half a win, the usual convention for pairwise accuracy
 * and for win rates; the interval then treats the fractional count as a binomial proportion,
 * which slightly overstates its width when there are many ties. Throws a RangeError on a NaN
 * score.
 */
export function pairwiseAccuracy(chosen: ArrayLike<number>, rejected: ArrayLike<number>): PairwiseAccuracy {
  if (chosen.length !== rejected.length) {
    throw new RangeError(`chosen and rejected must have the same length, got ${chosen.length} and ${rejected.length}`);
  }
  const n = chosen.length;
  let wins = 0;
  let losses = 0;
  let ties = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(chosen[i]) || Number.isNaN(rejected[i])) {
      throw new RangeError(`score of pair ${i} is NaN (chosen ${chosen[i]}, rejected ${rejected[i]}); the model diverged or its weights are corrupt`);
    }
    if (chosen[i]! > rejected[i]!) wins++;
    else if (chosen[i]! < rejected[i]!) losses++;
    else ties++;
  }
  const accuracy = n === 0 ? 0 : (wins + ties / 2) / n;
  return { n, wins, losses, ties, accuracy, ...wilsonInterval(accuracy, n) };
}
