/**
 * Model throughput: policy sampling tokens per second with and without the KV cache, on one tfjs
 * backend. The default policy is byte-level with dModel 128 and 4 layers. Its weights are random,
 * which does not change the speed.
 *
 * Run alone: `node --import tsx bench/models.ts [node-gpu|node|wasm|cpu]` (default wasm).
 */
import { performance } from 'node:perf_hooks';
import { selectBackend } from '../src/models/backend';
import { ByteTokenizer } from '../src/models/byte-tokenizer';
import { Policy, type PolicyConfig } from '../src/models/policy';

export interface SamplingBenchResult {
  backend: string;
  /** Generated tokens per second with the KV cache. */
  cachedTokensPerSecond: number;
  /** Generated tokens per second recomputing the whole sequence at each step. */
  uncachedTokensPerSecond: number;
  /** cached / uncached. */
  speedup: number;
}

export interface SamplingBenchOptions {
  config?: PolicyConfig;
  prompts?: number;
  k?: number;
  maxTokens?: number;
}

const BENCH_CONFIG: PolicyConfig = { vocabSize: 259, contextLength: 256, dModel: 128, nHeads: 4, nLayers: 4, dFf: 512 };

/** Measures and prints sampling tokens/s with and without the KV cache on `backend`. */
export async function benchSampling(backend: string, options: SamplingBenchOptions = {}): Promise<SamplingBenchResult> {
  const selection = await selectBackend({ force: backend });
  const config = options.config ?? BENCH_CONFIG;
  const k = options.k ?? 4;
  const maxTokens = options.maxTokens ?? 64;
  const promptCount = options.prompts ?? 4;
  const prompts = Array.from({ length: promptCount }, (_, i) => `Human: question number ${i} about the benchmark?\n\nAssistant:`);
  const seeds = prompts.map((_, i) => i + 1);
  const policy = Policy.create(config, new ByteTokenizer(), 1);

  const measure = async (useCache: boolean): Promise<number> => {
    // One short warm-up run so kernel setup is not timed.
    await policy.sample(prompts.slice(0, 1), { k: 1, temperature: 1, maxTokens: 2, seeds: [0], useCache });
    const start = performance.now();
    const samples = await policy.sample(prompts, { k, temperature: 1, maxTokens, seeds, useCache });
    const seconds = (performance.now() - start) / 1000;
    const tokens = samples.flat().reduce((sum, s) => sum + s.tokens + (s.finishReason === 'eos' ? 1 : 0), 0);
    return tokens / seconds;
  };
  const cachedTokensPerSecond = await measure(true);
  const uncachedTokensPerSecond = await measure(false);
  policy.dispose();

  const result = {
    backend: selection.name,
    cachedTokensPerSecond,
    uncachedTokensPerSecond,
    speedup: cachedTokensPerSecond / uncachedTokensPerSecond,
  };
  const size = `d${config.dModel} L${config.nLayers} ${promptCount}x${k} rows, ${maxTokens} tokens`;
  console.log(`sampling/${result.backend} (${size}): ${cachedTokensPerSecond.toFixed(1)} tokens/s with KV cache, ${uncachedTokensPerSecond.toFixed(1)} without, ratio ${result.speedup.toFixed(2)}`);
  return result;
}

if (require.main === module) {
  benchSampling(process.argv[2] ?? 'wasm').catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
