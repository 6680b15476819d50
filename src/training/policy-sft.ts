/**
 * The step loop that warm-starts a policy with supervised fine-tuning on the chosen responses of
 * preference pairs, as `tsalign policy sft` runs it.
 */
import { Random, deriveSeed } from '../models/random';
import type { PromptResponse } from './dpo-step';
import { type LanguageModel, SftTrainer } from './sft-step';

export interface PolicySftOptions {
  /** Optimizer steps to take; the examples are cycled, reshuffled at each pass. */
  steps: number;
  /** Examples per optimizer step. */
  batchSize: number;
  lr: number;
  /** Linear warm-up steps; default 5% of the steps. */
  warmupSteps?: number;
  /** After warm-up: 'cosine' decays to 0 at the last step, 'constant' keeps lr. */
  schedule: 'constant' | 'cosine';
  clipNorm: number;
  /** Seeds the shuffle of each pass over the examples. */
  seed: number;
  /** Called after every optimizer step. */
  onStep?: (progress: PolicySftProgress) => void;
  signal?: AbortSignal;
}

/** Progress of a running warm start. */
export interface PolicySftProgress {
  step: number;
  totalSteps: number;
  /** 1-based pass over the examples. */
  epoch: number;
  /** Cross-entropy per response token of this step, in nats. */
  loss: number;
  lr: number;
}

/** Outcome of a warm start. */
export interface PolicySftSummary {
  steps: number;
  /** Passes over the examples begun, the last one possibly partial. */
  epochs: number;
  /** Mean loss per response token over the first and the last tenth of the steps. */
  firstLoss: number;
  lastLoss: number;
  /** Response tokens trained on, summed over all steps. */
  tokens: number;
  /** Steps whose gradient was not finite and were skipped. */
  skippedSteps: number;
}

/**
 * Trains `policy` for `options.steps` SFT steps on (prompt, response) examples. Each pass visits
 * every example once in an order drawn from the seed; a batch never spans two passes.
 */
export async function warmStartPolicy(policy: LanguageModel, examples: readonly PromptResponse[], options: PolicySftOptions): Promise<PolicySftSummary> {
  if (examples.length === 0) throw new RangeError('no examples to train the policy on');
  if (!Number.isInteger(options.steps) || options.steps < 1) throw new RangeError(`steps must be a positive integer, got ${options.steps}`);
  const batchSize = Math.min(options.batchSize, examples.length);
  const sft = new SftTrainer(policy, {
    batchSize,
    lr: options.lr,
    warmupSteps: options.warmupSteps ?? Math.round(0.05 * options.steps),
    decay: options.schedule,
    totalSteps: options.steps,
    clipNorm: options.clipNorm,
  });
  const tenth = Math.max(1, Math.floor(options.steps / 10));
  const losses: number[] = [];
  const summary: PolicySftSummary = { steps: 0, epochs: 0, firstLoss: NaN, lastLoss: NaN, tokens: 0, skippedSteps: 0 };
  let order: PromptResponse[] = [];
  let cursor = 0;
  try {
    for (let step = 1; step <= options.steps; step++) {
      options.signal?.throwIfAborted();
      if (cursor + batchSize > order.length) {
        summary.epochs++;
        order = shuffled(examples, new Random(deriveSeed(options.seed, 'policy-sft', summary.epochs)));
        cursor = 0;
      }
      const batch = order.slice(cursor, cursor + batchSize);
      cursor += batchSize;
      const result = await sft.step(batch);
      summary.steps = step;
      summary.tokens += result.tokens;
      if (result.skipped) summary.skippedSteps++;
      losses.push(result.loss);
      options.onStep?.({ step, totalSteps: options.steps, epoch: summary.epochs, loss: result.loss, lr: result.lr });
    }
  } finally {
    sft.dispose();
  }
  summary.firstLoss = mean(losses.slice(0, tenth));
  summary.lastLoss = mean(losses.slice(-tenth));
  return summary;
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Returns a Fisher-Yates shuffle of `items` drawn from `random`. */
function shuffled<T>(items: readonly T[], random: Random): T[] {
  const result = [...items];
  for (let i = result.length - 1; i > 0; i--) {
    const j = Math.floor(random.nextFloat() * (i + 1));
    [result[i], result[j]] = [result[j]!, result[i]!];
  }
  return result;
}
