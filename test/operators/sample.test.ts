import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { NEVER, from, lastValueFrom, toArray } from 'rxjs';
import { candidateSeed, sample, seedToUint32 } from '../../src/operators/sample';
import { type Flow, type SampledItem, type SamplerHandle, deadLetter, isDeadLetter } from '../../src/operators/types';
import { contentHash } from '../../src/util/hash';
import { UsageError } from '../../src/util/errors';
import { chainItem, newTestScheduler, standInPolicy, standInTexts } from './fixtures';

function sampled(id: string, version: string, k: number, round = 1): SampledItem {
  const item = chainItem(id, round);
  return {
    ...item,
    policyVersion: version,
    seed: candidateSeed(id, round),
    candidates: standInTexts(item.prompt, k).map((row) => ({ id: contentHash([id, row.text]), ...row })),
  };
}

describe('candidateSeed', () => {
  test('is stable and fits int64', () => {
    const seed = candidateSeed('q1', 3);
    assert.equal(seed, candidateSeed('q1', 3));
    assert.ok(seed >= -(2n ** 63n));
    assert.ok(seed < 2n ** 63n);
  });

  test('differs by round and prompt', () => {
    assert.notEqual(candidateSeed('q1', 1), candidateSeed('q1', 2));
    assert.notEqual(candidateSeed('q1', 1), candidateSeed('q2', 1));
  });

  test('seedToUint32 keeps the low 32 bits', () => {
    assert.equal(seedToUint32(-1n), 2 ** 32 - 1);
    assert.equal(seedToUint32(2n ** 32n + 5n), 5);
  });
});

