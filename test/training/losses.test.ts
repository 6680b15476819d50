import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  bradleyTerryLoss,
  dpoLoss,
  dpoNllLoss,
  ipoLoss,
  maskedCrossEntropy,
  preferenceLoss,
  type PairLogprobs,
} from '../../src/training/losses';
import { dpoRewardMetrics, scoreMetrics } from '../../src/training/metrics';

/** log(1 + e^x), written out so the expected values do not reuse the code under test. */
const softplus = (x: number): number => Math.log1p(Math.exp(x));
const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

function pairLogprobs(policyChosen: number[], policyRejected: number[], referenceChosen: number[], referenceRejected: number[]): PairLogprobs {
  return {
    policyChosen: tf.tensor1d(policyChosen),
    policyRejected: tf.tensor1d(policyRejected),
    referenceChosen: tf.tensor1d(referenceChosen),
    referenceRejected: tf.tensor1d(referenceRejected),
  };
}

function values(tensor: tf.Tensor): number[] {
  const result = Array.from(tensor.dataSync());
  tensor.dispose();
  return result;
}

function assertClose(actual: number, expected: number, tolerance = 1e-5, label = ''): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${label} expected ${expected}, got ${actual}`);
}

/**
 * Gradients of the summed loss with respect to the policy's chosen and rejected log-probs,
 * with the reference log-probs fixed at the given values.
 */
function policyGradients(
  loss: (logprobs: PairLogprobs) => tf.Tensor1D,
  policyChosen: number[],
  policyRejected: number[],
  referenceChosen: number[],
  referenceRejected: number[],
): { chosen: number[]; rejected: number[] } {
  const gradient = tf.grads((chosen: tf.Tensor, rejected: tf.Tensor) =>
    tf.sum(
      loss({
        policyChosen: chosen as tf.Tensor1D,
        policyRejected: rejected as tf.Tensor1D,
        referenceChosen: tf.tensor1d(referenceChosen),
        referenceRejected: tf.tensor1d(referenceRejected),
      }),
    ),
  );
  const [chosen, rejected] = gradient([tf.tensor1d(policyChosen), tf.tensor1d(policyRejected)]);
  return { chosen: values(chosen!), rejected: values(rejected!) };
}

before(async () => {
  await tf.setBackend('cpu');
});

describe('dpoLoss', () => {
  test('matches hand-computed values', () => {
    // h = (pc - rc) - (pr - rr); loss = -log sigmoid(beta h) = softplus(-beta h), beta = 0.5.
    // Pair 1: h = (-1 - -2) - (-3 - -2) = 2, so loss = softplus(-1).
    // Pair 2: h = (-5 - -4) - (-4 - -4) = -1, so loss = softplus(0.5).
    const loss = values(dpoLoss(pairLogprobs([-1, -5], [-3, -4], [-2, -4], [-2, -4]), 0.5));
    assertClose(loss[0]!, softplus(-1), 1e-6, 'pair 1');
    assertClose(loss[1]!, softplus(0.5), 1e-6, 'pair 2');
  });

  test('equals ln 2 at zero margin', () => {
    const loss = values(dpoLoss(pairLogprobs([-7, -2], [-7, -9], [-3, -1], [-3, -8]), 0.1));
    assertClose(loss[0]!, Math.LN2, 1e-6, 'equal log-probs');
    assertClose(loss[1]!, Math.LN2, 1e-6, 'equal log-ratios');
  });

  test('label smoothing mixes both directions', () => {
    // beta h = 1: loss = (1 - eps) softplus(-1) + eps softplus(1), eps = 0.1.
    const logprobs = pairLogprobs([-1], [-3], [-2], [-2]);
    const smoothed = values(dpoLoss(logprobs, 0.5, 0.1))[0]!;
    const plain = values(dpoLoss(logprobs, 0.5, 0))[0]!;
    assertClose(smoothed, 0.9 * softplus(-1) + 0.1 * softplus(1), 1e-6, 'smoothed');
    assert.ok(smoothed > plain, `smoothing should raise the loss of a correctly ordered pair: ${smoothed} <= ${plain}`);
  });

  test('gradient raises chosen and lowers rejected', () => {
    // d loss / d pc = -beta sigmoid(-beta h); d loss / d pr = +beta sigmoid(-beta h); beta h = 1.
    const gradients = policyGradients((logprobs) => dpoLoss(logprobs, 0.5), [-1], [-3], [-2], [-2]);
    assert.ok(gradients.chosen[0]! < 0, `chosen gradient ${gradients.chosen[0]} should be negative`);
    assert.ok(gradients.rejected[0]! > 0, `rejected gradient ${gradients.rejected[0]} should be positive`);
    assertClose(gradients.chosen[0]!, -0.5 * sigmoid(-1), 1e-6, 'chosen gradient');
    assertClose(gradients.rejected[0]!, 0.5 * sigmoid(-1), 1e-6, 'rejected gradient');
  });

  test('stays finite at margins of 1000', () => {
    // beta h = +1000 gives loss ~ e^-1000 ~ 0; beta h = -1000 gives loss ~ 1000.
    const loss = values(dpoLoss(pairLogprobs([0, -2000], [-2000, 0], [0, 0], [0, 0]), 0.5, 0.1));
    assert.ok(loss.every(Number.isFinite), `losses ${loss}`);
    assertClose(loss[0]!, 0.1 * 1000, 1e-3, 'large positive margin with smoothing');
    assertClose(loss[1]!, 0.9 * 1000, 1e-3, 'large negative margin with smoothing');
    const gradients = policyGradients((logprobs) => dpoLoss(logprobs, 0.5), [0, -2000], [-2000, 0], [0, 0], [0, 0]);
    for (const g of [...gradients.chosen, ...gradients.rejected]) assert.ok(Number.isFinite(g), `gradient ${g}`);
    assertClose(gradients.chosen[1]!, -0.5, 1e-6, 'saturated chosen gradient');
  });

  test('rejects invalid hyperparameters', () => {
    const logprobs = pairLogprobs([-1], [-2], [-1], [-2]);
    assert.throws(() => dpoLoss(logprobs, 0), /beta must be a positive finite number, got 0/);
    assert.throws(() => dpoLoss(logprobs, 0.1, 0.5), /labelSmoothing must be in \[0, 0.5\)/);
    assert.throws(() => preferenceLoss('ipo', logprobs, 0.1, 0.1), /applies to the sigmoid loss only/);
    assert.throws(() => preferenceLoss('hinge' as never, logprobs, 0.1), /unknown lossType "hinge"; expected one of sigmoid, ipo/);
  });
});

describe('dpoNllLoss', () => {
  test('matches hand-computed values', () => {
    // DPO part as in dpoLoss above: softplus(-1) and softplus(0.5) at beta = 0.5.
    // NLL part: -pc / |chosen| = 1/4 and 5/2, times the weight 2.
    const loss = values(dpoNllLoss(pairLogprobs([-1, -5], [-3, -4], [-2, -4], [-2, -4]), tf.tensor1d([4, 2]), 0.5, 2));
    assertClose(loss[0]!, softplus(-1) + 2 * 0.25, 1e-6, 'pair 1');
    assertClose(loss[1]!, softplus(0.5) + 2 * 2.5, 1e-6, 'pair 2');
  });

  test('equals dpoLoss at weight 0', () => {
    const logprobs = pairLogprobs([-1, -5], [-3, -4], [-2, -4], [-2, -4]);
    const withoutNll = values(dpoNllLoss(logprobs, tf.tensor1d([4, 2]), 0.5, 0, 0.1));
    const plain = values(dpoLoss(logprobs, 0.5, 0.1));
    assert.deepEqual(withoutNll, plain);
  });

  test('gradient adds the per-token NLL slope', () => {
    // d/d pc of weight * (-pc / n) is -weight / n = -2 / 4, on top of DPO's -beta sigmoid(-beta h).
    const counts = [4];
    const gradients = policyGradients((logprobs) => dpoNllLoss(logprobs, tf.tensor1d(counts), 0.5, 2), [-1], [-3], [-2], [-2]);
    assertClose(gradients.chosen[0]!, -0.5 * sigmoid(-1) - 0.5, 1e-6, 'chosen gradient');
    assertClose(gradients.rejected[0]!, 0.5 * sigmoid(-1), 1e-6, 'rejected gradient');
  });

  test('rejects a negative or non-finite weight', () => {
    const logprobs = pairLogprobs([-1], [-2], [-1], [-2]);
    assert.throws(() => dpoNllLoss(logprobs, tf.tensor1d([1]), 0.5, -1), /nllWeight must be a finite number >= 0, got -1/);
    assert.throws(() => dpoNllLoss(logprobs, tf.tensor1d([1]), 0.5, Number.NaN), /nllWeight must be a finite number >= 0, got NaN/);
  });
});

describe('ipoLoss', () => {
  test('matches hand-computed values', () => {
    // loss = (h - 1/(2 beta))^2 with beta = 0.5, so the target is 1.
    // Pair 1: h = 2, loss = 1. Pair 2: h = -1, loss = 4. Pair 3: h = 1, loss = 0.
    const loss = values(ipoLoss(pairLogprobs([-1, -5, 0], [-3, -4, -1], [-2, -4, 0], [-2, -4, 0]), 0.5));
    assertClose(loss[0]!, 1, 1e-6, 'pair 1');
    assertClose(loss[1]!, 4, 1e-6, 'pair 2');
    assertClose(loss[2]!, 0, 1e-6, 'pair 3');
  });

  test('gradient pulls the log-ratio gap toward its target', () => {
    // d loss / d pc = 2 (h - 1/(2 beta)) and d loss / d pr = -2 (h - 1/(2 beta)), beta = 0.5.
    // Below the target (h = 0) the gradient raises chosen; above it (h = 3) it lowers chosen.
    const below = policyGradients((logprobs) => ipoLoss(logprobs, 0.5), [-2], [-2], [-2], [-2]);
    assertClose(below.chosen[0]!, -2, 1e-6, 'chosen below target');
    assertClose(below.rejected[0]!, 2, 1e-6, 'rejected below target');
    const above = policyGradients((logprobs) => ipoLoss(logprobs, 0.5), [1], [-2], [0], [0]);
    assertClose(above.chosen[0]!, 4, 1e-6, 'chosen above target');
    assertClose(above.rejected[0]!, -4, 1e-6, 'rejected above target');
  });

  test('stays finite at margins of 1000', () => {
    const loss = values(ipoLoss(pairLogprobs([0, -1000], [-1000, 0], [0, 0], [0, 0]), 0.5));
    assertClose(loss[0]!, 999 ** 2, 1e-1, 'large positive margin');
    assertClose(loss[1]!, 1001 ** 2, 1e-1, 'large negative margin');
    const gradients = policyGradients((logprobs) => ipoLoss(logprobs, 0.5), [0, -1000], [-1000, 0], [0, 0], [0, 0]);
    for (const g of [...gradients.chosen, ...gradients.rejected]) assert.ok(Number.isFinite(g), `gradient ${g}`);
  });
});

describe('bradleyTerryLoss', () => {
  test('matches hand-computed values', () => {
    // loss = -log sigmoid(rc - rr - m) = softplus(-(rc - rr - m)).
    const plain = values(bradleyTerryLoss(tf.tensor1d([2, 0]), tf.tensor1d([0.5, 1])));
    assertClose(plain[0]!, softplus(-1.5), 1e-6, 'chosen ahead');
    assertClose(plain[1]!, softplus(1), 1e-6, 'chosen behind');
    const withMargin = values(bradleyTerryLoss(tf.tensor1d([2, 2]), tf.tensor1d([0.5, 0.5]), tf.tensor1d([1, 0])));
    assertClose(withMargin[0]!, softplus(-0.5), 1e-6, 'margin 1');
    assertClose(withMargin[1]!, softplus(-1.5), 1e-6, 'margin 0');
    const scalarMargin = values(bradleyTerryLoss(tf.tensor1d([2]), tf.tensor1d([0.5]), 1));
    assertClose(scalarMargin[0]!, softplus(-0.5), 1e-6, 'scalar margin');
  });

  test('gradient raises chosen and lowers rejected', () => {
    // d loss / d rc = -sigmoid(-(rc - rr)), d loss / d rr = +sigmoid(-(rc - rr)).
    const gradient = tf.grads((chosen: tf.Tensor, rejected: tf.Tensor) =>
      tf.sum(bradleyTerryLoss(chosen as tf.Tensor1D, rejected as tf.Tensor1D)),
    );
    const [chosen, rejected] = gradient([tf.tensor1d([2]), tf.tensor1d([0.5])]);
    assertClose(values(chosen!)[0]!, -sigmoid(-1.5), 1e-6, 'chosen gradient');
    assertClose(values(rejected!)[0]!, sigmoid(-1.5), 1e-6, 'rejected gradient');
  });

  test('stays finite at margins of 1000', () => {
    const loss = values(bradleyTerryLoss(tf.tensor1d([1000, -1000]), tf.tensor1d([0, 0])));
    assertClose(loss[0]!, 0, 1e-6, 'large positive margin');
    assertClose(loss[1]!, 1000, 1e-3, 'large negative margin');
    const gradient = tf.grads((chosen: tf.Tensor, rejected: tf.Tensor) =>
      tf.sum(bradleyTerryLoss(chosen as tf.Tensor1D, rejected as tf.Tensor1D)),
    );
    const [chosen, rejected] = gradient([tf.tensor1d([1000, -1000]), tf.tensor1d([0, 0])]);
    for (const g of [...values(chosen!), ...values(rejected!)]) assert.ok(Number.isFinite(g), `gradient ${g}`);
  });
});

describe('maskedCrossEntropy', () => {
  test('averages over masked positions only', () => {
    // Position 0: logits [1, 2, 3], target 2: -log softmax = log(e + e^2 + e^3) - 3.
    // Position 1: logits [0, 0, 0], target 0: -log(1/3) = ln 3.
    // Position 2 is masked out and must not count, whatever its logits.
    const logits = tf.tensor3d([[[1, 2, 3], [0, 0, 0], [50, -50, 0]]]);
    const targets = tf.tensor2d([[2, 0, 1]], undefined, 'int32');
    const mask = tf.tensor2d([[1, 1, 0]]);
    const loss = values(maskedCrossEntropy(logits, targets, mask))[0]!;
    const first = Math.log(Math.E + Math.E ** 2 + Math.E ** 3) - 3;
    assertClose(loss, (first + Math.log(3)) / 2, 1e-5, 'mean over two positions');
  });

  test('returns zero for an empty mask', () => {
    const loss = maskedCrossEntropy(tf.zeros([1, 2, 4]) as tf.Tensor3D, tf.zeros([1, 2], 'int32') as tf.Tensor2D, tf.zeros([1, 2]) as tf.Tensor2D);
    assertClose(values(loss)[0]!, 0, 0, 'empty mask');
  });
});

describe('metrics', () => {
  test('dpoRewardMetrics reports implicit rewards', async () => {
    // rewards = beta * (policy - reference), beta = 0.5.
    // Pair 1: chosen 0.5, rejected -0.5. Pair 2: chosen -0.5, rejected 0.
    const before = tf.memory().numTensors;
    const logprobs = pairLogprobs([-1, -5], [-3, -4], [-2, -4], [-2, -4]);
    const metrics = await dpoRewardMetrics(logprobs, 0.5);
    tf.dispose(Object.values(logprobs));
    assertClose(metrics.chosenReward, 0, 1e-6, 'chosen');
    assertClose(metrics.rejectedReward, -0.25, 1e-6, 'rejected');
    assertClose(metrics.margin, 0.25, 1e-6, 'margin');
    assert.equal(metrics.accuracy, 0.5);
    assert.equal(tf.memory().numTensors, before);
  });

  test('scoreMetrics counts ties as wrong', () => {
    const metrics = scoreMetrics([1, 2, 3, 4], [0, 2, 5, 1]);
    assert.equal(metrics.accuracy, 0.5);
    assert.equal(metrics.margin, (1 + 0 - 2 + 3) / 4);
  });
});
