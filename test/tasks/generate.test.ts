import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  TASK_CREATED_AT,
  TASK_FAMILY_NAMES,
  generateTaskPrompts,
  gradeResponse,
  taskSplitOf,
} from '../../src/tasks';
import { contentHash } from '../../src/util/hash';
import { UsageError } from '../../src/util/errors';

describe('generateTaskPrompts', () => {
  test('same options give identical prompts', () => {
    const first = generateTaskPrompts({ count: 50, seed: 7, split: 'train' });
    const second = generateTaskPrompts({ count: 50, seed: 7, split: 'train' });
    assert.deepEqual(first, second);
  });

  test('different seeds give different prompts', () => {
    const first = generateTaskPrompts({ count: 20, seed: 1, split: 'train' }).map((p) => p.text);
    const second = generateTaskPrompts({ count: 20, seed: 2, split: 'train' }).map((p) => p.text);
    assert.notDeepEqual(first, second);
  });

  test('records carry id, source, tags and meta', () => {
    const prompts = generateTaskPrompts({ count: 10, seed: 3, split: 'heldout' });
    for (const prompt of prompts) {
      assert.equal(prompt.id, contentHash(['tasks', prompt.text]));
      assert.equal(prompt.source, 'tasks');
      assert.equal(prompt.createdAt, TASK_CREATED_AT);
      assert.equal(typeof prompt.createdAt, 'bigint');
      assert.deepEqual(prompt.tags, [prompt.meta.task]);
      assert.equal(prompt.meta.split, 'heldout');
      assert.deepEqual(Object.keys(prompt.meta).sort(), ['answer', 'split', 'task']);
    }
  });

  test('families cycle in order', () => {
    const prompts = generateTaskPrompts({ count: 10, seed: 4, split: 'train' });
    assert.deepEqual(
      prompts.map((p) => p.meta.task),
      [...TASK_FAMILY_NAMES, ...TASK_FAMILY_NAMES],
    );
  });

  test('family filter keeps only those families', () => {
    const prompts = generateTaskPrompts({ count: 9, seed: 5, split: 'train', families: ['rev', 'upper'] });
    assert.ok(prompts.every((p) => p.meta.task === 'rev' || p.meta.task === 'upper'));
    assert.ok(prompts[0]!.text.startsWith('rev '));
    assert.ok(prompts[1]!.text.startsWith('upper '));
  });

  test('prompts within one call are distinct', () => {
    const prompts = generateTaskPrompts({ count: 300, seed: 6, split: 'train' });
    assert.equal(new Set(prompts.map((p) => p.id)).size, 300);
  });

  test('prompts and answers stay short', () => {
    const prompts = generateTaskPrompts({
      count: 500,
      seed: 8,
      split: 'train',
      difficulty: { maxOperand: 99_999, maxWordLength: 6, maxDigits: 6 },
    });
    for (const prompt of prompts) {
      assert.ok(Buffer.byteLength(prompt.text) <= 24, `prompt "${prompt.text}" is longer than 24 bytes`);
      const answerBytes = Buffer.byteLength(prompt.meta.answer!);
      assert.ok(answerBytes >= 1, `answer of "${prompt.text}" is empty`);
      assert.ok(answerBytes <= 6, `answer "${prompt.meta.answer}" is longer than 6 bytes`);
      assert.ok(prompt.text.endsWith('='), `prompt "${prompt.text}" does not end with "="`);
    }
  });

  test('reference answers grade as exact', () => {
    for (const prompt of generateTaskPrompts({ count: 100, seed: 9, split: 'train' })) {
      assert.equal(gradeResponse(prompt, prompt.meta.answer!), 1, prompt.text);
    }
  });

  test('answers follow each family rule', () => {
    for (const prompt of generateTaskPrompts({ count: 100, seed: 10, split: 'train' })) {
      const [family, ...rest] = prompt.text.slice(0, -1).split(' ');
      const answer = prompt.meta.answer!;
      if (family === 'add') {
        const [a, b] = rest[0]!.split('+').map(Number);
        assert.equal(answer, String(a! + b!), prompt.text);
      } else if (family === 'rev') {
        assert.equal(answer, [...rest[0]!].reverse().join(''), prompt.text);
      } else if (family === 'sort') {
        assert.equal(answer, [...rest[0]!].sort().join(''), prompt.text);
      } else if (family === 'count') {
        assert.equal(answer, String([...rest[1]!].filter((c) => c === rest[0]).length), prompt.text);
      } else {
        assert.equal(family, 'upper');
        assert.equal(answer, rest[0]!.toUpperCase(), prompt.text);
      }
    }
  });
});

describe('train and held-out split', () => {
  test('splits share no prompt', () => {
    const train = generateTaskPrompts({ count: 1000, seed: 11, split: 'train' });
    const heldout = generateTaskPrompts({ count: 200, seed: 11, split: 'heldout' });
    const trainTexts = new Set(train.map((p) => p.text));
    const shared = heldout.filter((p) => trainTexts.has(p.text));
    assert.deepEqual(shared.map((p) => p.text), []);
  });

  test('split depends on the text alone', () => {
    for (const split of ['train', 'heldout'] as const) {
      for (const seed of [1, 2, 3]) {
        for (const prompt of generateTaskPrompts({ count: 50, seed, split })) {
          assert.equal(taskSplitOf(prompt.text), split, prompt.text);
        }
      }
    }
  });

  test('held-out share is near its percentage', () => {
    const texts = Array.from({ length: 2000 }, (_, i) => `add ${i}+${i % 7}=`);
    const heldout = texts.filter((text) => taskSplitOf(text) === 'heldout').length;
    assert.ok(heldout > 300, `held-out share ${heldout}/2000 is far below 20%`);
    assert.ok(heldout < 500, `held-out share ${heldout}/2000 is far above 20%`);
  });
});

describe('generateTaskPrompts usage errors', () => {
  test('unknown family lists the allowed ones', () => {
    assert.throws(
      () => generateTaskPrompts({ count: 1, seed: 1, split: 'train', families: ['mul'] }),
      (error: unknown) =>
        error instanceof UsageError && /unknown task family "mul"/.test(error.message) && /add, rev/.test(error.message),
    );
  });

  test('invalid count, seed and split are rejected', () => {
    assert.throws(() => generateTaskPrompts({ count: -1, seed: 1, split: 'train' }), UsageError);
    assert.throws(() => generateTaskPrompts({ count: 1.5, seed: 1, split: 'train' }), UsageError);
    assert.throws(() => generateTaskPrompts({ count: 1, seed: 0.5, split: 'train' }), UsageError);
    assert.throws(
      () => generateTaskPrompts({ count: 1, seed: 1, split: 'test' as 'train' }),
      /invalid task split "test"/,
    );
  });

  test('invalid difficulty names the parameter', () => {
    assert.throws(
      () => generateTaskPrompts({ count: 1, seed: 1, split: 'train', difficulty: { maxWordLength: 9 } }),
      /maxWordLength=9/,
    );
    assert.throws(
      () => generateTaskPrompts({ count: 1, seed: 1, split: 'train', difficulty: { minDigits: 5, maxDigits: 4 } }),
      /minDigits=5 exceeds maxDigits=4/,
    );
  });

  test('exhausted family is an error, not a loop', () => {
    // With operands up to 1 there are only 4 add prompts in both splits together.
    assert.throws(
      () => generateTaskPrompts({ count: 5, seed: 1, split: 'train', families: ['add'], difficulty: { maxOperand: 1 } }),
      (error: unknown) => error instanceof UsageError && /task family "add" has run out/.test(error.message),
    );
  });
});