describe('sample', () => {
  test('draws K candidates per prompt in one batch', () => {
    newTestScheduler().run(({ hot, expectObservable }) => {
      const calls: Parameters<typeof standInPolicy>[2] = [];
      const source = hot('-a-b-|', { a: chainItem('a'), b: chainItem('b') });
      const output = source.pipe(sample({ policy: () => standInPolicy('p1', 2, calls), k: 2, batchSize: 2, batchWindowMs: 10 }));
      expectObservable(output).toBe('-----(xy|)', { x: sampled('a', 'p1', 2), y: sampled('b', 'p1', 2) });
      return () => {
        assert.equal(calls.length, 1);
        assert.deepEqual(calls[0]?.seeds, [candidateSeed('a', 1), candidateSeed('b', 1)]);
      };
    });
  });

  test('closes a partial batch when its window ends', () => {
    const scheduler = newTestScheduler();
    const calls: Parameters<typeof standInPolicy>[2] = [];
    scheduler.run(({ hot, expectObservable }) => {
      const source = hot('a--b------c--|', { a: chainItem('a'), b: chainItem('b'), c: chainItem('c') });
      const output = source.pipe(sample({ policy: () => standInPolicy('p1', 0, calls), k: 1, batchSize: 10, batchWindowMs: 5 }));
      expectObservable(output).toBe('-----(xy)----(z|)', {
        x: sampled('a', 'p1', 1),
        y: sampled('b', 'p1', 1),
        z: sampled('c', 'p1', 1),
      });
    });
    assert.deepEqual(
      calls.map((call) => call.promptIds),
      [['a', 'b'], ['c']],
    );
  });

  test('dead-letters only the prompt the sampler fails on', () => {
    const failing: SamplerHandle = {
      version: 'p1',
      sample: (prompts, seeds, k, signal) => {
        if (prompts.some((prompt) => prompt.id === 'bad')) throw new Error('prompt too long');
        return standInPolicy('p1').sample(prompts, seeds, k, signal);
      },
    };
    newTestScheduler().run(({ hot, expectObservable }) => {
      const source = hot('-a-b-c----|', { a: chainItem('a'), b: chainItem('bad'), c: chainItem('c') });
      const output = source.pipe(sample({ policy: () => failing, k: 1, batchSize: 3, batchWindowMs: 10 }));
      expectObservable(output).toBe('-----(xdz)|', {
        x: sampled('a', 'p1', 1),
        d: deadLetter(chainItem('bad'), 'sample', 'prompt too long', 5),
        z: sampled('c', 'p1', 1),
      });
    });
  });

  test('dead-letters a row with the wrong candidate count', async () => {
    // A Promise-based sampler, as production ones are, on the real scheduler.
    const short: SamplerHandle = { version: 'p1', sample: (prompts) => Promise.resolve(prompts.map(() => [])) };
    const outputs = await lastValueFrom(
      from([chainItem('a')]).pipe(sample({ policy: () => short, k: 2, batchSize: 1, batchWindowMs: 0 }), toArray()),
    );
    assert.equal(outputs.length, 1);
    const [only] = outputs;
    assert.ok(isDeadLetter(only));
    assert.equal(only.failure.promptId, 'a');
    assert.match(only.failure.error, /0 candidates for prompt a; expected k = 2/);
  });

  test('redelivered prompt gets the same ids', () => {
    const outputs: Flow<SampledItem>[] = [];
    newTestScheduler().run(({ hot, flush }) => {
      const source = hot('-a----a|', { a: chainItem('q7', 2) });
      source
        .pipe(sample({ policy: () => standInPolicy('p1'), k: 3, batchSize: 1, batchWindowMs: 0 }))
        .subscribe((value) => outputs.push(value));
      flush();
    });
    const [first, second] = outputs as SampledItem[];
    assert.equal(outputs.length, 2);
    assert.deepEqual(
      second?.candidates.map((candidate) => candidate.id),
      first?.candidates.map((candidate) => candidate.id),
    );
    assert.equal(second?.seed, first?.seed);
    assert.equal(first?.candidates[0]?.id, contentHash(['q7', 'question q7 #0']));
  });

  test('unsubscribe aborts the sampler call', () => {
    const signals: AbortSignal[] = [];
    const stalled: SamplerHandle = {
      version: 'p1',
      sample: (_prompts, _seeds, _k, signal) => {
        signals.push(signal);
        return NEVER;
      },
    };
    newTestScheduler().run(({ hot, expectObservable }) => {
      const source = hot('-a---', { a: chainItem('a') });
      expectObservable(source.pipe(sample({ policy: () => stalled, k: 1, batchSize: 1, batchWindowMs: 0 })), '^--!').toBe('---');
    });
    assert.equal(signals.length, 1);
    assert.equal(signals[0]?.aborted, true);
  });

  test('hot swap applies from the next batch', () => {
    const scheduler = newTestScheduler();
    const calls: Parameters<typeof standInPolicy>[2] = [];
    let current = standInPolicy('p1', 6, calls);
    scheduler.run(({ hot, expectObservable }) => {
      scheduler.schedule(() => {
        current = standInPolicy('p2', 6, calls);
      }, 3);
      const source = hot('a-------b|', { a: chainItem('a'), b: chainItem('b') });
      const output = source.pipe(sample({ policy: () => current, k: 1, batchSize: 1, batchWindowMs: 0 }));
      // Batch a started with p1 at frame 0 and keeps it although p2 arrives at frame 3.
      expectObservable(output).toBe('------x-------(y|)', { x: sampled('a', 'p1', 1), y: sampled('b', 'p2', 1) });
    });
    assert.deepEqual(
      calls.map((call) => call.version),
      ['p1', 'p2'],
    );
  });

  test('rejects invalid options', () => {
    assert.throws(() => sample({ policy: () => standInPolicy('p1'), k: 0, batchSize: 0, batchWindowMs: -1 }), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /k must be an integer >= 1, got 0/);
      assert.match(error.message, /batchSize must be an integer >= 1, got 0/);
      assert.match(error.message, /batchWindowMs must be a number >= 0, got -1/);
      return true;
    });
  });
});
