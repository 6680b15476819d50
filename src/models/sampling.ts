import { UsageError } from '../util/errors';
import type { Random } from './random';

/** How the next token is drawn from the model's logits. */
export interface SamplingOptions {
  /** 0 picks the most likely token (greedy); higher values flatten the distribution. */
  temperature: number;
  /** Keep only the k most likely tokens; unset or 0 keeps all. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (nucleus); unset or 1 keeps all. */
  topP?: number;
}

/** Throws `UsageError` on an out-of-range sampling option. */
export function checkSamplingOptions(options: SamplingOptions): void {
  if (!(options.temperature >= 0) || !Number.isFinite(options.temperature)) {
    throw new UsageError(`Invalid temperature ${options.temperature}: expected a finite number >= 0.`);
  }
  if (options.topK !== undefined && (!Number.isInteger(options.topK) || options.topK < 0)) {
    throw new UsageError(`Invalid topK ${options.topK}: expected an integer >= 0 (0 keeps all tokens).`);
  }
  if (options.topP !== undefined && !(options.topP > 0 && options.topP <= 1)) {
    throw new UsageError(`Invalid topP ${options.topP}: expected a number in (0, 1].`);
  }
}

/**
 * Draws the next token id from one row of logits. Only ids with `allowed[id]` take part. The draw
 * uses `random` (a seeded PRNG in JavaScript), so a seed gives the same choice on any backend that
 * returns the same logits. Ties in sorting go to the lower id. Returns the id and its log-probability
 * under the model's unmodified distribution (temperature 1, all ids), which is what
 * `Policy.sequenceLogprobs` sums.
 */
export function drawToken(
  logits: Float32Array,
  allowed: Uint8Array,
  options: SamplingOptions,
  random: Random,
): { id: number; logprob: number } {
  const id = options.temperature === 0 ? argmaxAllowed(logits, allowed) : drawFiltered(logits, allowed, options, random);
  return { id, logprob: logits[id]! - logSumExp(logits) };
}

function argmaxAllowed(logits: Float32Array, allowed: Uint8Array): number {
  let best = -1;
  for (let id = 0; id < logits.length; id++) {
    if (allowed[id] && (best < 0 || logits[id]! > logits[best]!)) best = id;
  }
  return best;
}

function drawFiltered(
  logits: Float32Array,
  allowed: Uint8Array,
  options: SamplingOptions,
  random: Random,
): number {
  let ids: number[] = [];
  for (let id = 0; id < logits.length; id++) if (allowed[id]) ids.push(id);

  const topK = options.topK ?? 0;
  const topP = options.topP ?? 1;
  const needsOrder = (topK > 0 && topK < ids.length) || topP < 1;
  if (needsOrder) {
    ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
    if (topK > 0) ids = ids.slice(0, topK);
  }

  // Probabilities at the given temperature over the kept ids, shifted by the max for stability.
  let max = -Infinity;
  for (const id of ids) max = Math.max(max, logits[id]!);
  const weights = ids.map((id) => Math.exp((logits[id]! - max) / options.temperature));
  let total = weights.reduce((a, b) => a + b, 0);

  if (topP < 1) {
    // ids are sorted by probability: keep the shortest prefix whose mass reaches topP.
    let mass = 0;
    let keep = 0;
    while (keep < ids.length && mass < topP * total) mass += weights[keep++]!;
    ids = ids.slice(0, keep);
    weights.length = keep;
    total = mass;
  }

  let target = random.nextFloat() * total;
  for (let i = 0; i < ids.length; i++) {
    target -= weights[i]!;
    if (target < 0) return ids[i]!;
  }
  // Rounding can leave a tiny remainder after the last id: that id is the draw.
  return ids[ids.length - 1]!;
}

function logSumExp(values: Float32Array): number {
  let max = -Infinity;
  for (const value of values) max = Math.max(max, value);
  let sum = 0;
  for (const value of values) sum += Math.exp(value - max);
  return max + Math.log(sum);
}
