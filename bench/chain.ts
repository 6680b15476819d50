/**
 * Chain overhead: prompts per second through `alignChain` with instant stand-in models and
 * teacher, all in memory. Compare it with the transport's records per second to see which
 * of the two bounds a run when the models are fast.
 *
 * Run alone: `node --import tsx bench/chain.ts [prompts]`.
 */
import { performance } from 'node:perf_hooks';
import { from, lastValueFrom, reduce } from 'rxjs';
import type { Prompt } from '../src/streams/records';
import { alignChain } from '../src/operators/chain';
import type { RankingTeacher, SamplerHandle, ScorerHandle } from '../src/operators/types';

export interface ChainBenchResult {
  prompts: number;
  seconds: number;
  promptsPerSecond: number;
  pairs: number;
  teacherCalls: number;
}

export interface ChainBenchOptions {
  /** Prompts to push through the chain. */
  prompts?: number;
  /** Candidates per prompt. */
  k?: number;
  maxInFlight?: number;
  batchSize?: number;
}

/** Measures prompts/s through `alignChain` with stand-ins that resolve at once, and prints it. */
export async function benchChainOverhead(options: ChainBenchOptions = {}): Promise<ChainBenchResult> {
  const count = options.prompts ?? 20_000;
  const k = options.k ?? 4;

  const policy: SamplerHandle = {
    version: 'bench-policy',
    sample: async (prompts, _seeds, size) =>
      prompts.map((prompt) =>
        Array.from({ length: size }, (_unused, index) => ({ text: `${prompt.id} answer ${index}`, tokens: 3, logprob: -index })),
      ),
  };
  // Even prompts get a wide score gap (the student decides), odd ones a narrow gap (the teacher does).
  const student: ScorerHandle = {
    version: 'bench-student',
    score: async (batch) =>
      batch.map(({ prompt, candidates }) => {
        const gap = Number(prompt.id.slice(1)) % 2 === 0 ? 4 : 0.1;
        return candidates.map((_candidate, index) => gap * (candidates.length - index));
      }),
  };
  const teacher: RankingTeacher = {
    name: 'bench-teacher',
    rank: async (_prompt, shortlist) => shortlist.map((_candidate, index) => index),
  };

  const chain = alignChain({
    models: { policy: () => policy, student: () => student },
    teacher,
    k,
    batchSize: options.batchSize ?? 32,
    batchWindowMs: 1,
    gate: { tau: 0.8, temperature: 1, auditFraction: 0.05 },
    judge: {
      shortlistSize: 1,
      concurrency: 16,
      timeoutMs: 10_000,
      retry: { maxRetries: 0, baseDelayMs: 10, maxDelayMs: 100, maxRetryAfterMs: 1000 },
    },
    minMargin: 0,
    maxInFlight: options.maxInFlight ?? 256,
  });

  const prompts = Array.from({ length: count }, (_unused, index): Prompt => ({
    id: `p${index}`,
    text: `bench prompt ${index}`,
    source: 'bench',
    tags: [],
    meta: {},
    createdAt: 0n,
  }));

  const started = performance.now();
  const pairs = await lastValueFrom(
    from(prompts.map((prompt) => ({ prompt, round: 1 }))).pipe(
      chain.operator,
      reduce((total, outcome) => total + outcome.records.pairs.length, 0),
    ),
  );
  const seconds = (performance.now() - started) / 1000;

  const result: ChainBenchResult = {
    prompts: count,
    seconds,
    promptsPerSecond: count / seconds,
    pairs,
    teacherCalls: chain.stats.teacher.calls,
  };
  console.log(
    `chain overhead: ${result.promptsPerSecond.toFixed(0)} prompts/s ` +
      `(${count} prompts, k=${k}, ${result.pairs} pairs, ${result.teacherCalls} teacher calls, ${seconds.toFixed(2)} s)`,
  );
  return result;
}

if (require.main === module) {
  const prompts = process.argv[2] === undefined ? undefined : Number(process.argv[2]);
  benchChainOverhead(prompts === undefined ? {} : { prompts }).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
