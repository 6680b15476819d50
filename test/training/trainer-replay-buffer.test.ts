import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayBuffer, comparisonsFromRanking, type TeacherComparison } from '../../src/training/replay-buffer';

function comparison(n: number): TeacherComparison {
  return { id: `c${n}`, prompt: 'p', chosen: `b${n}`, rejected: `w${n}` };
}

describe('replay buffer', () => {
  test('ranking implies all ordered pairs', () => {
    const comparisons = comparisonsFromRanking('add 1+1=', [
      { text: '2', score: 1 },
      { text: '3', score: 0.25 },
      { text: 'x', score: 0 },
      { text: 'y', score: 0 },
    ]);
    const pairs = comparisons.map((c) => `${c.chosen}>${c.rejected}`);
    assert.deepEqual(pairs, ['2>3', '2>x', '2>y', '3>x', '3>y']);
    assert.equal(new Set(comparisons.map((c) => c.id)).size, 5);
  });

  test('ties and identical texts give none', () => {
    assert.deepEqual(comparisonsFromRanking('p', [{ text: 'a', score: 1 }, { text: 'b', score: 1 }]), []);
    assert.deepEqual(comparisonsFromRanking('p', [{ text: 'a', score: 1 }, { text: 'a', score: 0 }]), []);
  });

  test('reservoir keeps capacity and ignores repeats', () => {
    const buffer = new ReplayBuffer(10, 7);
    buffer.add(Array.from({ length: 100 }, (_, i) => comparison(i)));
    assert.equal(buffer.size, 10);
    assert.equal(buffer.toJSON().seen, 100);
    const held = buffer.toJSON().items[0]!;
    buffer.add([held]);
    assert.equal(buffer.toJSON().seen, 100);
    const late = buffer.toJSON().items.filter((c) => Number(c.id.slice(1)) >= 10).length;
    assert.ok(late > 0, 'later comparisons replace earlier ones');
  });

  test('same seed gives same contents', () => {
    const a = new ReplayBuffer(5, 3);
    const b = new ReplayBuffer(5, 3);
    const items = Array.from({ length: 50 }, (_, i) => comparison(i));
    a.add(items);
    b.add(items);
    assert.deepEqual(a.toJSON(), b.toJSON());
    assert.deepEqual(a.sample(3, 4), b.sample(3, 4));
  });

  test('sample excludes ids and is distinct', () => {
    const buffer = new ReplayBuffer(20, 1);
    buffer.add(Array.from({ length: 20 }, (_, i) => comparison(i)));
    const drawn = buffer.sample(8, 0, new Set(['c0', 'c1', 'c2']));
    assert.equal(drawn.length, 8);
    assert.equal(new Set(drawn.map((c) => c.id)).size, 8);
    assert.ok(drawn.every((c) => !['c0', 'c1', 'c2'].includes(c.id)));
    assert.equal(buffer.sample(50, 1).length, 20);
  });

  test('restored buffer continues identically', () => {
    const original = new ReplayBuffer(8, 11);
    original.add(Array.from({ length: 30 }, (_, i) => comparison(i)));
    const restored = ReplayBuffer.fromJSON(JSON.parse(JSON.stringify(original.toJSON())));
    const more = Array.from({ length: 30 }, (_, i) => comparison(100 + i));
    original.add(more);
    restored.add(more);
    assert.deepEqual(restored.toJSON(), original.toJSON());
    assert.deepEqual(restored.sample(4, 9), original.sample(4, 9));
  });

  test('zero capacity holds nothing', () => {
    const buffer = new ReplayBuffer(0, 1);
    buffer.add([comparison(1)]);
    assert.equal(buffer.size, 0);
    assert.deepEqual(buffer.sample(3, 0), []);
  });
});
