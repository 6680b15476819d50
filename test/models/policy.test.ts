import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { encodePair } from '../../src/models/encoding';
import { Policy, type SampleOptions, type SampledResponse } from '../../src/models/policy';
import { TINY_CONFIG, assertClose, byteTokenizer, useWasm } from './fixtures';

/** Sums log p(ids[t] | ids[<t]) for t from `start` with one full forward pass via `logits`. */
async function manualLogprob(policy: Policy, ids: number[], start: number): Promise<number> {
  const logProbs = tf.tidy(() => tf.logSoftmax(policy.logits(tf.tensor2d([ids], [1, ids.length], 'int32'))));
  const values = (await logProbs.array()) as number[][][];
  logProbs.dispose();
  let sum = 0;
  for (let t = start; t < ids.length; t++) sum += values[0]![t - 1]![ids[t]!]!;
  return sum;
}

/** Samples one response for one prompt. */
async function sampleOne(policy: Policy, prompt: string, options: Omit<SampleOptions, 'k'>): Promise<SampledResponse> {
  const [[sample]] = (await policy.sample([prompt], { ...options, k: 1 })) as [[SampledResponse]];
  return sample;
}

describe('policy', () => {
  let policy: Policy;
  before(async () => {
    await useWasm();
    policy = Policy.create(TINY_CONFIG, byteTokenizer, 5);
  });
  after(() => policy.dispose());

  test('same seed gives the same samples', async () => {
    const options = { k: 3, temperature: 1, topP: 0.95, maxTokens: 12, seeds: [41, 42] };
    const first = await policy.sample(['hello', 'world'], options);
    const second = await policy.sample(['hello', 'world'], options);
    assert.deepEqual(second, first);
  });

  test('different seeds give different samples', async () => {
    const [a] = await policy.sample(['hello'], { k: 2, temperature: 1, maxTokens: 12, seeds: [1] });
    const [b] = await policy.sample(['hello'], { k: 2, temperature: 1, maxTokens: 12, seeds: [2] });
    assert.notDeepEqual(a!.map((s) => s.tokenIds), b!.map((s) => s.tokenIds));
    assert.notDeepEqual(a![0]!.tokenIds, a![1]!.tokenIds, 'candidates of one prompt differ');
  });

  test('KV cache matches full recomputation', async () => {
    const prompts = ['short', 'a much longer prompt than the first'];
    for (const sampling of [{ temperature: 1 }, { temperature: 0.7, topK: 20 }, { temperature: 1.2, topP: 0.8 }]) {
      const options = { ...sampling, k: 2, maxTokens: 10, seeds: [3, 4] };
      const cached = await policy.sample(prompts, { ...options, useCache: true });
      const full = await policy.sample(prompts, { ...options, useCache: false });
      assert.deepEqual(cached.flat().map((s) => s.tokenIds), full.flat().map((s) => s.tokenIds));
      assertClose(cached.flat().map((s) => s.logprob), full.flat().map((s) => s.logprob), 1e-4, 'logprob');
    }
  });

  test('sample does not depend on the other prompts', async () => {
    const options = { k: 2, temperature: 1, maxTokens: 10 };
    const [alone] = await policy.sample(['abc'], { ...options, seeds: [9] });
    const [together] = await policy.sample(['abc', 'a far longer prompt beside it'], { ...options, seeds: [9, 10] });
    assert.deepEqual(together!.map((s) => s.tokenIds), alone!.map((s) => s.tokenIds));
  });

  test('sample logprob is the sum over generated ids', async () => {
    const sample = await sampleOne(policy, 'why', { temperature: 1, maxTokens: 8, seeds: [7] });
    const promptIds = [byteTokenizer.bosId, ...byteTokenizer.encode('why')];
    const ids = [...promptIds, ...sample.tokenIds];
    if (sample.finishReason === 'eos') ids.push(byteTokenizer.eosId);
    const expected = await manualLogprob(policy, ids, promptIds.length);
    assertClose([sample.logprob], [expected], 1e-4, 'logprob');
  });

  test('greedy sampling picks the argmax', async () => {
    const sample = await sampleOne(policy, 'abc', { temperature: 0, maxTokens: 1, seeds: [0] });
    const ids = [byteTokenizer.bosId, ...byteTokenizer.encode('abc')];
    const logits = tf.tidy(() => policy.logits(tf.tensor2d([ids], [1, ids.length], 'int32')));
    const last = ((await logits.array()) as number[][][])[0]![ids.length - 1]!;
    logits.dispose();
    last[byteTokenizer.bosId] = -Infinity;
    last[byteTokenizer.padId] = -Infinity;
    const argmax = last.indexOf(Math.max(...last));
    const chosen = sample.finishReason === 'eos' ? byteTokenizer.eosId : sample.tokenIds[0];
    assert.equal(chosen, argmax);
  });

  test('sample truncates a long prompt from the left', async () => {
    const longPrompt = 'x'.repeat(500) + 'end';
    const sample = await sampleOne(policy, longPrompt, { temperature: 1, maxTokens: 6, seeds: [1] });
    assert.ok(sample.tokens <= 6);
    const same = await sampleOne(policy, 'x'.repeat(100) + 'end', { temperature: 1, maxTokens: 6, seeds: [1] });
    assert.deepEqual(same, sample, 'only the prompt end within the context matters');
  });

  test('response logprobs mask prompt and padding', async () => {
    const item = { prompt: 'the prompt', response: 'the answer' };
    const longer = { prompt: 'another, much longer prompt text', response: 'and a much longer answer as well' };
    const [alone] = await policy.responseLogprobs([item]);
    const [batched] = await policy.responseLogprobs([item, longer]);
    assertClose([batched!], [alone!], 1e-5, 'batched logprob');

    const pair = encodePair(byteTokenizer, item.prompt, item.response, TINY_CONFIG.contextLength);
    const expected = await manualLogprob(policy, pair.ids, pair.responseStart);
    assertClose([alone!], [expected], 1e-4, 'masked sum');
    assert.equal(pair.ids.length - pair.responseStart, byteTokenizer.encode(item.response).length + 1, 'response ids and EOS are scored');
  });

  test('response logprobs do not depend on the prompt length alone', async () => {
    const [a, b] = await policy.responseLogprobs([
      { prompt: 'p', response: 'same' },
      { prompt: 'a different prompt', response: 'same' },
    ]);
    assert.notEqual(a, b, 'the prompt conditions the response');
  });

  test('sequenceLogprobs is differentiable', () => {
    const { value, grads } = tf.variableGrads(
      () => tf.sum(policy.sequenceLogprobs([{ prompt: 'a', response: 'b' }])) as tf.Scalar,
      policy.variables,
    );
    const gradientNorms = policy.variables.map((v) => tf.sum(tf.abs(grads[v.name]!)).dataSync()[0]!);
    assert.ok(Number.isFinite(value.dataSync()[0]));
    assert.ok(gradientNorms.filter((norm) => norm > 0).length >= policy.variables.length - 1, 'gradients reach the weights');
    tf.dispose([value, ...Object.values(grads)]);
  });

  test('live tensor count stays unchanged', async () => {
    const batch = [{ prompt: 'a', response: 'b' }, { prompt: 'cc', response: 'dd' }];
    const run = async () => {
      await policy.sample(['a', 'b'], { k: 2, temperature: 1, maxTokens: 4, seeds: [1, 2] });
      await policy.sample(['a'], { k: 1, temperature: 1, maxTokens: 4, seeds: [1], useCache: false });
      await policy.responseLogprobs(batch);
      const { value, grads } = tf.variableGrads(() => tf.sum(policy.sequenceLogprobs(batch)) as tf.Scalar, policy.variables);
      tf.dispose([value, ...Object.values(grads)]);
      tf.dispose(policy.logits(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32')));
    };
    await run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await run();
    // `run` creates one input tensor for `logits` per call that it does not dispose.
    assert.equal(tf.memory().numTensors, before + 3);
  });

  test('clone copies weights deeply', async () => {
    const copy = policy.clone();
    const item = [{ prompt: 'x', response: 'y' }];
    assert.deepEqual(await copy.responseLogprobs(item), await policy.responseLogprobs(item));
    copy.variables[0]!.assign(tf.zerosLike(copy.variables[0]!));
    assert.notDeepEqual(await copy.responseLogprobs(item), await policy.responseLogprobs(item));
    assert.notEqual(copy.variables[0]!.name, policy.variables[0]!.name);
    copy.dispose();
  });

  test('same seed creates the same weights', async () => {
    const twin = Policy.create(TINY_CONFIG, byteTokenizer, 5);
    const other = Policy.create(TINY_CONFIG, byteTokenizer, 6);
    const mine = await policy.variables[0]!.data();
    assert.deepEqual(await twin.variables[0]!.data(), mine);
    assert.notDeepEqual(await other.variables[0]!.data(), mine);
    twin.dispose();
    other.dispose();
  });

  test('invalid options are rejected', async () => {
    await assert.rejects(policy.sample(['a'], { k: 1, temperature: 1, maxTokens: 47, seeds: [1] }), /Invalid maxTokens 47: expected an integer from 1 to 46/);
    await assert.rejects(policy.sample(['a', 'b'], { k: 1, temperature: 1, maxTokens: 4, seeds: [1] }), /one integer seed per prompt \(2\)/);
    await assert.rejects(policy.sample(['a'], { k: 1, temperature: 1, topP: 0, maxTokens: 4, seeds: [1] }), /Invalid topP 0/);
    assert.throws(() => Policy.create({ ...TINY_CONFIG, nHeads: 3 }, byteTokenizer, 1), /dModel 16 is not divisible by nHeads 3/);
    assert.throws(() => Policy.create({ ...TINY_CONFIG, vocabSize: 100 }, byteTokenizer, 1), /vocabSize 100 is smaller than the byte tokenizer's 259 ids/);
  });
});
