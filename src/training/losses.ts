/**
 * Training losses of tsalign: DPO, IPO and DPO with a chosen-response NLL term (RPO) for the
 * policy, Bradley-Terry for the student reward model, and token-level cross-entropy for
 * supervised warm-up.
 *
 * Each preference loss is a pure function of summed sequence log-probabilities (or reward
 * scores), token counts where it normalises by length, and its hyperparameters, and returns the
 * per-example losses, shape [batch]; the trainers average them. Every log-sigmoid is computed as
 * -softplus(-x) (see `logSigmoid`), so the losses and their gradients stay finite at margins of
 * any size.
 * Metrics live in `metrics.ts`, never here.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Returns log sigmoid(x) = -softplus(-x), elementwise, stable for any x.
 *
 * `tf.logSigmoid` computes the same value, but in tfjs 4.22 its custom gradient reads its input
 * without saving it, so a gradient taken after a `tf.tidy` has freed that input fails with
 * "Cannot read properties of undefined (reading 'backend')". The registered gradient of
 * softplus saves what it needs.
 */
export function logSigmoid(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.neg(tf.softplus(tf.neg(x))));
}

/** The preference losses a DPO trainer can use. */
export type PreferenceLossType = 'sigmoid' | 'ipo';
export const PREFERENCE_LOSS_TYPES: readonly PreferenceLossType[] = ['sigmoid', 'ipo'];

/** Summed response log-probabilities of one batch of pairs, each of shape [batch]. */
export interface PairLogprobs {
  policyChosen: tf.Tensor1D;
  policyRejected: tf.Tensor1D;
  referenceChosen: tf.Tensor1D;
  referenceRejected: tf.Tensor1D;
}

/**
 * Returns h = (log pi(y_c|x) - log ref(y_c|x)) - (log pi(y_r|x) - log ref(y_r|x)), shape
 * [batch]: the difference of the chosen and rejected log-ratios that DPO and IPO both use.
 */
export function logRatioDifference(logprobs: PairLogprobs): tf.Tensor1D {
  return tf.tidy(() => {
    const chosenLogRatio = tf.sub(logprobs.policyChosen, logprobs.referenceChosen);
    const rejectedLogRatio = tf.sub(logprobs.policyRejected, logprobs.referenceRejected);
    return tf.sub(chosenLogRatio, rejectedLogRatio) as tf.Tensor1D;
  });
}

/**
 * Returns the DPO loss per pair, shape [batch].
 *
 * Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a
 * Reward Model", eq. 7: loss = -log sigmoid(beta * h), with h from `logRatioDifference`.
 * With label smoothing eps > 0 it is the conservative DPO variant, which assumes each label is
 * flipped with probability eps: loss = -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h).
 * At eps = 0 this is eq. 7 exactly. eps must lie in [0, 0.5).
 */
export function dpoLoss(logprobs: PairLogprobs, beta: number, labelSmoothing = 0): tf.Tensor1D {
  assertPositive('beta', beta);
  if (!(labelSmoothing >= 0 && labelSmoothing < 0.5)) {
    throw new RangeError(`labelSmoothing must be in [0, 0.5), got ${labelSmoothing}; 0 disables it`);
  }
  return tf.tidy(() => {
    const logits = tf.mul(logRatioDifference(logprobs), beta);
    const agree = tf.mul(logSigmoid(logits), -(1 - labelSmoothing));
    if (labelSmoothing === 0) return agree as tf.Tensor1D;
    const disagree = tf.mul(logSigmoid(tf.neg(logits)), -labelSmoothing);
    return tf.add(agree, disagree) as tf.Tensor1D;
  });
}

/**
 * Returns the IPO loss per pair, shape [batch].
 *
 * Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human
 * Preferences", the empirical IPO loss: (h - 1/(2 tau))^2, with h from
 * `logRatioDifference` and the regularisation strength tau passed as `beta`. It regresses the
 * log-ratio difference to a finite target instead of pushing it to infinity as DPO does.
 */
export function ipoLoss(logprobs: PairLogprobs, beta: number): tf.Tensor1D {
  assertPositive('beta', beta);
  return tf.tidy(() => {
    const target = 1 / (2 * beta);
    return tf.square(tf.sub(logRatioDifference(logprobs), target)) as tf.Tensor1D;
  });
}

