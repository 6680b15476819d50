import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ByteTokenizer } from '../../src/models/byte-tokenizer';
import { saveCheckpoint } from '../../src/models/checkpoint';
import { RewardModel } from '../../src/models/reward-model';
import type { Candidate, Prompt } from '../../src/streams/records';
import { createRewardModelTeacher } from '../../src/teachers/reward-model';
import { RetriableError, UsageError } from '../../src/util/errors';

const tokenizer = new ByteTokenizer();
const config = { vocabSize: tokenizer.vocabSize, contextLength: 32, dModel: 8, nHeads: 2, nLayers: 1, dFf: 16 };

const prompt: Prompt = { id: 'p-rm', text: 'add 2+2=', source: 'tasks', tags: [], meta: {}, createdAt: 0n };
const shortlist: Candidate[] = ['4', '5', 'four', '4'].map((text, i) => ({ id: `c${i}`, text, tokens: 1, logprob: 0 }));

let root = '';
let checkpointDir = '';
let checkpointSha = '';
let model: RewardModel;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tsalign-rm-teacher-'));
  model = RewardModel.create(config, tokenizer, 5);
  checkpointDir = path.join(root, 'rm');
  checkpointSha = (await saveCheckpoint(checkpointDir, model, { kind: 'reward-model' })).sha256;
});

after(async () => {
  model.dispose();
  await rm(root, { recursive: true, force: true });
});

test('scores match the reward model', async () => {
  const teacher = createRewardModelTeacher({ checkpoint: checkpointDir });
  const scores = await teacher.rank(prompt, shortlist, new AbortController().signal);
  const expected = await model.score(shortlist.map((candidate) => ({ prompt: prompt.text, response: candidate.text })));
  assert.equal(scores.length, 4);
  scores.forEach((score, i) => assert.ok(Math.abs(score - expected[i]!) < 1e-5, `score ${i}: ${score} vs ${expected[i]}`));
  assert.equal(scores[0], scores[3]);
  assert.notEqual(scores[0], scores[2]);
  await teacher.dispose();
});

test('name carries the checkpoint sha256', () => {
  const teacher = createRewardModelTeacher({ checkpoint: checkpointDir, expectedSha256: checkpointSha });
  assert.equal(teacher.name, `reward-model:${checkpointSha.slice(0, 16)}`);
  assert.equal(teacher.sha256, checkpointSha);
});

test('unexpected sha256 is rejected', () => {
  assert.throws(
    () => createRewardModelTeacher({ checkpoint: checkpointDir, expectedSha256: '0'.repeat(64) }),
    (error: unknown) => error instanceof UsageError && /was expected/.test(error.message),
  );
});

test('missing or absent checkpoint names the key', () => {
  assert.throws(() => createRewardModelTeacher({}), /missing teacher\.rewardModel\.checkpoint/);
  assert.throws(
    () => createRewardModelTeacher({ checkpoint: path.join(root, 'absent') }),
    /invalid teacher\.rewardModel\.checkpoint .*no such directory/,
  );
});

test('directory without checkpoint.json is rejected', async () => {
  const empty = path.join(root, 'empty');
  await mkdir(empty);
  assert.throws(() => createRewardModelTeacher({ checkpoint: empty }), /cannot read .*checkpoint\.json/);
});

test('corrupted weights fail every call', async () => {
  const corrupted = path.join(root, 'corrupted');
  await saveCheckpoint(corrupted, model, { kind: 'reward-model' });
  await writeFile(path.join(corrupted, 'weights.bin'), Buffer.alloc(8));
  const teacher = createRewardModelTeacher({ checkpoint: corrupted });
  for (let i = 0; i < 2; i++) {
    await assert.rejects(teacher.rank(prompt, shortlist, new AbortController().signal), (error: unknown) => {
      assert.ok(!(error instanceof RetriableError));
      assert.match((error as Error).message, /weights\.bin has sha256/);
      return true;
    });
  }
});

test('aborted signal stops ranking', async () => {
  const controller = new AbortController();
  controller.abort(new Error('stop'));
  const teacher = createRewardModelTeacher({ checkpoint: checkpointDir });
  await assert.rejects(teacher.rank(prompt, shortlist, controller.signal), /stop/);
});
