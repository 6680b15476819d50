/**
 * Training speed: wall time of one DPO step (policy forward and backward on chosen and rejected,
 * reference log-probs, clipped Adam update) for a fixed batch, on every tfjs backend that loads
 * here, and the wasm/cpu ratio of step times. Weights are random, which does not change the
 * speed. Each backend gets one untimed warm-up step, then the median of `steps` timed steps.
 *
 * Run alone: `node --import tsx bench/training.ts`.
 */
import { performance } from 'node:perf_hooks';
import { BACKEND_CHOICES, selectBackend } from '../src/models/backend';
import { ByteTokenizer } from '../src/models/byte-tokenizer';
import { Policy, type PolicyConfig } from '../src/models/policy';
import { DpoTrainer, type DpoPair } from '../src/training/dpo-step';
import { errorMessage } from '../src/util/errors';

export interface TrainingBenchOptions {
  config?: PolicyConfig;
  /** Pairs per DPO step. */
  pairs?: number;
  /** Timed steps per backend; the median is reported. */
  steps?: number;
  /** Backends to try; default all of node-gpu, node, wasm, cpu. */
  backends?: readonly string[];
}

export interface TrainingBenchResult {
  /** Median milliseconds per DPO step, by backend name; absent where the backend did not load. */
  stepMs: Record<string, number>;
  /** Backends passed over, with the reason. */
  skipped: Record<string, string>;
  /** wasm step time divided by cpu step time; below 1 means wasm is faster. Null unless both ran. */
  wasmCpuRatio: number | null;
}

const BENCH_CONFIG: PolicyConfig = { vocabSize: 259, contextLength: 64, dModel: 64, nHeads: 4, nLayers: 2, dFf: 256 };

/** Builds `count` pairs whose prompts and responses fill most of a 64-byte context. */
function benchPairs(count: number): DpoPair[] {
  return Array.from({ length: count }, (_, i) => ({
    prompt: `Human: benchmark question ${i}, please answer briefly.\n\nAssistant:`,
    chosen: ` Here is a short and polite answer number ${i}.`,
    rejected: ` No. Figure it out yourself, question ${i}.`,
  }));
}

/** Measures and prints the DPO step time per backend and the wasm/cpu ratio. */
export async function benchTraining(options: TrainingBenchOptions = {}): Promise<TrainingBenchResult> {
  const config = options.config ?? BENCH_CONFIG;
  const pairs = benchPairs(options.pairs ?? 8);
  const steps = options.steps ?? 3;
  const result: TrainingBenchResult = { stepMs: {}, skipped: {}, wasmCpuRatio: null };

  for (const backend of options.backends ?? BACKEND_CHOICES) {
    let name: string;
    try {
      name = (await selectBackend({ force: backend })).name;
    } catch (error) {
      result.skipped[backend] = errorMessage(error);
      console.log(`training/${backend}: skipped (${errorMessage(error)})`);
      continue;
    }
    const policy = Policy.create(config, new ByteTokenizer(), 1);
    const reference = policy.clone();
    const trainer = new DpoTrainer(policy, reference, {
      beta: 0.1,
      lossType: 'sigmoid',
      labelSmoothing: 0,
      lr: 1e-4,
      warmupSteps: 0,
      clipNorm: 1,
      batchSize: pairs.length,
    });
    try {
      await trainer.step(pairs);
      const times: number[] = [];
      for (let i = 0; i < steps; i++) {
        // Fresh pair objects without ids, so every step also computes the reference log-probs.
        const start = performance.now();
        await trainer.step(pairs.map((pair) => ({ ...pair })));
        times.push(performance.now() - start);
      }
      times.sort((a, b) => a - b);
      result.stepMs[name] = times[Math.floor(times.length / 2)]!;
      const size = `d${config.dModel} L${config.nLayers} context ${config.contextLength}, ${pairs.length} pairs`;
      console.log(`training/${name} (${size}): ${result.stepMs[name]!.toFixed(0)} ms per DPO step (median of ${steps})`);
    } finally {
      trainer.dispose();
      policy.dispose();
      reference.dispose();
    }
  }

  const wasm = result.stepMs.wasm;
  const cpu = result.stepMs.cpu;
  if (wasm !== undefined && cpu !== undefined) {
    result.wasmCpuRatio = wasm / cpu;
    console.log(`training: wasm/cpu step-time ratio ${result.wasmCpuRatio.toFixed(3)} (wasm ${(cpu / wasm).toFixed(1)}x the speed of cpu)`);
  }
  return result;
}

if (require.main === module) {
  benchTraining().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
