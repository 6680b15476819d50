/**
 * Gradient accumulation over micro-batches, shared by the trainers.
 */
import * as tf from '@tensorflow/tfjs';
import { ClippedAdam, type ClippedAdamOptions, type OptimizerStepResult } from './optimizer';

/** Summed gradients and loss over all micro-batches of one optimizer step. */
export interface AccumulatedGradients {
  /** One gradient per variable, in the order given; null where the loss does not reach a variable. */
  gradients: Array<tf.Tensor | null>;
  /** Sum of the micro-batch losses; with shares as below, the mean loss of the batch. */
  loss: number;
}

/**
 * Runs `lossOf` on each micro-batch under `tf.variableGrads` and sums the gradients, so a batch
 * larger than what fits in memory still makes one optimizer step. `lossOf` must return the
 * micro-batch's share of the batch loss (for a mean: the sum of its per-example losses divided
 * by the size of the whole batch), so that the sums are the batch loss and its gradient. The
 * caller disposes the returned gradients.
 */
export function accumulateGradients<T>(
  variables: readonly tf.Variable[],
  microBatches: readonly T[][],
  lossOf: (microBatch: T[]) => tf.Scalar,
): AccumulatedGradients {
  let sums: Array<tf.Tensor | null> = variables.map(() => null);
  let loss = 0;
  for (const microBatch of microBatches) {
    const { value, grads } = tf.variableGrads(() => lossOf(microBatch), variables as tf.Variable[]);
    loss += value.dataSync()[0]!;
    value.dispose();
    sums = variables.map((variable, i) => {
      const gradient = grads[variable.name] ?? null;
      const previous = sums[i] ?? null;
      if (gradient === null) return previous;
      if (previous === null) return gradient;
      const sum = tf.add(previous, gradient);
      tf.dispose([previous, gradient]);
      return sum;
    });
  }
  return { gradients: sums, loss };
}

/** Splits items into consecutive chunks of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size must be a positive integer, got ${size}`);
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
}

/** Options of a trainer that splits each optimizer step into micro-batches. */
export interface MicroBatchTrainerOptions extends ClippedAdamOptions {
  /** Items per forward pass; a larger step is split into micro-batches whose gradients add up. */
  batchSize: number;
}

/**
 * Base of the trainers that sum micro-batch gradients with `accumulateGradients` and take one
 * `ClippedAdam` step on them. It checks `batchSize` and owns the optimizer state.
 */
export abstract class MicroBatchTrainer {
  private readonly optimizer: ClippedAdam;

  protected constructor(variables: tf.Variable[], options: MicroBatchTrainerOptions) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
      throw new RangeError(`batchSize must be a positive integer, got ${options.batchSize}`);
    }
    this.optimizer = new ClippedAdam(variables, options);
  }

  /** Number of optimizer steps taken. */
  get stepCount(): number {
    return this.optimizer.step;
  }

  /** Takes one optimizer step on the summed gradients, then disposes them, even when the step throws. */
  protected applyAccumulated(gradients: Array<tf.Tensor | null>): OptimizerStepResult {
    try {
      return this.optimizer.applyGradients(gradients);
    } finally {
      tf.dispose(gradients.filter((gradient): gradient is tf.Tensor => gradient !== null));
    }
  }

  /** Frees the optimizer state. The model belongs to the caller. */
  dispose(): void {
    this.optimizer.dispose();
  }
}
