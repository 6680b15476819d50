import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, selfCheck } from '../../src/models/backend';
import { Policy } from '../../src/models/policy';
import { RewardModel } from '../../src/models/reward-model';
import { TINY_CONFIG, assertClose, byteTokenizer } from './fixtures';

test('self-check passes on wasm and cpu', async () => {
  for (const name of ['wasm', 'cpu']) {
    const selection = await selectBackend({ force: name });
    assert.equal(selection.name, name);
    assert.equal(tf.getBackend(), name);
    assert.equal(await selfCheck(), null);
  }
});

test('selection is idempotent', async () => {
  const first = await selectBackend({ force: 'wasm' });
  await selectBackend({ force: 'cpu' });
  const second = await selectBackend({ force: 'wasm' });
  assert.deepEqual(second, first);
  assert.equal(tf.getBackend(), 'wasm', 'the repeated request makes its backend active again');
});

test('auto selection skips missing native packages', async (t) => {
  let nativeInstalled = true;
  try {
    require.resolve('@tensorflow/tfjs-node');
  } catch {
    nativeInstalled = false;
  }
  if (nativeInstalled) {
    t.skip('@tensorflow/tfjs-node is installed here, so it would be selected');
    return;
  }
  const saved = process.env.TSALIGN_BACKEND;
  delete process.env.TSALIGN_BACKEND;
  try {
    const selection = await selectBackend();
    assert.equal(selection.name, 'wasm');
    assert.deepEqual(selection.skipped.map((s) => s.name), ['tensorflow-gpu', 'tensorflow']);
    assert.match(selection.skipped[0]!.reason, /package @tensorflow\/tfjs-node-gpu is not installed/);
  } finally {
    if (saved !== undefined) process.env.TSALIGN_BACKEND = saved;
  }
});

test('forced backend that cannot load throws', async () => {
  await assert.rejects(selectBackend({ force: 'node-gpu' }), /Backend node-gpu was requested but cannot run: package @tensorflow\/tfjs-node-gpu/);
  await assert.rejects(selectBackend({ force: 'webgpu' }), /Unknown backend "webgpu" .*use one of node-gpu, node, wasm, cpu/);
});

test('self-check names a missing kernel', async () => {
  await selectBackend({ force: 'cpu' });
  const softmax = tf.getKernel('Softmax', 'cpu')!;
  tf.unregisterKernel('Softmax', 'cpu');
  try {
    assert.equal(await selfCheck(), 'kernel Softmax is not registered');
  } finally {
    tf.registerKernel(softmax);
  }
  assert.equal(await selfCheck(), null);
});

test('cpu and wasm agree on the same weights', async () => {
  await selectBackend({ force: 'cpu' });
  const policy = Policy.create(TINY_CONFIG, byteTokenizer, 31);
  const rewardModel = RewardModel.create(TINY_CONFIG, byteTokenizer, 32);
  const batch = [
    { prompt: 'compare backends', response: 'on this text' },
    { prompt: 'x', response: 'yz' },
  ];
  const options = { k: 2, temperature: 1, maxTokens: 8, seeds: [17] };
  const onCpu = {
    logprobs: await policy.responseLogprobs(batch),
    scores: await rewardModel.score(batch),
    samples: await policy.sample(['hello'], options),
  };
  await selectBackend({ force: 'wasm' });
  assertClose(await policy.responseLogprobs(batch), onCpu.logprobs, 1e-4, 'logprobs');
  assertClose(await rewardModel.score(batch), onCpu.scores, 1e-5, 'scores');
  const onWasm = await policy.sample(['hello'], options);
  assert.deepEqual(onWasm.flat().map((s) => s.tokenIds), onCpu.samples.flat().map((s) => s.tokenIds));
  policy.dispose();
  rewardModel.dispose();
});
