import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { NEVER } from 'rxjs';
import { score } from '../../src/operators/score';
import { type Flow, type ScoredItem, type ScorerHandle, deadLetter } from '../../src/operators/types';
import { newTestScheduler, sampledItem, standInStudent } from './fixtures';

const texts = ['yes', 'no', 'maybe'];
const byPrompt = (promptId: string, count: number): number[] =>
  Array.from({ length: count }, (_unused, index) => (promptId === 'b' ? -index : index));

function scored(id: string, version: string): ScoredItem {
  return { ...sampledItem(id, texts), studentVersion: version, studentScores: byPrompt(id, texts.length) };
}

describe('score', () => {
  test('scores every candidate in batches', () => {
    const calls: Parameters<typeof standInStudent>[3] = [];
    newTestScheduler().run(({ hot, expectObservable }) => {
      const source = hot('-a-b-c-|', { a: sampledItem('a', texts), b: sampledItem('b', texts), c: sampledItem('c', texts) });
      const output = source.pipe(score({ student: () => standInStudent('s1', byPrompt, 1, calls), batchSize: 2, batchWindowMs: 10 }));
      expectObservable(output).toBe('----(xy)(z|)', { x: scored('a', 's1'), y: scored('b', 's1'), z: scored('c', 's1') });
    });
    assert.deepEqual(
      calls.map((call) => call.promptIds),
      [['a', 'b'], ['c']],
    );
  });

  test('dead-letters non-finite scores', () => {
    const broken = standInStudent('s1', (promptId, count) =>
      promptId === 'bad' ? Array.from({ length: count }, () => Number.NaN) : byPrompt(promptId, count),
    );
    newTestScheduler().run(({ hot, expectObservable }) => {
      const source = hot('-a-b---|', { a: sampledItem('bad', texts), b: sampledItem('b', texts) });
      const output = source.pipe(score({ student: () => broken, batchSize: 2, batchWindowMs: 10 }));
      expectObservable(output).toBe('---(db)|', {
        d: deadLetter(
          sampledItem('bad', texts),
          'score',
          'student s1 returned invalid scores for prompt bad: expected 3 finite numbers, got [null,null,null]',
          3,
        ),
        b: scored('b', 's1'),
      });
    });
  });

  test('passes earlier dead letters through', () => {
    const earlier = deadLetter(sampledItem('x', texts), 'sample', 'sampler failed', 0);
    newTestScheduler().run(({ hot, expectObservable }) => {
      const source = hot<Flow<ReturnType<typeof sampledItem>>>('-d-a-|', { d: earlier, a: sampledItem('a', texts) });
      const output = source.pipe(score({ student: () => standInStudent('s1', byPrompt), batchSize: 1, batchWindowMs: 0 }));
      expectObservable(output).toBe('-d-a-|', { d: earlier, a: scored('a', 's1') });
    });
  });

  test('redelivered prompt scores the same', () => {
    newTestScheduler().run(({ hot, expectObservable }) => {
      const source = hot('-a--a|', { a: sampledItem('a', texts) });
      const output = source.pipe(score({ student: () => standInStudent('s1', byPrompt), batchSize: 1, batchWindowMs: 0 }));
      expectObservable(output).toBe('-x--x|', { x: scored('a', 's1') });
    });
  });

  test('unsubscribe aborts the scorer call', () => {
    const signals: AbortSignal[] = [];
    const stalled: ScorerHandle = {
      version: 's1',
      score: (_batch, signal) => {
        signals.push(signal);
        return NEVER;
      },
    };
    newTestScheduler().run(({ hot, expectObservable }) => {
      const source = hot('a----', { a: sampledItem('a', texts) });
      expectObservable(source.pipe(score({ student: () => stalled, batchSize: 1, batchWindowMs: 0 })), '^-!').toBe('---');
    });
    assert.equal(signals[0]?.aborted, true);
  });

  test('student lookup failure dead-letters the batch', () => {
    newTestScheduler().run(({ hot, expectObservable }) => {
      const source = hot('-a-|', { a: sampledItem('a', texts) });
      const missing = (): ScorerHandle => {
        throw new Error('no student loaded');
      };
      const output = source.pipe(score({ student: missing, batchSize: 1, batchWindowMs: 0 }));
      expectObservable(output).toBe('-d-|', { d: deadLetter(sampledItem('a', texts), 'score', 'no student loaded', 1) });
    });
  });
});
