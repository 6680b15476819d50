import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { encodePair } from '../../src/models/encoding';
import { RewardModel } from '../../src/models/reward-model';
import { TINY_CONFIG, assertClose, byteTokenizer, useWasm } from './fixtures';

describe('reward model', () => {
  let model: RewardModel;
  before(async () => {
    await useWasm();
    model = RewardModel.create(TINY_CONFIG, byteTokenizer, 8);
  });
  after(() => model.dispose());

  test('score ignores padding and batch', async () => {
    const item = { prompt: 'how are you', response: 'fine' };
    const [alone] = await model.score([item]);
    const [batched] = await model.score([item, { prompt: 'a much longer prompt than that', response: 'and a longer answer too' }]);
    assertClose([batched!], [alone!], 1e-5, 'score');
  });

  test('score depends on the response', async () => {
    const [a, b] = await model.score([
      { prompt: 'p', response: 'yes' },
      { prompt: 'p', response: 'no' },
    ]);
    assert.notEqual(a, b);
  });

  test('long pairs keep the prompt end and response start', () => {
    const context = TINY_CONFIG.contextLength;
    const pair = encodePair(byteTokenizer, 'P'.repeat(100) + 'tail', 'answer', context);
    assert.equal(pair.ids.length, context);
    assert.equal(byteTokenizer.decode(pair.ids.slice(pair.responseStart)), 'answer');
    assert.ok(byteTokenizer.decode(pair.ids.slice(0, pair.responseStart)).endsWith('Ptail'));
    assert.equal(pair.ids[0], byteTokenizer.bosId);

    const longResponse = encodePair(byteTokenizer, 'prompt', 'R'.repeat(100), context);
    assert.equal(longResponse.ids.length, context);
    assert.equal(longResponse.responseStart, 2, 'BOS and one prompt id stay');
    assert.equal(byteTokenizer.decode(longResponse.ids.slice(longResponse.responseStart)), 'R'.repeat(context - 2));
  });

  test('scoreTensor is differentiable', () => {
    const { value, grads } = tf.variableGrads(
      () => tf.sum(model.scoreTensor([{ prompt: 'a', response: 'b' }, { prompt: 'c', response: 'dd' }])) as tf.Scalar,
      model.variables,
    );
    assert.ok(Number.isFinite(value.dataSync()[0]));
    const headIndex = model.variableNames.indexOf('score.weight');
    assert.ok(tf.sum(tf.abs(grads[model.variables[headIndex]!.name]!)).dataSync()[0]! > 0, 'the head gets a gradient');
    tf.dispose([value, ...Object.values(grads)]);
  });

  test('live tensor count stays unchanged', async () => {
    const batch = [{ prompt: 'a', response: 'b' }];
    await model.score(batch);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      await model.score(batch);
      const { value, grads } = tf.variableGrads(() => tf.sum(model.scoreTensor(batch)) as tf.Scalar, model.variables);
      tf.dispose([value, ...Object.values(grads)]);
    }
    assert.equal(tf.memory().numTensors, before);
  });

  test('clone scores the same', async () => {
    const copy = model.clone();
    const batch = [{ prompt: 'x', response: 'y' }];
    assert.deepEqual(await copy.score(batch), await model.score(batch));
    copy.dispose();
  });
});
