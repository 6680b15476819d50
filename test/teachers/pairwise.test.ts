import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rankByPairwiseComparison, type OrderedComparison } from '../../src/teachers/pairwise';

const options = () => ({ concurrency: 3, signal: new AbortController().signal });

test('consistent verdicts count wins', async () => {
  // The higher index is better, whichever position it is shown in.
  const compare: OrderedComparison = async (first, second) => (first > second ? 1 : 0);
  assert.deepEqual(await rankByPairwiseComparison(['a', 'b', 'c'], compare, options()), [0, 1, 2]);
});

test('flipped verdicts become ties', async () => {
  const alwaysFirst: OrderedComparison = async () => 1;
  const alwaysSecond: OrderedComparison = async () => 0;
  assert.deepEqual(await rankByPairwiseComparison(['a', 'b', 'c'], alwaysFirst, options()), [1, 1, 1]);
  assert.deepEqual(await rankByPairwiseComparison(['a', 'b', 'c'], alwaysSecond, options()), [1, 1, 1]);
});

test('unsure order gives a partial share', async () => {
  // With 0 shown first the judge picks 0; with 1 shown first it is unsure (0.5).
  const leaning: OrderedComparison = async (first) => (first === 0 ? 1 : 0.5);
  assert.deepEqual(await rankByPairwiseComparison(['a', 'b'], leaning, options()), [0.75, 0.25]);
});

test('every ordered pair is compared once', async () => {
  const seen: string[] = [];
  const compare: OrderedComparison = async (first, second) => {
    seen.push(`${first}${second}`);
    return 1;
  };
  await rankByPairwiseComparison(['a', 'b', 'a', 'c'], compare, options());
  // Indices 0 and 2 hold the same text, so that pair is a tie without a comparison.
  assert.deepEqual(seen.sort(), ['01', '03', '10', '12', '13', '21', '23', '30', '31', '32']);
});

test('first error rejects and aborts the rest', async () => {
  const failure = new Error('judge down');
  const aborted: boolean[] = [];
  const compare: OrderedComparison = (first, _second, signal) =>
    first === 0
      ? Promise.reject(failure)
      : new Promise((_resolve, reject) => {
          signal.addEventListener('abort', () => {
            aborted.push(true);
            reject(signal.reason);
          });
        });
  await assert.rejects(
    rankByPairwiseComparison(['a', 'b', 'c'], compare, { concurrency: 6, signal: new AbortController().signal }),
    (error: unknown) => error === failure,
  );
  assert.ok(aborted.length > 0, 'no comparison in flight was aborted');
});

test('aborted signal rejects before any comparison', async () => {
  const controller = new AbortController();
  controller.abort(new Error('stop'));
  let calls = 0;
  const compare: OrderedComparison = async () => {
    calls++;
    return 1;
  };
  await assert.rejects(rankByPairwiseComparison(['a', 'b'], compare, { concurrency: 1, signal: controller.signal }), /stop/);
  assert.equal(calls, 0);
});
