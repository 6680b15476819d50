import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig, withHash } from '../../src/config';
import { selectBackend } from '../../src/models/backend';
import { Policy } from '../../src/models/policy';
import { RewardModel } from '../../src/models/reward-model';
import { createTokenizer } from '../../src/models/tokenizer';
import { transformerConfig } from '../../src/run/base';
import { DirectoryModelStore, readTrainerState } from '../../src/run/model-store';
import type { ModelUpdate, PreferencePair } from '../../src/streams/records';
import { Trainer, epochOrder, modelVersion } from '../../src/training/trainer';

const tiny = { layers: 1, heads: 2, embedding: 16, contextLength: 32 };

function setup(trainer: Record<string, unknown>) {
  const loaded = withHash(validateConfig({ models: { policy: tiny, student: tiny }, chain: { maxTokens: 8 }, trainer: { epochs: 1, ...trainer } }));
  const dir = mkdtempSync(join(tmpdir(), 'tsalign-trainer-'));
  const store = new DirectoryModelStore(join(dir, 'checkpoints'), join(dir, 'state'));
  const updates: ModelUpdate[] = [];
  const options = { config: loaded.config, configJson: loaded.json, configHash: loaded.hash, store, publish: async (update: ModelUpdate) => void updates.push(update) };
  return { loaded, dir, store, updates, options };
}

async function baseRefs(store: DirectoryModelStore) {
  const tokenizer = createTokenizer('byte');
  const policy = Policy.create(transformerConfig(tiny, tokenizer), tokenizer, 1);
  const student = RewardModel.create(transformerConfig(tiny, tokenizer), tokenizer, 2);
  const policyRef = await store.savePolicy(policy, modelVersion('POLICY', 0, 0));
  const studentRef = await store.saveStudent(student, modelVersion('STUDENT', 0, 0));
  policy.dispose();
  student.dispose();
  return { policyRef, studentRef };
}

function pair(n: number, policyVersion = modelVersion('POLICY', 0, 0)): PreferencePair {
  return {
    id: `pair-${n}`,
    promptId: `prompt-${n}`,
    prompt: `add ${n}+1=`,
    chosen: String(n + 1),
    rejected: String(n + 7),
    chosenId: `c${n}`,
    rejectedId: `r${n}`,
    labeler: 'TEACHER',
    confidence: 0.5,
    margin: 0.5,
    round: 1,
    policyVersion,
    studentVersion: modelVersion('STUDENT', 0, 0),
  };
}

describe('trainer', () => {
  test('DPO step 0 loss is ln 2', async () => {
    await selectBackend({ force: 'cpu' });
    const { store, updates, options } = setup({ publishEvery: 1, batchSize: 2 });
    const { policyRef, studentRef } = await baseRefs(store);
    const trainer = await Trainer.start(options, 1, policyRef, studentRef);
    try {
      const pairs = [pair(1), pair(2)];
      const referenceBefore = await trainer.referenceLogprobs(pairs);
      const policyBefore = await trainer.policy.responseLogprobs(pairs.map((p) => ({ prompt: p.prompt, response: p.chosen })));
      await trainer.addPairs(pairs);
      const first = updates.find((update) => update.model === 'POLICY');
      assert.ok(first, 'a policy update was published');
      assert.ok(Math.abs(first.metrics.loss! - Math.LN2) < 1e-5, `loss ${first.metrics.loss} is ln 2`);
      assert.ok(Math.abs(first.metrics.margin!) < 1e-6, `margin ${first.metrics.margin} is 0`);

      await trainer.addPairs([pair(3), pair(4)]);
      const referenceAfter = await trainer.referenceLogprobs(pairs);
      assert.deepEqual(referenceAfter, referenceBefore);
      const policyAfter = await trainer.policy.responseLogprobs(pairs.map((p) => ({ prompt: p.prompt, response: p.chosen })));
      assert.notDeepEqual(policyAfter, policyBefore);
    } finally {
      trainer.dispose();
    }
  });

  test('stale and repeated pairs skipped', async () => {
    const { store, options } = setup({ batchSize: 4 });
    const { policyRef, studentRef } = await baseRefs(store);
    const trainer = await Trainer.start(options, 1, policyRef, studentRef);
    try {
      const result = await trainer.addPairs([pair(1), pair(1), pair(2, 'policy-r9-s9')]);
      assert.deepEqual(result, { accepted: 1, stale: 1, duplicate: 1 });
      const manifest = await trainer.closeRound({ promptOffsets: [] });
      assert.equal(manifest.summary.stalePairs, 1);
      assert.equal(manifest.summary.duplicatePairs, 1);
      assert.equal(manifest.referenceVersion, policyRef.version);
      assert.equal(manifest.referenceSha256, policyRef.sha256);
      assert.equal(manifest.policyOut, trainer.policyRef.version);
      assert.equal(trainer.round, 2);
      assert.equal(trainer.referenceRef.version, manifest.policyOut);
      // A pair sampled by round 1's input policy is older than round 2's reference.
      const late = await trainer.addPairs([pair(5)]);
      assert.equal(late.stale, 1);
    } finally {
      trainer.dispose();
    }
  });

  test('restart mid-round trains no pair twice', async () => {
    const { store, dir, options } = setup({ publishEvery: 1, batchSize: 2 });
    const { policyRef, studentRef } = await baseRefs(store);
    const first = await Trainer.start(options, 1, policyRef, studentRef);
    await first.addPairs([pair(1), pair(2), pair(3), pair(4), pair(5)]);
    await first.persistReceived();
    const stepsBefore = first.snapshot().policySteps;
    assert.equal(stepsBefore, 2);
    first.dispose();

    const saved = readTrainerState(join(dir, 'state'));
    assert.ok(saved);
    const second = await Trainer.resume(options, saved);
    try {
      // Everything is delivered again after the restart.
      const again = await second.addPairs([pair(1), pair(2), pair(3), pair(4), pair(5), pair(6)]);
      assert.deepEqual(again, { accepted: 1, stale: 0, duplicate: 5 });
      const manifest = await second.closeRound({ promptOffsets: [] });
      assert.equal(manifest.summary.pairsTrained, 6);
      // Six pairs in batches of two: three steps in all, none repeated.
      assert.equal(second.snapshot().policySteps, 3);
    } finally {
      second.dispose();
    }
  });

  test('epoch order ignores arrival order', () => {
    const items = [1, 2, 3, 4, 5].map((n) => ({ id: `p${n}` }));
    const a = epochOrder(items, 1, 1, 0).map((item) => item.id);
    const b = epochOrder([...items].reverse(), 1, 1, 0).map((item) => item.id);
    assert.deepEqual(a, b);
    assert.notDeepEqual(epochOrder(items, 1, 1, 1).map((item) => item.id), a);
  });
});
