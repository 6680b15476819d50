/**
 * One DPO (or IPO) optimizer step of the policy against a frozen reference.
 */
import * as tf from '@tensorflow/tfjs';
import { type PairLogprobs, type PreferenceLossType, PREFERENCE_LOSS_TYPES, dpoNllLoss, preferenceLoss } from './losses';
import { dpoRewardMetrics } from './metrics';
import { ClippedAdam, type ClippedAdamOptions } from './optimizer';
import { accumulateGradients, chunk } from './gradients';

/** A prompt with one response. */
export interface PromptResponse {
  prompt: string;
  response: string;
}

/** The part of a policy that the DPO trainer uses; `Policy` in src/models provides it. */
export interface LogprobModel {
  readonly variables: tf.Variable[];
  /** Summed response-token log-probs, shape [batch], differentiable in `variables`. */
  sequenceLogprobs(batch: PromptResponse[]): tf.Tensor1D;
  /** The same values, computed without a gradient tape. */
  responseLogprobs(batch: PromptResponse[]): Promise<number[]>;
  /** Number of response tokens that `sequenceLogprobs` sums per item; needed when `nllWeight` > 0. */
  responseTokenCounts?(batch: PromptResponse[]): number[];
}

/** A preference pair for DPO, with optional precomputed reference log-probs. */
export interface DpoPair {
  /** Stable pair id; when given, the trainer caches the pair's reference log-probs under it. */
  id?: string;
  prompt: string;
  chosen: string;
  rejected: string;
  /** log ref(chosen | prompt), summed over response tokens; computed when absent. */
  referenceChosenLogprob?: number;
  /** log ref(rejected | prompt), summed over response tokens; computed when absent. */
  referenceRejectedLogprob?: number;
}

export interface DpoOptions extends ClippedAdamOptions {
  /** KL strength beta of DPO; for IPO the regularisation tau. Typical: 0.1. */
  beta: number;
  lossType: PreferenceLossType;
  /** Conservative-DPO label smoothing in [0, 0.5); sigmoid loss only. */
  labelSmoothing: number;
  /** Pairs per forward pass; a larger step is split into micro-batches whose gradients add up. */
  batchSize: number;
  /** Reference log-probs kept per pair id; the oldest are dropped first. Default 100,000. */
  referenceCacheSize?: number;
  /**
   * Weight of the chosen response's per-token NLL added to the sigmoid loss (RPO, see
   * `dpoNllLoss`). Default 0, plain DPO.
   */
  nllWeight?: number;
}

/** Loss and metrics of one DPO step; rewards are the implicit ones, beta times the log-ratio. */
export interface DpoStepResult {
  loss: number;
  /** Mean chosenReward - rejectedReward. */
  margin: number;
  /** Share of pairs with chosen reward strictly above rejected. */
  accuracy: number;
  chosenReward: number;
  rejectedReward: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  lr: number;
  /** True when the gradient was not finite and the weights were left unchanged. */
  skipped: boolean;
}

const DEFAULT_REFERENCE_CACHE_SIZE = 100_000;

/**
 * Trains a policy with DPO (Rafailov et al. 2023) or IPO (Azar et al. 2023) on preference pairs.
 * Only `policy.variables` are updated; the reference's log-probs are computed without a
 * gradient tape, so its weights are never touched.
 */
export class DpoTrainer {
  private readonly optimizer: ClippedAdam;
  private readonly referenceCache = new Map<string, { chosen: number; rejected: number }>();
  private reference: LogprobModel;

