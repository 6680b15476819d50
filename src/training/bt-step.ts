/**
 * One Bradley-Terry optimizer step of a reward model on pairwise comparisons.
 */
import * as tf from '@tensorflow/tfjs';
import { bradleyTerryLoss } from './losses';
import { scoreMetrics } from './metrics';
import { MicroBatchTrainer, type MicroBatchTrainerOptions, accumulateGradients, chunk } from './gradients';
import type { PromptResponse } from './dpo-step';

/** The part of a reward model that the trainer uses; `RewardModel` in src/models provides it. */
export interface ScoringModel {
  readonly variables: tf.Variable[];
  /** One scalar reward per (prompt, response), shape [batch], differentiable in `variables`. */
  scoreTensor(batch: PromptResponse[]): tf.Tensor1D;
}

/** A comparison: `chosen` is preferred to `rejected` for `prompt`. */
export interface Comparison {
  prompt: string;
  chosen: string;
  rejected: string;
  /** Score gap the chosen response should win by; 0 when absent. */
  margin?: number;
}

export interface RewardTrainerOptions extends MicroBatchTrainerOptions {
  /** Comparisons per forward pass; a larger step is split into micro-batches whose gradients add up. */
  batchSize: number;
}

/** Loss and metrics of one reward-model step, at the weights before the update. */
export interface RewardStepResult {
  loss: number;
  /** Share of comparisons whose chosen score is strictly higher. */
  accuracy: number;
  /** Mean chosen score minus mean rejected score. */
  margin: number;
  chosenScore: number;
  rejectedScore: number;
  gradNorm: number;
  lr: number;
  /** True when the gradient was not finite and the weights were left unchanged. */
  skipped: boolean;
}

/**
 * Trains a reward model with the Bradley-Terry loss -log sigmoid(r_c - r_r - margin). Only
 * `model.variables` are updated.
 */
export class RewardTrainer extends MicroBatchTrainer {
  constructor(
    readonly model: ScoringModel,
    readonly options: RewardTrainerOptions,
  ) {
    super(model.variables, options);
  }

  /** Takes one optimizer step on the comparisons (split into micro-batches of `batchSize`). */
  async step(comparisons: readonly Comparison[]): Promise<RewardStepResult> {
    if (comparisons.length === 0) throw new RangeError('a reward-model step needs at least one comparison');
    const total = comparisons.length;

    // Scores of each micro-batch, kept out of the gradient tidy for the metrics.
    const scores: tf.Tensor1D[] = [];
    const { gradients, loss } = accumulateGradients(this.model.variables, chunk(comparisons, this.options.batchSize), (microBatch) => {
      const n = microBatch.length;
      const batch = [
        ...microBatch.map((comparison) => ({ prompt: comparison.prompt, response: comparison.chosen })),
        ...microBatch.map((comparison) => ({ prompt: comparison.prompt, response: comparison.rejected })),
      ];
      const rewards = this.model.scoreTensor(batch); // [2n]: chosen, then rejected
      scores.push(tf.keep(rewards));
      const margins = tf.tensor1d(microBatch.map((comparison) => comparison.margin ?? 0));
      const losses = bradleyTerryLoss(tf.slice(rewards, 0, n), tf.slice(rewards, n, n), margins); // [n]
      return tf.div(tf.sum(losses), total) as tf.Scalar;
    });

    const update = this.applyAccumulated(gradients);

    const chosen: number[] = [];
    const rejected: number[] = [];
    for (const rewards of scores) {
      const values = await rewards.data();
      const n = values.length / 2;
      for (let i = 0; i < n; i++) {
        chosen.push(values[i]!);
        rejected.push(values[n + i]!);
      }
    }
    tf.dispose(scores);
    const metrics = scoreMetrics(chosen, rejected);
    return {
      loss,
      accuracy: metrics.accuracy,
      margin: metrics.margin,
      chosenScore: metrics.chosenReward,
      rejectedScore: metrics.rejectedReward,
      gradNorm: update.gradNorm,
      lr: update.lr,
      skipped: update.skipped,
    };
  }
}
