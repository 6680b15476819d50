import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import {
  CHECKPOINT_DATA_FILES,
  loadPolicy,
  loadRewardModel,
  readCheckpointInfo,
  saveCheckpoint,
} from '../../src/models/checkpoint';
import { Policy } from '../../src/models/policy';
import { RewardModel } from '../../src/models/reward-model';
import { TINY_CONFIG, byteTokenizer, useWasm } from './fixtures';

describe('checkpoint', () => {
  let root: string;
  let policy: Policy;
  const batch = [
    { prompt: 'question one', response: 'answer' },
    { prompt: 'q2', response: 'a longer answer here' },
  ];

  before(async () => {
    await useWasm();
    root = await mkdtemp(path.join(os.tmpdir(), 'tsalign-checkpoint-'));
    policy = Policy.create(TINY_CONFIG, byteTokenizer, 21);
  });
  after(async () => {
    policy.dispose();
    await rm(root, { recursive: true, force: true });
  });

  test('policy round trip reproduces outputs exactly', async () => {
    const dir = path.join(root, 'policy-a');
    const saved = await saveCheckpoint(dir, policy, { kind: 'policy', parentVersion: 'p0', extra: { step: 3 } });
    const loaded = await loadPolicy(dir, { expectedSha256: saved.sha256 });
    assert.deepEqual(await loaded.responseLogprobs(batch), await policy.responseLogprobs(batch));
    const options = { k: 2, temperature: 1, maxTokens: 8, seeds: [5] };
    assert.deepEqual(await loaded.sample(['hi'], options), await policy.sample(['hi'], options));
    assert.deepEqual(loaded.config, policy.config);
    loaded.dispose();

    const info = await readCheckpointInfo(dir);
    assert.equal(info.kind, 'policy');
    assert.equal(info.parentVersion, 'p0');
    assert.deepEqual(info.extra, { step: 3 });
    assert.equal(info.version, saved.version);
    assert.equal(info.sha256, saved.sha256);
  });

  test('sha256 is the hash of the sha256sum lines', async () => {
    const dir = path.join(root, 'policy-hash');
    const saved = await saveCheckpoint(dir, policy, { kind: 'policy' });
    let lines = '';
    for (const name of CHECKPOINT_DATA_FILES) {
      lines += `${createHash('sha256').update(await readFile(path.join(dir, name))).digest('hex')}  ${name}\n`;
    }
    assert.equal(saved.sha256, createHash('sha256').update(lines).digest('hex'));
    const weightsHash = createHash('sha256').update(await readFile(path.join(dir, 'weights.bin'))).digest('hex');
    assert.equal(saved.version, weightsHash.slice(0, 16), 'default version is the weights hash');
  });

  test('reward model round trip reproduces scores', async () => {
    const model = RewardModel.create(TINY_CONFIG, byteTokenizer, 22);
    const dir = path.join(root, 'rm');
    await saveCheckpoint(dir, model, { kind: 'reward-model', version: 'rm-1' });
    const loaded = await loadRewardModel(dir);
    assert.deepEqual(await loaded.score(batch), await model.score(batch));
    assert.equal((await readCheckpointInfo(dir)).version, 'rm-1');
    await assert.rejects(loadPolicy(dir), /contains a reward-model, not a policy/);
    model.dispose();
    loaded.dispose();
  });

  test('corrupted weight file is rejected', async () => {
    const dir = path.join(root, 'policy-corrupt');
    await saveCheckpoint(dir, policy, { kind: 'policy' });
    const file = path.join(dir, 'weights.bin');
    const bytes = await readFile(file);
    bytes[100] = bytes[100]! ^ 0xff;
    await writeFile(file, bytes);
    await assert.rejects(loadPolicy(dir), /weights\.bin has sha256 [0-9a-f]{64}, but checkpoint\.json records [0-9a-f]{64}: the checkpoint is corrupted/);
  });

  test('missing file is named', async () => {
    const dir = path.join(root, 'policy-missing');
    await saveCheckpoint(dir, policy, { kind: 'policy' });
    await unlink(path.join(dir, 'tokenizer.json'));
    await assert.rejects(loadPolicy(dir), /is missing tokenizer\.json/);
  });

  test('unexpected sha256 is rejected', async () => {
    const dir = path.join(root, 'policy-expected');
    await saveCheckpoint(dir, policy, { kind: 'policy' });
    await assert.rejects(loadPolicy(dir, { expectedSha256: '0'.repeat(64) }), /but 0{64} was expected/);
  });

  test('newer format version is rejected', async () => {
    const dir = path.join(root, 'policy-format');
    await saveCheckpoint(dir, policy, { kind: 'policy' });
    const infoPath = path.join(dir, 'checkpoint.json');
    const info = JSON.parse(await readFile(infoPath, 'utf8')) as Record<string, unknown>;
    await writeFile(infoPath, JSON.stringify({ ...info, formatVersion: 99 }));
    await assert.rejects(readCheckpointInfo(dir), /format version 99, but this build of tsalign reads version 1/);
  });

  test('saving to an existing directory', async () => {
    const dir = path.join(root, 'policy-twice');
    const first = await saveCheckpoint(dir, policy, { kind: 'policy' });
    assert.deepEqual(await saveCheckpoint(dir, policy, { kind: 'policy' }), first, 'same contents are kept');
    const other = Policy.create(TINY_CONFIG, byteTokenizer, 99);
    await assert.rejects(saveCheckpoint(dir, other, { kind: 'policy' }), /already exists with other contents/);
    other.dispose();
  });

  test('kind must match the model', async () => {
    await assert.rejects(saveCheckpoint(path.join(root, 'x'), policy, { kind: 'reward-model' }), /does not match the model, which is a policy/);
  });
});