  constructor(
    readonly policy: LogprobModel,
    reference: LogprobModel,
    readonly options: DpoOptions,
  ) {
    if (!(options.beta > 0) || !Number.isFinite(options.beta)) {
      throw new RangeError(`beta must be a positive finite number, got ${options.beta}`);
    }
    if (!PREFERENCE_LOSS_TYPES.includes(options.lossType)) {
      throw new RangeError(`unknown lossType "${String(options.lossType)}"; expected one of ${PREFERENCE_LOSS_TYPES.join(', ')}`);
    }
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
      throw new RangeError(`batchSize must be a positive integer, got ${options.batchSize}`);
    }
    const nllWeight = options.nllWeight ?? 0;
    if (!(nllWeight >= 0) || !Number.isFinite(nllWeight)) {
      throw new RangeError(`nllWeight must be a finite number >= 0, got ${nllWeight}; 0 gives plain DPO`);
    }
    if (nllWeight > 0 && options.lossType !== 'sigmoid') {
      throw new RangeError(`nllWeight applies to the sigmoid loss only, got ${nllWeight} with lossType "${options.lossType}"; set it to 0`);
    }
    if (nllWeight > 0 && policy.responseTokenCounts === undefined) {
      throw new RangeError(`nllWeight ${nllWeight} needs a policy with responseTokenCounts, to normalise the NLL by length`);
    }
    assertSeparateModels(policy, reference);
    this.reference = reference;
    this.optimizer = new ClippedAdam(policy.variables, options);
  }

  /** Number of optimizer steps taken. */
  get stepCount(): number {
    return this.optimizer.step;
  }

  /** Replaces the reference (at a round boundary) and clears the cached reference log-probs. */
  setReference(reference: LogprobModel): void {
    assertSeparateModels(this.policy, reference);
    this.reference = reference;
    this.referenceCache.clear();
  }

  /**
   * Returns the reference log-probs of each pair: the values on the pair when it carries them,
   * else from the cache by pair id, else computed in micro-batches of `batchSize`.
   */
  async referenceLogprobs(pairs: readonly DpoPair[]): Promise<{ chosen: number[]; rejected: number[] }> {
    const chosen: number[] = new Array(pairs.length);
    const rejected: number[] = new Array(pairs.length);
    const missing: number[] = [];
    pairs.forEach((pair, i) => {
      const cached = pair.id === undefined ? undefined : this.referenceCache.get(pair.id);
      chosen[i] = pair.referenceChosenLogprob ?? cached?.chosen ?? NaN;
      rejected[i] = pair.referenceRejectedLogprob ?? cached?.rejected ?? NaN;
      if (Number.isNaN(chosen[i]!) || Number.isNaN(rejected[i]!)) missing.push(i);
    });

    for (const indices of chunk(missing, this.options.batchSize)) {
      const batch = indices.flatMap((i) => [
        { prompt: pairs[i]!.prompt, response: pairs[i]!.chosen },
        { prompt: pairs[i]!.prompt, response: pairs[i]!.rejected },
      ]);
      const logprobs = await this.reference.responseLogprobs(batch);
      indices.forEach((pairIndex, k) => {
        chosen[pairIndex] = logprobs[2 * k]!;
        rejected[pairIndex] = logprobs[2 * k + 1]!;
        const id = pairs[pairIndex]!.id;
        if (id !== undefined) this.remember(id, chosen[pairIndex]!, rejected[pairIndex]!);
      });
    }
    return { chosen, rejected };
  }

  /**
   * Takes one optimizer step on the given pairs (split into micro-batches of `batchSize`) and
   * returns the mean loss and the implicit-reward metrics at the weights before the update.
   */
  async step(pairs: readonly DpoPair[]): Promise<DpoStepResult> {
    if (pairs.length === 0) throw new RangeError('a DPO step needs at least one pair');
    const reference = await this.referenceLogprobs(pairs);
    const indexed = pairs.map((pair, index) => ({ pair, index }));
    const total = pairs.length;
    const { beta, lossType, labelSmoothing } = this.options;
    const nllWeight = this.options.nllWeight ?? 0;
    const chosenTokenCounts =
      nllWeight > 0 ? this.policy.responseTokenCounts!(pairs.map((pair) => ({ prompt: pair.prompt, response: pair.chosen }))) : [];

    // Policy log-probs of each micro-batch, kept out of the gradient tidy for the metrics.
    const policyLogprobs: tf.Tensor1D[] = [];
    const { gradients, loss } = accumulateGradients(this.policy.variables, chunk(indexed, this.options.batchSize), (microBatch) => {
      const n = microBatch.length;
      const sequences = [
        ...microBatch.map(({ pair }) => ({ prompt: pair.prompt, response: pair.chosen })),
        ...microBatch.map(({ pair }) => ({ prompt: pair.prompt, response: pair.rejected })),
      ];
      const logprobs = this.policy.sequenceLogprobs(sequences); // [2n]: chosen, then rejected
      policyLogprobs.push(tf.keep(logprobs));
      const pairLogprobs: PairLogprobs = {
        policyChosen: tf.slice(logprobs, 0, n),
        policyRejected: tf.slice(logprobs, n, n),
        referenceChosen: tf.tensor1d(microBatch.map(({ index }) => reference.chosen[index]!)),
        referenceRejected: tf.tensor1d(microBatch.map(({ index }) => reference.rejected[index]!)),
      };
      const losses =
        nllWeight > 0
          ? dpoNllLoss(pairLogprobs, tf.tensor1d(microBatch.map(({ index }) => chosenTokenCounts[index]!)), beta, nllWeight, labelSmoothing)
          : preferenceLoss(lossType, pairLogprobs, beta, labelSmoothing); // [n]
      return tf.div(tf.sum(losses), total) as tf.Scalar;
    });

    let update;
    try {
      update = this.optimizer.applyGradients(gradients);
    } finally {
      tf.dispose(gradients.filter((gradient): gradient is tf.Tensor => gradient !== null));
    }

    const allLogprobs = tf.tidy(() => {
      const halves = policyLogprobs.map((logprobs) => {
        const n = logprobs.shape[0] / 2;
        return [tf.slice(logprobs, 0, n), tf.slice(logprobs, n, n)];
      });
      return {
        policyChosen: tf.concat(halves.map(([chosen]) => chosen!)) as tf.Tensor1D,
        policyRejected: tf.concat(halves.map(([, rejected]) => rejected!)) as tf.Tensor1D,
        referenceChosen: tf.tensor1d(reference.chosen),
        referenceRejected: tf.tensor1d(reference.rejected),
      };
    });
    tf.dispose(policyLogprobs);
    let metrics;
    try {
      metrics = await dpoRewardMetrics(allLogprobs, beta);
    } finally {
      tf.dispose(Object.values(allLogprobs));
    }
    return { loss, ...metrics, gradNorm: update.gradNorm, lr: update.lr, skipped: update.skipped };
  }

  /** Frees the optimizer state. The policy and the reference belong to the caller. */
  dispose(): void {
    this.optimizer.dispose();
    this.referenceCache.clear();
  }

  private remember(id: string, chosen: number, rejected: number): void {
    const limit = this.options.referenceCacheSize ?? DEFAULT_REFERENCE_CACHE_SIZE;
    if (limit <= 0) return;
    this.referenceCache.delete(id);
    this.referenceCache.set(id, { chosen, rejected });
    if (this.referenceCache.size > limit) {
      const oldest = this.referenceCache.keys().next().value as string;
      this.referenceCache.delete(oldest);
    }
  }
}

/** Throws when the policy and the reference share a variable, since training one would move the other. */
function assertSeparateModels(policy: LogprobModel, reference: LogprobModel): void {
  if (policy === reference) {
    throw new RangeError('the reference must be a separate frozen copy of the policy (policy.clone()), not the policy itself');
  }
  const policyVariables = new Set(policy.variables);
  if (reference.variables.some((variable) => policyVariables.has(variable))) {
    throw new RangeError('the reference shares variables with the policy; pass a frozen copy made with policy.clone()');
  }
}
