import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Adam, ClippedAdam, clipByGlobalNorm, learningRateAt } from '../../src/training/optimizer';

function assertClose(actual: number, expected: number, tolerance: number, label: string): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${label}: expected ${expected}, got ${actual}`);
}

before(async () => {
  await tf.setBackend('cpu');
});

describe('learningRateAt', () => {
  test('warms up linearly then stays constant', () => {
    const schedule = { lr: 1e-3, warmupSteps: 4 };
    assertClose(learningRateAt(0, schedule), 0.25e-3, 1e-12, 'step 0');
    assertClose(learningRateAt(1, schedule), 0.5e-3, 1e-12, 'step 1');
    assertClose(learningRateAt(3, schedule), 1e-3, 1e-12, 'step 3');
    assertClose(learningRateAt(100, schedule), 1e-3, 1e-12, 'step 100');
    assertClose(learningRateAt(0, { lr: 1e-3, warmupSteps: 0 }), 1e-3, 1e-12, 'no warm-up');
  });

  test('cosine decays to the floor', () => {
    const schedule = { lr: 1, warmupSteps: 2, decay: 'cosine' as const, totalSteps: 12, minLr: 0.1 };
    assertClose(learningRateAt(2, schedule), 1, 1e-12, 'end of warm-up');
    // Halfway through the 10 decay steps: minLr + (lr - minLr) / 2.
    assertClose(learningRateAt(7, schedule), 0.55, 1e-12, 'halfway');
    assertClose(learningRateAt(12, schedule), 0.1, 1e-12, 'end');
    assertClose(learningRateAt(50, schedule), 0.1, 1e-12, 'past the end');
  });
});

describe('clipByGlobalNorm', () => {
  test('scales to the threshold across tensors', () => {
    // Global norm of [3] and [4] is 5; clipping to 1 scales both by 1/5.
    const gradients = [tf.tensor1d([3]), tf.tensor1d([4])];
    const { clipped, norm } = clipByGlobalNorm(gradients, 1);
    assertClose(norm, 5, 1e-6, 'norm');
    assertClose(clipped[0]!.dataSync()[0]!, 0.6, 1e-6, 'first');
    assertClose(clipped[1]!.dataSync()[0]!, 0.8, 1e-6, 'second');
    tf.dispose([...gradients, ...clipped]);
  });

  test('leaves small gradients unchanged', () => {
    const gradients = [tf.tensor1d([0.3, 0.4])];
    const { clipped, norm } = clipByGlobalNorm(gradients, 1);
    assertClose(norm, 0.5, 1e-6, 'norm');
    assert.deepEqual(Array.from(clipped[0]!.dataSync()), Array.from(gradients[0]!.dataSync()));
    tf.dispose([...gradients, ...clipped]);
  });
});

describe('Adam', () => {
  test('matches tf.train.adam on a quadratic', () => {
    // Minimise sum((w - target)^2) for 5 steps with both optimizers from the same start.
    const target = tf.tensor1d([1, -2, 3]);
    const ours = tf.variable(tf.tensor1d([0.5, 0.5, 0.5]));
    const theirs = tf.variable(tf.tensor1d([0.5, 0.5, 0.5]));
    const adam = new Adam([ours], { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
    const reference = tf.train.adam(0.1, 0.9, 0.999, 1e-8);
    for (let step = 0; step < 5; step++) {
      const { grads } = tf.variableGrads(() => tf.sum(tf.square(tf.sub(ours, target))) as tf.Scalar, [ours]);
      adam.applyGradients([grads[ours.name]!], 0.1);
      tf.dispose(grads);
      reference.minimize(() => tf.sum(tf.square(tf.sub(theirs, target))) as tf.Scalar, false, [theirs]);
    }
    const actual = Array.from(ours.dataSync());
    const expected = Array.from(theirs.dataSync());
    actual.forEach((value, i) => assertClose(value, expected[i]!, 1e-5, `weight ${i}`));
    assert.equal(adam.step, 5);
    adam.dispose();
    reference.dispose();
    tf.dispose([target, ours, theirs]);
  });

  test('leaves variables without a gradient alone', () => {
    const touched = tf.variable(tf.tensor1d([1]));
    const untouched = tf.variable(tf.tensor1d([1]));
    const adam = new Adam([touched, untouched]);
    const gradient = tf.tensor1d([1]);
    adam.applyGradients([gradient, null], 0.1);
    assert.ok(touched.dataSync()[0]! < 1, 'the variable with a gradient should move');
    assert.equal(untouched.dataSync()[0], 1);
    adam.dispose();
    tf.dispose([touched, untouched, gradient]);
  });
});

describe('ClippedAdam', () => {
  test('skips a step with a NaN gradient', () => {
    const weight = tf.variable(tf.tensor1d([1]));
    const optimizer = new ClippedAdam([weight], { lr: 0.1, warmupSteps: 0, clipNorm: 1 });
    const gradient = tf.tensor1d([NaN]);
    const result = optimizer.applyGradients([gradient]);
    assert.equal(result.skipped, true);
    assert.equal(weight.dataSync()[0], 1);
    assert.equal(optimizer.step, 0);
    optimizer.dispose();
    tf.dispose([weight, gradient]);
  });

  test('reports the norm and the scheduled rate', () => {
    const weight = tf.variable(tf.tensor1d([1, 1]));
    const optimizer = new ClippedAdam([weight], { lr: 0.1, warmupSteps: 2, clipNorm: 1 });
    const gradient = tf.tensor1d([3, 4]);
    const first = optimizer.applyGradients([gradient]);
    const second = optimizer.applyGradients([gradient]);
    assertClose(first.gradNorm, 5, 1e-6, 'norm');
    assertClose(first.lr, 0.05, 1e-12, 'first rate');
    assertClose(second.lr, 0.1, 1e-12, 'second rate');
    optimizer.dispose();
    tf.dispose([weight, gradient]);
  });

  test('rejects a cosine schedule without totalSteps', () => {
    assert.throws(
      () => new ClippedAdam([], { lr: 0.1, warmupSteps: 0, clipNorm: 1, decay: 'cosine' }),
      /cosine schedule needs totalSteps/,
    );
  });
});
