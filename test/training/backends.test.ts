import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/models/backend';
import { ByteTokenizer } from '../../src/models/byte-tokenizer';
import { Policy } from '../../src/models/policy';
import { RewardModel } from '../../src/models/reward-model';
import { DpoTrainer, RewardTrainer, SftTrainer } from '../../src/training/steps';

const tokenizer = new ByteTokenizer();
const config = { vocabSize: tokenizer.vocabSize, contextLength: 24, dModel: 16, nHeads: 2, nLayers: 2, dFf: 32 };
const optimization = { lr: 1e-3, warmupSteps: 0, clipNorm: 1, batchSize: 2 };
const pairs = [
  { prompt: 'Q: 2+2?', chosen: ' 4', rejected: ' five', margin: 0.25 },
  { prompt: 'Q: sky?', chosen: ' blue', rejected: ' green' },
  { prompt: 'Q: x?', chosen: ' y', rejected: '' },
];

interface Figures {
  dpoLoss: number;
  dpoGradNorm: number;
  ipoLoss: number;
  rewardLoss: number;
  rewardGradNorm: number;
  sftLoss: number;
}

/** Runs one step of each trainer from the given weights on the active backend; returns the losses. */
async function firstStepFigures(policyWeights: Float32Array[], rewardWeights: Float32Array[]): Promise<Figures> {
  const policy = Policy.fromWeights(config, tokenizer, policyWeights);
  const reference = Policy.fromWeights(config, tokenizer, policyWeights);
  // Move the policy off the reference first, so the DPO loss is not the trivial ln 2.
  const sft = new SftTrainer(policy, { ...optimization, lr: 1e-2 });
  const sftResult = await sft.step(pairs.map((pair) => ({ prompt: pair.prompt, response: pair.chosen })));
  await sft.step(pairs.map((pair) => ({ prompt: pair.prompt, response: pair.chosen })));
  const dpo = new DpoTrainer(policy.clone(), reference, { ...optimization, beta: 0.5, lossType: 'sigmoid', labelSmoothing: 0.1 });
  const dpoResult = await dpo.step(pairs);
  const ipo = new DpoTrainer(policy.clone(), reference, { ...optimization, beta: 0.5, lossType: 'ipo', labelSmoothing: 0 });
  const ipoResult = await ipo.step(pairs);
  const student = RewardModel.fromWeights(config, tokenizer, rewardWeights);
  const reward = new RewardTrainer(student, optimization);
  const rewardResult = await reward.step(pairs);
  for (const disposable of [sft, dpo, ipo, reward, dpo.policy as Policy, ipo.policy as Policy, policy, reference, student]) {
    disposable.dispose();
  }
  return {
    dpoLoss: dpoResult.loss,
    dpoGradNorm: dpoResult.gradNorm,
    ipoLoss: ipoResult.loss,
    rewardLoss: rewardResult.loss,
    rewardGradNorm: rewardResult.gradNorm,
    sftLoss: sftResult.loss,
  };
}

after(async () => {
  await tf.setBackend('cpu');
});

test('cpu and wasm agree on losses', async () => {
  await tf.setBackend('cpu');
  const policy = Policy.create(config, tokenizer, 21);
  const student = RewardModel.create(config, tokenizer, 22);
  const policyWeights = policy.variables.map((variable) => variable.dataSync().slice() as Float32Array);
  const rewardWeights = student.variables.map((variable) => variable.dataSync().slice() as Float32Array);
  policy.dispose();
  student.dispose();

  const cpu = await firstStepFigures(policyWeights, rewardWeights);
  await selectBackend({ force: 'wasm' });
  assert.equal(tf.getBackend(), 'wasm');
  const wasm = await firstStepFigures(policyWeights, rewardWeights);

  for (const key of Object.keys(cpu) as Array<keyof Figures>) {
    const tolerance = 1e-4 * Math.max(1, Math.abs(cpu[key]));
    assert.ok(Math.abs(cpu[key] - wasm[key]) <= tolerance, `${key}: cpu ${cpu[key]}, wasm ${wasm[key]}`);
  }
  assert.ok(Math.abs(cpu.dpoLoss - Math.LN2) > 1e-3, `the DPO loss ${cpu.dpoLoss} should have moved off ln 2`);
});
