import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { studentAgreement } from '../../src/run/evaluate';
import type { TeacherComparison } from '../../src/training/replay-buffer';

function comparison(prompt: string, chosen: string, rejected: string): TeacherComparison {
  return { id: `${prompt}|${chosen}|${rejected}`, prompt, chosen, rejected };
}

/** A student that scores a response by its length. */
const byLength = async (items: Array<{ prompt: string; response: string }>) => items.map((item) => item.response.length);

describe('studentAgreement', () => {
  test('weights every prompt equally', async () => {
    // Prompt "a" has ten comparisons, all ordered against the student; "b" and "c" one each,
    // ordered like the student. Per comparison that would be 2 / 12.
    const comparisons = [
      ...Array.from({ length: 10 }, (_, i) => comparison('a', 'x', `yy${i}`)),
      comparison('b', 'long', 's'),
      comparison('c', 'longer', 'sh'),
    ];
    assert.equal(await studentAgreement(byLength, comparisons), 2 / 3);
  });

  test('ties count half', async () => {
    const comparisons = [comparison('a', 'xx', 'yy'), comparison('a', 'xxx', 'y'), comparison('b', 'x', 'yy')];
    assert.equal(await studentAgreement(byLength, comparisons), (0.75 + 0) / 2);
  });

  test('no comparisons give 0', async () => {
    assert.equal(await studentAgreement(byLength, []), 0);
  });
});
