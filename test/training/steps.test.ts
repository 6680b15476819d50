import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ByteTokenizer } from '../../src/models/byte-tokenizer';
import { Policy } from '../../src/models/policy';
import { RewardModel } from '../../src/models/reward-model';
import { Random } from '../../src/models/random';
import { DpoTrainer, RewardTrainer, SftTrainer, buildSftBatch, type DpoPair } from '../../src/training/steps';
import { pairwiseAccuracy } from '../../src/training/stats';

const tokenizer = new ByteTokenizer();
const tinyConfig = { vocabSize: tokenizer.vocabSize, contextLength: 24, dModel: 16, nHeads: 2, nLayers: 1, dFf: 32 };
const optimization = { lr: 1e-2, warmupSteps: 0, clipNorm: 1, batchSize: 4 };

const pairs: DpoPair[] = [
  { id: 'p1', prompt: 'Q: 2+2?', chosen: ' 4', rejected: ' 5' },
  { id: 'p2', prompt: 'Q: sky?', chosen: ' blue', rejected: ' green' },
];

function snapshot(variables: readonly tf.Variable[]): Float32Array[] {
  return variables.map((variable) => variable.dataSync().slice() as Float32Array);
}

function sameValues(a: readonly Float32Array[], b: readonly Float32Array[]): boolean {
  return a.every((array, i) => array.every((value, j) => value === b[i]![j]));
}

/** Mean over pairs of (log pi(c) - log ref(c)) - (log pi(r) - log ref(r)). */
async function meanLogRatioGap(policy: Policy, reference: Policy, batch: readonly DpoPair[]): Promise<number> {
  const sequences = batch.flatMap((pair) => [
    { prompt: pair.prompt, response: pair.chosen },
    { prompt: pair.prompt, response: pair.rejected },
  ]);
  const policyLogprobs = await policy.responseLogprobs(sequences);
  const referenceLogprobs = await reference.responseLogprobs(sequences);
  let sum = 0;
  for (let i = 0; i < batch.length; i++) {
    const chosen = policyLogprobs[2 * i]! - referenceLogprobs[2 * i]!;
    const rejected = policyLogprobs[2 * i + 1]! - referenceLogprobs[2 * i + 1]!;
    sum += chosen - rejected;
  }
  return sum / batch.length;
}

/** Separable comparisons: chosen responses start with "+", rejected ones with "-". */
function separableComparisons(count: number, seed: number): Array<{ prompt: string; chosen: string; rejected: string }> {
  const random = new Random(seed);
  const letters = () => Array.from({ length: 3 }, () => String.fromCharCode(97 + Math.floor(random.nextFloat() * 26))).join('');
  return Array.from({ length: count }, () => ({ prompt: letters(), chosen: `+${letters()}`, rejected: `-${letters()}` }));
}

before(async () => {
  await tf.setBackend('cpu');
});

