/**
 * The epoch loop that fits a reward model on preference pairs with the Bradley-Terry loss, as
 * `tsalign rm fit` runs it.
 */
import { Random, deriveSeed } from '../models/random';
import { type Comparison, RewardTrainer, type ScoringModel } from './bt-step';
import { type RewardScorer, evaluateRewardModel } from './reward-eval';
import type { PairwiseAccuracy } from './stats';

export interface RewardFitOptions {
  epochs: number;
  /** Comparisons per optimizer step. */
  batchSize: number;
  /** Comparisons per forward pass; default `batchSize`. */
  microBatchSize?: number;
  lr: number;
  /** Linear warm-up steps; default 5% of all steps. */
  warmupSteps?: number;
  /** After warm-up: 'cosine' decays to 0 at the last step, 'constant' keeps lr. */
  schedule: 'constant' | 'cosine';
  clipNorm: number;
  weightDecay?: number;
  /** Seeds the per-epoch shuffle of the training pairs. */
  seed: number;
  /** Called after every optimizer step and once more at the end of each epoch. */
  onProgress?: (progress: FitProgress) => void;
}

/** Progress of a running fit. */
export interface FitProgress {
  step: number;
  totalSteps: number;
  /** 1-based epoch. */
  epoch: number;
  /** Mean training loss over the steps of the current epoch so far. */
  loss: number;
  /** Share of training comparisons ordered correctly in the current epoch so far, before each update. */
  trainAccuracy: number;
  lr: number;
  /** True on the call at the end of an epoch, after validation. */
  epochEnd: boolean;
  /** Validation result, on the end-of-epoch call when there are validation pairs. */
  validation?: PairwiseAccuracy;
}

/** Outcome of a fit. */
export interface FitSummary {
  steps: number;
  epochs: number;
  /** Mean training loss of the last epoch. */
  loss: number;
  trainAccuracy: number;
  /** Steps whose gradient was not finite and were skipped. */
  skippedSteps: number;
  /** Validation result after the last epoch; absent without validation pairs. */
  validation?: PairwiseAccuracy;
}

/**
 * Trains `model` for `epochs` passes over `train`, reshuffled each epoch with a seeded
 * generator, and evaluates it on `validation` at the end of each epoch.
 */
export async function fitRewardModel(
  model: ScoringModel & RewardScorer,
  train: readonly Comparison[],
  validation: readonly Comparison[],
  options: RewardFitOptions,
): Promise<FitSummary> {
  if (train.length === 0) throw new RangeError('no training pairs; lower --holdout or add pairs');
  if (!Number.isInteger(options.epochs) || options.epochs < 1) {
    throw new RangeError(`epochs must be a positive integer, got ${options.epochs}`);
  }
  const stepsPerEpoch = Math.ceil(train.length / options.batchSize);
  const totalSteps = stepsPerEpoch * options.epochs;
  const trainer = new RewardTrainer(model, {
    lr: options.lr,
    warmupSteps: options.warmupSteps ?? Math.round(0.05 * totalSteps),
    decay: options.schedule,
    totalSteps,
    clipNorm: options.clipNorm,
    weightDecay: options.weightDecay ?? 0,
    batchSize: options.microBatchSize ?? options.batchSize,
  });

  const summary: FitSummary = { steps: 0, epochs: options.epochs, loss: NaN, trainAccuracy: NaN, skippedSteps: 0 };
  try {
    for (let epoch = 1; epoch <= options.epochs; epoch++) {
      const order = shuffled(train, new Random(deriveSeed(options.seed, 'shuffle', epoch)));
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let lr = options.lr;
      for (let start = 0; start < order.length; start += options.batchSize) {
        const batch = order.slice(start, start + options.batchSize);
        const result = await trainer.step(batch);
        summary.steps++;
        if (result.skipped) summary.skippedSteps++;
        lossSum += result.loss * batch.length;
        correct += result.accuracy * batch.length;
        seen += batch.length;
        lr = result.lr;
        const progress = { step: summary.steps, totalSteps, epoch, loss: lossSum / seen, trainAccuracy: correct / seen, lr };
        options.onProgress?.({ ...progress, epochEnd: false });
      }
      summary.loss = lossSum / seen;
      summary.trainAccuracy = correct / seen;
      if (validation.length > 0) summary.validation = await evaluateRewardModel(model, validation);
      options.onProgress?.({
        step: summary.steps,
        totalSteps,
        epoch,
        loss: summary.loss,
        trainAccuracy: summary.trainAccuracy,
        lr,
        epochEnd: true,
        ...(summary.validation === undefined ? {} : { validation: summary.validation }),
      });
    }
  } finally {
    trainer.dispose();
  }
  return summary;
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
