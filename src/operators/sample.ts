import { type OperatorFunction, type SchedulerLike, asyncScheduler } from 'rxjs';
import { createHash } from 'node:crypto';
import type { Candidate } from '../streams/records';
import { contentHash } from '../util/hash';
import { batchedStage, batchingProblems } from './batch';
import { assertValidOptions, isPositiveInteger } from './options';
import type { ChainItem, Flow, SampledItem, SampledText, SamplerHandle } from './types';

/**
 * Returns the sampling seed of one prompt in one round: the first 8 bytes of
 * sha256(JSON [promptId, round]) read as a signed big-endian 64-bit integer, so it fits an
 * Avro `long`. Replay derives the same seed from the same prompt and round.
 */
export function candidateSeed(promptId: string, round: number): bigint {
  const digest = createHash('sha256').update(JSON.stringify([promptId, round])).digest();
  return digest.readBigInt64BE(0);
}

/** Returns the low 32 bits of a seed as an unsigned number, for samplers that take a number. */
export function seedToUint32(seed: bigint): number {
  return Number(BigInt.asUintN(32, seed));
}

export interface SampleOptions {
  /** Returns the current policy; read once per batch, so a hot swap applies to the next batch. */
  policy: () => SamplerHandle;
  /** Candidates per prompt. */
  k: number;
  /** Seed per prompt and round; defaults to `candidateSeed`. */
  seedFor?: (promptId: string, round: number) => bigint;
  /** Maximum prompts per sampler call. */
  batchSize: number;
  /** Maximum wait in milliseconds for a batch to fill after its first prompt arrived. */
  batchWindowMs: number;
  scheduler?: SchedulerLike;
}

/**
 * Draws K candidates per prompt with the current policy version, batched across prompts.
 *
 * Each prompt is sampled with `seedFor(prompt.id, round)`, and the seed and policy version
 * are recorded on the item. Candidate ids are content hashes of (promptId, text), so a
 * redelivered prompt sampled with the same seed gets the same ids. A prompt the sampler
 * fails on, or whose row is malformed, becomes a dead letter and the other prompts flow on.
 * Unsubscribing aborts the sampler call in progress.
 *
 * ```
 * prompts:                       -a-b-------c-|
 * sample({ batchSize: 2, ... }): ---(AB)------(C|)     one sampler call per batch
 * ```
 *
 * Example: with k = 2 and a policy at version "p1", the prompt `{ id: "q1", ... }` becomes
 * `{ prompt, round, policyVersion: "p1", seed: candidateSeed("q1", round),
 *    candidates: [{ id: contentHash(["q1", "yes"]), text: "yes", tokens: 1, logprob: -0.1 }, ...] }`.
 */
export function sample<T extends ChainItem>(options: SampleOptions): OperatorFunction<Flow<T>, Flow<T & SampledItem>> {
  const { k, batchSize, batchWindowMs } = options;
  assertValidOptions('sample', [
    ...(isPositiveInteger(k) ? [] : [`k must be an integer >= 1, got ${k}`]),
    ...batchingProblems(batchSize, batchWindowMs),
  ]);
  const seedFor = options.seedFor ?? candidateSeed;

  return batchedStage<T, SamplerHandle, SampledText[], T & SampledItem>({
    stage: 'sample',
    batchSize,
    batchWindowMs,
    scheduler: options.scheduler ?? asyncScheduler,
    acquire: options.policy,
    run: (policy, items, signal) =>
      policy.sample(
        items.map((item) => item.prompt),
        items.map((item) => seedFor(item.prompt.id, item.round)),
        k,
        signal,
      ),
    complete: (item, row, policy) => ({
      ...item,
      policyVersion: policy.version,
      seed: seedFor(item.prompt.id, item.round),
      candidates: toCandidates(item.prompt.id, row, k),
    }),
  });
}

function toCandidates(promptId: string, row: unknown, k: number): Candidate[] {
  if (!Array.isArray(row) || row.length !== k) {
    const count = Array.isArray(row) ? row.length : typeof row;
    throw new Error(`sampler returned ${count} candidates for prompt ${promptId}; expected k = ${k}`);
  }
  return row.map((sampled: SampledText, index) => {
    const valid =
      typeof sampled?.text === 'string' &&
      Number.isInteger(sampled.tokens) &&
      sampled.tokens >= 0 &&
      Number.isFinite(sampled.logprob);
    if (!valid) {
      throw new Error(
        `sampler returned an invalid candidate ${index} for prompt ${promptId}: ` +
          'expected { text: string, tokens: integer >= 0, logprob: finite number }',
      );
    }
    return { id: contentHash([promptId, sampled.text]), text: sampled.text, tokens: sampled.tokens, logprob: sampled.logprob };
  });
}