describe('DpoTrainer', () => {
  for (const lossType of ['sigmoid', 'ipo'] as const) {
    test(`${lossType} step raises the log-ratio margin`, async () => {
      const policy = Policy.create(tinyConfig, tokenizer, 1);
      const reference = policy.clone();
      const referenceBefore = snapshot(reference.variables);
      const policyBefore = snapshot(policy.variables);
      const trainer = new DpoTrainer(policy, reference, { ...optimization, beta: 0.1, lossType, labelSmoothing: 0 });

      const gapBefore = await meanLogRatioGap(policy, reference, pairs);
      const result = await trainer.step(pairs);
      const gapAfter = await meanLogRatioGap(policy, reference, pairs);

      assert.ok(Math.abs(gapBefore) < 1e-5, `policy and reference start equal, gap ${gapBefore}`);
      assert.ok(gapAfter > gapBefore, `gap should grow: ${gapBefore} -> ${gapAfter}`);
      assert.ok(sameValues(snapshot(reference.variables), referenceBefore), 'the reference weights changed');
      assert.ok(!sameValues(snapshot(policy.variables), policyBefore), 'the policy weights did not change');
      // At equal weights every implicit reward is 0, so the first loss is ln 2 (sigmoid) or (1/(2 beta))^2 (IPO).
      const expectedLoss = lossType === 'sigmoid' ? Math.LN2 : (1 / (2 * 0.1)) ** 2;
      assert.ok(Math.abs(result.loss - expectedLoss) < 1e-4, `first loss ${result.loss}, expected ${expectedLoss}`);
      assert.ok(result.gradNorm > 0, `gradNorm ${result.gradNorm}`);
      assert.ok(Number.isFinite(result.gradNorm), `gradNorm ${result.gradNorm}`);
      assert.equal(result.skipped, false);

      trainer.dispose();
      policy.dispose();
      reference.dispose();
    });
  }

  test('uses precomputed reference log-probs', async () => {
    const policy = Policy.create(tinyConfig, tokenizer, 1);
    const reference = policy.clone();
    const trainer = new DpoTrainer(policy, reference, { ...optimization, beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0 });
    // With the reference claiming chosen is 10 nats likelier than it is, h = -10 for an equal policy:
    // rewards/chosen = beta (pi_c - ref_c) = -1.
    const computed = await trainer.referenceLogprobs(pairs);
    const shifted = pairs.map((pair, i) => ({
      ...pair,
      id: undefined,
      referenceChosenLogprob: computed.chosen[i]! + 10,
      referenceRejectedLogprob: computed.rejected[i]!,
    }));
    const result = await trainer.step(shifted);
    assert.ok(Math.abs(result.chosenReward - -1) < 1e-4, `chosenReward ${result.chosenReward}`);
    assert.ok(Math.abs(result.rejectedReward) < 1e-4, `rejectedReward ${result.rejectedReward}`);
    trainer.dispose();
    policy.dispose();
    reference.dispose();
  });

  test('NLL weight raises the chosen log-prob', async () => {
    const policy = Policy.create(tinyConfig, tokenizer, 1);
    const reference = policy.clone();
    const nllWeight = 5;
    const trainer = new DpoTrainer(policy, reference, { ...optimization, beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0, nllWeight });
    const chosen = pairs.map((pair) => ({ prompt: pair.prompt, response: pair.chosen }));
    const counts = policy.responseTokenCounts(chosen);
    const before = await policy.responseLogprobs(chosen);

    const result = await trainer.step(pairs);
    const after = await policy.responseLogprobs(chosen);

    // " 4" and " blue" are 2 and 5 bytes, each plus EOS.
    assert.deepEqual(counts, [3, 6]);
    // At equal weights the DPO part is ln 2; the NLL part is the mean of -log pi(chosen) / |chosen|.
    const meanNll = (-before[0]! / counts[0]! - before[1]! / counts[1]!) / 2;
    const expectedLoss = Math.LN2 + nllWeight * meanNll;
    assert.ok(Math.abs(result.loss - expectedLoss) < 1e-3, `first loss ${result.loss}, expected ${expectedLoss}`);
    for (let i = 0; i < pairs.length; i++) {
      assert.ok(after[i]! > before[i]!, `chosen log-prob of pair ${i} should rise: ${before[i]} -> ${after[i]}`);
    }
    trainer.dispose();
    policy.dispose();
    reference.dispose();
  });

  test('rejects an NLL weight with IPO', () => {
    const policy = Policy.create(tinyConfig, tokenizer, 1);
    const reference = policy.clone();
    assert.throws(
      () => new DpoTrainer(policy, reference, { ...optimization, beta: 0.1, lossType: 'ipo', labelSmoothing: 0, nllWeight: 1 }),
      /nllWeight applies to the sigmoid loss only, got 1 with lossType "ipo"/,
    );
    policy.dispose();
    reference.dispose();
  });

  test('rejects the policy as its own reference', () => {
    const policy = Policy.create(tinyConfig, tokenizer, 1);
    assert.throws(
      () => new DpoTrainer(policy, policy, { ...optimization, beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0 }),
      /reference must be a separate frozen copy/,
    );
    policy.dispose();
  });
});

