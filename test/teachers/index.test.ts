import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../../src/config/schema';
import { createTeacher } from '../../src/teachers';
import { UsageError } from '../../src/util/errors';

test('verifier is created without settings', () => {
  assert.equal(createTeacher('verifier').name, 'verifier');
});

test('openai teacher takes the run config section', () => {
  const config = defaultConfig();
  const teacher = createTeacher('openai', config.teacher, { OPENAI_API_KEY: 'k' });
  assert.equal(teacher.name, `openai:${config.teacher.openai.model}`);
});

test('unknown kind lists the allowed kinds', () => {
  assert.throws(
    () => createTeacher('oracle'),
    (error: unknown) =>
      error instanceof UsageError &&
      /unknown teacher kind "oracle": expected one of verifier, openai, reward-model/.test(error.message),
  );
});

test('missing settings name their key', () => {
  assert.throws(() => createTeacher('openai', {}, { OPENAI_API_KEY: 'k' }), /missing teacher\.openai\.model/);
  assert.throws(() => createTeacher('openai', { openai: { model: 'm' } }, {}), /variable OPENAI_API_KEY/);
  assert.throws(() => createTeacher('reward-model', defaultConfig().teacher), /missing teacher\.rewardModel\.checkpoint/);
});