/** Returns the per-pair loss of the given preference loss type, shape [batch]. */
export function preferenceLoss(
  lossType: PreferenceLossType,
  logprobs: PairLogprobs,
  beta: number,
  labelSmoothing = 0,
): tf.Tensor1D {
  switch (lossType) {
    case 'sigmoid':
      return dpoLoss(logprobs, beta, labelSmoothing);
    case 'ipo':
      if (labelSmoothing !== 0) {
        throw new RangeError(`labelSmoothing applies to the sigmoid loss only, got ${labelSmoothing} with lossType "ipo"; set it to 0`);
      }
      return ipoLoss(logprobs, beta);
    default:
      throw new RangeError(`unknown lossType "${String(lossType)}"; expected one of ${PREFERENCE_LOSS_TYPES.join(', ')}`);
  }
}

/**
 * Returns the DPO loss plus a weighted negative log-likelihood of the chosen response, per pair,
 * shape [batch]: dpoLoss(logprobs, beta, eps) + nllWeight * (-log pi(y_c|x) / |y_c|).
 *
 * Pang et al. 2024, "Iterative Reasoning Preference Optimization" (RPO), train on
 * L_DPO+NLL = L_NLL + alpha * L_DPO, where L_NLL is the chosen sequence's negative
 * log-likelihood divided by its length. The NLL term keeps the chosen response likely, which
 * plain DPO lets fall as long as the rejected one falls faster. Here the weight sits on the NLL
 * term (nllWeight = 1/alpha, the loss scaled by 1/alpha), so nllWeight = 0 is plain DPO, and the
 * length is the number of scored response tokens, EOS included, since prompt tokens are not
 * scored. `chosenTokenCounts` holds |y_c| per pair (each at least 1).
 */
export function dpoNllLoss(
  logprobs: PairLogprobs,
  chosenTokenCounts: tf.Tensor1D,
  beta: number,
  nllWeight: number,
  labelSmoothing = 0,
): tf.Tensor1D {
  if (!(nllWeight >= 0) || !Number.isFinite(nllWeight)) {
    throw new RangeError(`nllWeight must be a finite number >= 0, got ${nllWeight}; 0 gives plain DPO`);
  }
  return tf.tidy(() => {
    const dpo = dpoLoss(logprobs, beta, labelSmoothing);
    if (nllWeight === 0) return dpo;
    const chosenNll = tf.div(tf.neg(logprobs.policyChosen), tf.maximum(chosenTokenCounts, 1)); // [batch]
    return tf.add(dpo, tf.mul(chosenNll, nllWeight)) as tf.Tensor1D;
  });
}

/**
 * Returns the Bradley-Terry pairwise reward loss per comparison, shape [batch]:
 * -log sigmoid(r_c - r_r - m).
 *
 * Under the Bradley-Terry model (Bradley and Terry 1952) P(chosen beats rejected) =
 * sigmoid(r_c - r_r), and this is its negative log-likelihood, the reward-model loss of Ouyang
 * et al. 2022 (InstructGPT). The optional margin m (one value per comparison, or one number for
 * all) keeps the loss high until the chosen score leads by more than m, as in the Llama 2 reward
 * model (Touvron et al. 2023). Without a margin m = 0.
 */
export function bradleyTerryLoss(
  chosenScores: tf.Tensor1D,
  rejectedScores: tf.Tensor1D,
  margin?: tf.Tensor1D | number,
): tf.Tensor1D {
  return tf.tidy(() => {
    let difference = tf.sub(chosenScores, rejectedScores);
    if (margin !== undefined) difference = tf.sub(difference, margin);
    return tf.neg(logSigmoid(difference)) as tf.Tensor1D;
  });
}

/**
 * Returns the mean token cross-entropy over the positions where `mask` is 1, a scalar.
 *
 * logits: [batch, time, vocab]; targets: [batch, time] int32 token ids (the next token at each
 * position); mask: [batch, time] float32, 1 on response tokens and 0 on prompt and padding.
 * A batch whose mask is all zero gives 0 rather than NaN.
 */
export function maskedCrossEntropy(logits: tf.Tensor3D, targets: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const [batch, time, vocab] = logits.shape;
    const flatLogits = tf.reshape(logits, [batch * time, vocab]); // [batch*time, vocab]
    const logProbs = tf.logSoftmax(flatLogits); // [batch*time, vocab]
    const oneHot = tf.oneHot(tf.reshape(tf.cast(targets, 'int32'), [batch * time]), vocab); // [batch*time, vocab]
    const targetLogProbs = tf.sum(tf.mul(logProbs, oneHot), 1); // [batch*time]
    const flatMask = tf.reshape(mask, [batch * time]);
    const total = tf.neg(tf.sum(tf.mul(targetLogProbs, flatMask)));
    const count = tf.maximum(tf.sum(flatMask), 1);
    return tf.div(total, count) as tf.Scalar;
  });
}

function assertPositive(name: string, value: number): void {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive finite number, got ${value}`);
  }
}