describe('RewardTrainer', () => {
  test('learns a separable set above 90%', async () => {
    const model = RewardModel.create(tinyConfig, tokenizer, 3);
    const trainer = new RewardTrainer(model, { lr: 3e-3, warmupSteps: 5, clipNorm: 1, batchSize: 16 });
    const train = separableComparisons(64, 11);
    const heldOut = separableComparisons(64, 12);
    for (let epoch = 0; epoch < 5; epoch++) {
      for (let start = 0; start < train.length; start += 16) await trainer.step(train.slice(start, start + 16));
    }
    const chosen = await model.score(heldOut.map((c) => ({ prompt: c.prompt, response: c.chosen })));
    const rejected = await model.score(heldOut.map((c) => ({ prompt: c.prompt, response: c.rejected })));
    const accuracy = pairwiseAccuracy(chosen, rejected).accuracy;
    assert.ok(accuracy > 0.9, `held-out accuracy ${accuracy} after ${trainer.stepCount} steps`);
    trainer.dispose();
    model.dispose();
  });
});

describe('SftTrainer', () => {
  test('batch masks the prompt and padding', () => {
    // Byte ids: "ab" = 97 98, "c" = 99; BOS 256, EOS 257, PAD 258.
    const batch = buildSftBatch(tokenizer, [{ prompt: 'ab', response: 'c' }, { prompt: 'a', response: '' }], 24);
    assert.deepEqual(batch.inputs, [
      [256, 97, 98, 99],
      [256, 97, 258, 258],
    ]);
    assert.deepEqual(batch.targets, [
      [97, 98, 99, 257],
      [97, 257, 0, 0],
    ]);
    assert.deepEqual(batch.mask, [
      [0, 0, 1, 1],
      [0, 1, 0, 0],
    ]);
    assert.equal(batch.tokenCount, 3);
  });

  test('steps lower the response loss', async () => {
    const policy = Policy.create(tinyConfig, tokenizer, 5);
    const trainer = new SftTrainer(policy, { lr: 1e-2, warmupSteps: 0, clipNorm: 1, batchSize: 2 });
    const examples = [
      { prompt: 'hi', response: ' there' },
      { prompt: 'yo', response: ' dude' },
      { prompt: 'ok', response: ' fine' },
    ];
    const first = await trainer.step(examples);
    let last = first;
    for (let i = 0; i < 10; i++) last = await trainer.step(examples);
    assert.equal(first.tokens, 6 + 5 + 5 + 3);
    assert.ok(Math.abs(first.loss - Math.log(tokenizer.vocabSize)) < 0.5, `initial loss ${first.loss} should be near ln(vocab)`);
    assert.ok(last.loss < first.loss - 0.5, `loss ${first.loss} -> ${last.loss}`);
    trainer.dispose();
    policy.dispose();
  });
});

describe('memory', () => {
  test('200 steps leave no live tensors behind', async () => {
    const micro = { vocabSize: tokenizer.vocabSize, contextLength: 12, dModel: 8, nHeads: 2, nLayers: 1, dFf: 16 };
    const policy = Policy.create(micro, tokenizer, 7);
    const reference = policy.clone();
    const student = RewardModel.create(micro, tokenizer, 8);
    const dpo = new DpoTrainer(policy, reference, { ...optimization, batchSize: 1, beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0.1 });
    const reward = new RewardTrainer(student, { ...optimization, batchSize: 1 });
    const sft = new SftTrainer(policy, { ...optimization, batchSize: 1 });
    const comparisons = pairs.map((pair) => ({ ...pair, margin: 0.5 }));
    const examples = pairs.map((pair) => ({ prompt: pair.prompt, response: pair.chosen }));

    // One warm-up step each creates the optimizer's lazily kept state, if any.
    await dpo.step(pairs);
    await reward.step(comparisons);
    await sft.step(examples);
    const live = tf.memory().numTensors;
    for (let i = 0; i < 200; i++) {
      const trainer = i % 3;
      if (trainer === 0) await dpo.step(pairs);
      else if (trainer === 1) await reward.step(comparisons);
      else await sft.step(examples);
    }
    assert.equal(tf.memory().numTensors, live);

    for (const disposable of [dpo, reward, sft, policy, reference, student]) disposable.dispose();
  });
});
