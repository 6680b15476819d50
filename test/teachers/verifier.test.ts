import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Candidate, Prompt } from '../../src/streams/records';
import { generateTaskPrompts } from '../../src/tasks';
import { createVerifierTeacher } from '../../src/teachers/verifier';
import { RetriableError, UsageError } from '../../src/util/errors';

function candidates(...texts: string[]): Candidate[] {
  return texts.map((text, i) => ({ id: `c${i}`, text, tokens: text.length, logprob: -1 }));
}

const prompt: Prompt = {
  id: 'p-add',
  text: 'add 13+5=',
  source: 'tasks',
  tags: ['add'],
  meta: { task: 'add', answer: '18', split: 'train' },
  createdAt: 0n,
};

test('verifier ranks exact above near above wrong', async () => {
  const teacher = createVerifierTeacher();
  const scores = await teacher.rank(prompt, candidates('17', '18', 'x', ' 18\n'), new AbortController().signal);
  assert.deepEqual(scores, [0.25, 1, 0, 1]);
});

test('verifier is deterministic on generated prompts', async () => {
  const teacher = createVerifierTeacher();
  const signal = new AbortController().signal;
  for (const task of generateTaskPrompts({ count: 10, seed: 1, split: 'heldout' })) {
    const shortlist = candidates(task.meta.answer!, 'zz', '');
    const first = await teacher.rank(task, shortlist, signal);
    const second = await teacher.rank(task, shortlist, signal);
    assert.deepEqual(first, second);
    assert.equal(first[0], 1);
  }
});

test('verifier rejects prompts without an answer', async () => {
  const teacher = createVerifierTeacher();
  const plain: Prompt = { id: 'p-chat', text: 'hello', source: 'feed', tags: [], meta: {}, createdAt: 0n };
  await assert.rejects(teacher.rank(plain, candidates('a', 'b'), new AbortController().signal), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.ok(!(error instanceof RetriableError));
    assert.match(error.message, /prompt p-chat/);
    assert.match(error.message, /only judges built-in task prompts/);
    return true;
  });
});

test('verifier honours an aborted signal', async () => {
  const controller = new AbortController();
  controller.abort(new Error('stop'));
  await assert.rejects(createVerifierTeacher().rank(prompt, candidates('18'), controller.signal), /stop/);
});
