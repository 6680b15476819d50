import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateTaskPrompts, gradeResponse, noisyDemonstrations } from '../../src/tasks';
import { UsageError } from '../../src/util/errors';

const prompts = generateTaskPrompts({ count: 500, seed: 21, split: 'train' });

test('noise 0 gives the reference answers', () => {
  const demonstrations = noisyDemonstrations(prompts, { seed: 1, noise: 0 });
  assert.equal(demonstrations.length, prompts.length);
  demonstrations.forEach((demonstration, i) => {
    assert.equal(demonstration.prompt, prompts[i]!.text);
    assert.equal(demonstration.response, prompts[i]!.meta.answer);
  });
});

test('noise 1 makes every answer wrong but close', () => {
  const demonstrations = noisyDemonstrations(prompts, { seed: 1, noise: 1 });
  demonstrations.forEach((demonstration, i) => {
    const prompt = prompts[i]!;
    const grade = gradeResponse(prompt, demonstration.response);
    assert.notEqual(demonstration.response, prompt.meta.answer, prompt.text);
    assert.ok(grade > 0, `${prompt.text} ${demonstration.response} graded ${grade}`);
    assert.ok(grade < 1, `${prompt.text} ${demonstration.response} graded ${grade}`);
    assert.ok(demonstration.response.length <= 7, `${demonstration.response} is longer than 7 bytes`);
  });
});

test('wrong share follows the noise', () => {
  const demonstrations = noisyDemonstrations(prompts, { seed: 2, noise: 0.3 });
  const wrong = demonstrations.filter((d, i) => d.response !== prompts[i]!.meta.answer).length;
  assert.ok(wrong > 100, `only ${wrong} of 500 demonstrations are wrong at noise 0.3`);
  assert.ok(wrong < 200, `${wrong} of 500 demonstrations are wrong at noise 0.3`);
});

test('draws depend on seed and prompt, not order', () => {
  const forward = noisyDemonstrations(prompts, { seed: 3, noise: 0.5 });
  const backward = noisyDemonstrations([...prompts].reverse(), { seed: 3, noise: 0.5 }).reverse();
  assert.deepEqual(backward, forward);
  const other = noisyDemonstrations(prompts, { seed: 4, noise: 0.5 });
  assert.notDeepEqual(other, forward);
});

test('invalid noise and plain prompts are rejected', () => {
  assert.throws(() => noisyDemonstrations(prompts, { seed: 1, noise: 1.5 }), /invalid demonstration noise 1.5/);
  assert.throws(() => noisyDemonstrations(prompts, { seed: 1, noise: Number.NaN }), UsageError);
  const plain = { id: 'p', text: 'hi', source: 'feed', tags: [], meta: {}, createdAt: 0n };
  assert.throws(() => noisyDemonstrations([plain], { seed: 1, noise: 0 }), /prompt p has no meta.task/);
});
