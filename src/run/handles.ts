/**
 * Adapters from loaded models to the handles the operator chain calls, and the seed of each
 * prompt's candidates.
 */
import { createHash } from 'node:crypto';
import type { Policy } from '../models/policy';
import type { RewardModel } from '../models/reward-model';
import type { ChainConfig } from '../config/schema';
import type { SampledText, SamplerHandle, ScorerHandle } from '../operators/types';
import type { Candidate, Prompt } from '../streams/records';
import { seedToUint32 } from '../operators/sample';

/**
 * Returns the sampling seed of one prompt in one round of a run: the first 8 bytes of
 * sha256(JSON ["candidates", runSeed, promptId, round]) as a signed 64-bit integer. It depends
 * on nothing else, so replay draws the same candidates.
 */
export function chainSeed(runSeed: number, promptId: string, round: number): bigint {
  return createHash('sha256').update(JSON.stringify(['candidates', runSeed, promptId, round])).digest().readBigInt64BE(0);
}

/** Wraps a policy as the chain's sampler, with the chain's sampling settings. */
export function policyHandle(policy: Policy, version: string, chain: ChainConfig): SamplerHandle {
  return {
    version,
    async sample(prompts: readonly Prompt[], seeds: readonly bigint[], k: number, signal: AbortSignal): Promise<SampledText[][]> {
      signal.throwIfAborted();
      const sampled = await policy.sample(
        prompts.map((prompt) => prompt.text),
        {
          k,
          maxTokens: chain.maxTokens,
          temperature: chain.temperature,
          topK: chain.topK,
          topP: chain.topP,
          seeds: seeds.map(seedToUint32),
        },
      );
      signal.throwIfAborted();
      return sampled.map((row) => row.map((response) => ({ text: response.text, tokens: response.tokens, logprob: response.logprob })));
    },
  };
}

/** Wraps a reward model as the chain's scorer. */
export function studentHandle(student: RewardModel, version: string): ScorerHandle {
  return {
    version,
    async score(batch: readonly { prompt: Prompt; candidates: readonly Candidate[] }[], signal: AbortSignal): Promise<number[][]> {
      signal.throwIfAborted();
      const items = batch.flatMap(({ prompt, candidates }) => candidates.map((candidate) => ({ prompt: prompt.text, response: candidate.text })));
      const scores = await student.score(items);
      signal.throwIfAborted();
      const rows: number[][] = [];
      let offset = 0;
      for (const { candidates } of batch) {
        rows.push(scores.slice(offset, offset + candidates.length));
        offset += candidates.length;
      }
      return rows;
    },
  };
}
