/**
 * Metrics of a preference batch, kept apart from the losses so that the loss functions stay
 * pure math. Names follow the usual slash keys of DPO trainers (rewards/chosen,
 * rewards/rejected, rewards/margins, rewards/accuracies), here as camel-case fields.
 */
import * as tf from '@tensorflow/tfjs';
import type { PairLogprobs } from './losses';

/** Batch means of the implicit DPO rewards and of the preference accuracy. */
export interface PreferenceMetrics {
  /** Mean of beta * (log pi(y_c|x) - log ref(y_c|x)). */
  chosenReward: number;
  /** Mean of beta * (log pi(y_r|x) - log ref(y_r|x)). */
  rejectedReward: number;
  /** Mean of chosenReward - rejectedReward per pair. */
  margin: number;
  /** Share of pairs whose chosen reward is strictly above the rejected one; ties count 0. */
  accuracy: number;
}

/**
 * Computes the implicit-reward metrics of DPO (Rafailov et al. 2023, section 5: the reward
 * implied by a policy is beta times its log-ratio to the reference). Reads the values back
 * from the backend and disposes every intermediate tensor.
 */
export async function dpoRewardMetrics(logprobs: PairLogprobs, beta: number): Promise<PreferenceMetrics> {
  const [chosen, rejected] = tf.tidy(() => [
    tf.mul(tf.sub(logprobs.policyChosen, logprobs.referenceChosen), beta) as tf.Tensor1D,
    tf.mul(tf.sub(logprobs.policyRejected, logprobs.referenceRejected), beta) as tf.Tensor1D,
  ]);
  try {
    return scoreMetrics(await chosen.data(), await rejected.data());
  } finally {
    chosen.dispose();
    rejected.dispose();
  }
}

/** Computes the same metrics from the scores a reward model gave the chosen and rejected responses. */
export function scoreMetrics(chosen: ArrayLike<number>, rejected: ArrayLike<number>): PreferenceMetrics {
  if (chosen.length !== rejected.length) {
    throw new RangeError(`chosen and rejected must have the same length, got ${chosen.length} and ${rejected.length}`);
  }
  const n = chosen.length;
  if (n === 0) return { chosenReward: 0, rejectedReward: 0, margin: 0, accuracy: 0 };
  let chosenSum = 0;
  let rejectedSum = 0;
  let wins = 0;
  for (let i = 0; i < n; i++) {
    chosenSum += chosen[i]!;
    rejectedSum += rejected[i]!;
    if (chosen[i]! > rejected[i]!) wins++;
  }
  return {
    chosenReward: chosenSum / n,
    rejectedReward: rejectedSum / n,
    margin: (chosenSum - rejectedSum) / n,
    accuracy: wins / n,
  };
}
