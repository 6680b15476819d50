import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Prompt } from '../../src/streams/records';
import { gradeResponse, isTaskPrompt, normalizeResponse } from '../../src/tasks';
import { UsageError } from '../../src/util/errors';

function taskPrompt(task: string, text: string, answer: string): Prompt {
  return { id: `id-${text}`, text, source: 'tasks', tags: [task], meta: { task, answer, split: 'train' }, createdAt: 0n };
}

const add = taskPrompt('add', 'add 13+5=', '18');
const count = taskPrompt('count', 'count a abcab=', '2');
const rev = taskPrompt('rev', 'rev cat=', 'tac');
const sort = taskPrompt('sort', 'sort 4132=', '1234');
const upper = taskPrompt('upper', 'upper dog=', 'DOG');

describe('normalizeResponse', () => {
  test('trims whitespace and cuts at a line break', () => {
    assert.equal(normalizeResponse('  18 \nadd 1+1=2'), '18');
    assert.equal(normalizeResponse('\n18'), '18');
    assert.equal(normalizeResponse('tac\r\n'), 'tac');
  });

  test('cuts at a NUL byte', () => {
    assert.equal(normalizeResponse('DOG\0\0\0'), 'DOG');
  });
});

describe('gradeResponse', () => {
  test('exact answers score 1 in every family', () => {
    for (const prompt of [add, count, rev, sort, upper]) {
      assert.equal(gradeResponse(prompt, prompt.meta.answer!), 1, prompt.text);
    }
  });

  test('whitespace and end of text are tolerated', () => {
    assert.equal(gradeResponse(add, ' 18\n'), 1);
    assert.equal(gradeResponse(rev, 'tac\nrev dog=god'), 1);
    assert.equal(gradeResponse(upper, 'DOG\0'), 1);
  });

  test('numeric families credit closeness', () => {
    assert.equal(gradeResponse(add, '17'), 0.25);
    assert.equal(gradeResponse(add, '19'), 0.25);
    assert.equal(gradeResponse(add, '20'), 0.5 / 3);
    assert.equal(gradeResponse(count, '3'), 0.25);
    assert.ok(gradeResponse(add, '17') > gradeResponse(add, '28'));
  });

  test('numeric families give 0 to non-integers', () => {
    assert.equal(gradeResponse(add, 'eighteen'), 0);
    assert.equal(gradeResponse(add, '18a'), 0);
    assert.equal(gradeResponse(add, ''), 0);
    assert.equal(gradeResponse(count, '2.0'), 0);
  });

  test('string families credit equal positions', () => {
    assert.equal(gradeResponse(rev, 'tab'), (0.8 * 2) / 3);
    assert.equal(gradeResponse(rev, 'cat'), (0.8 * 1) / 3);
    assert.equal(gradeResponse(sort, '1243'), (0.8 * 2) / 4);
    assert.equal(gradeResponse(sort, '12345'), (0.8 * 4) / 5);
    assert.equal(gradeResponse(upper, 'DOg'), (0.8 * 2) / 3);
    assert.equal(gradeResponse(upper, 'dog'), 0);
    assert.equal(gradeResponse(rev, ''), 0);
  });

  test('near misses stay below exact answers', () => {
    for (const [prompt, miss] of [
      [add, '19'],
      [rev, 'tacx'],
      [sort, '1234 5'],
      [upper, 'DOGG'],
    ] as const) {
      const score = gradeResponse(prompt, miss);
      assert.ok(score > 0, `${prompt.text} ${miss} scored ${score}`);
      assert.ok(score < 0.8, `${prompt.text} ${miss} scored ${score}`);
    }
  });

  test('prompt without an answer is a usage error', () => {
    const plain: Prompt = { id: 'p1', text: 'hello', source: 'feed', tags: [], meta: {}, createdAt: 0n };
    assert.equal(isTaskPrompt(plain), false);
    assert.throws(
      () => gradeResponse(plain, 'x'),
      (error: unknown) => error instanceof UsageError && /prompt p1 has no meta.task/.test(error.message),
    );
  });

  test('unknown family is a usage error', () => {
    const odd = taskPrompt('mul', 'mul 2*3=', '6');
    assert.equal(isTaskPrompt(odd), false);
    assert.throws(() => gradeResponse(odd, '6'), /unknown task family "mul"/);
  });
});
