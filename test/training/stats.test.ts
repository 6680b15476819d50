import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pairwiseAccuracy, wilsonInterval } from '../../src/training/stats';

function assertClose(actual: number, expected: number, tolerance: number, label: string): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${label}: expected ${expected}, got ${actual}`);
}

describe('wilsonInterval', () => {
  test('matches hand-computed bounds', () => {
    // p = 0.5, n = 100, z = 1.96: center 0.5, half-width
    // 1.96 sqrt(0.25/100 + 1.96^2/40000) / (1 + 1.96^2/100) = 0.09617.
    const middle = wilsonInterval(0.5, 100);
    assertClose(middle.low, 0.40383, 1e-4, 'low');
    assertClose(middle.high, 0.59617, 1e-4, 'high');
    // p = 0, n = 10: low 0, high (z^2/n) / (1 + z^2/n) = 0.38415 / 1.38415 = 0.27753.
    const zero = wilsonInterval(0, 10);
    assertClose(zero.low, 0, 1e-12, 'low at 0');
    assertClose(zero.high, 0.27753, 1e-4, 'high at 0');
  });

  test('is uninformative with no trials', () => {
    assert.deepEqual(wilsonInterval(0, 0), { low: 0, high: 1 });
  });
});

describe('pairwiseAccuracy', () => {
  test('counts a tie as half a win', () => {
    const result = pairwiseAccuracy([2, 1, 3, 0], [1, 1, 4, -1]);
    assert.equal(result.n, 4);
    assert.equal(result.wins, 2);
    assert.equal(result.losses, 1);
    assert.equal(result.ties, 1);
    assert.equal(result.accuracy, 2.5 / 4);
    const interval = wilsonInterval(2.5 / 4, 4);
    assert.equal(result.low, interval.low);
    assert.equal(result.high, interval.high);
  });

  test('rejects NaN scores', () => {
    assert.throws(() => pairwiseAccuracy([NaN], [0]), /score of pair 0 is NaN/);
  });
});
