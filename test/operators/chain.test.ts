import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { NEVER, type OperatorFunction, ReplaySubject, Subject, firstValueFrom, lastValueFrom, map, of, timer, toArray } from 'rxjs';
import type { ModelUpdate } from '../../src/streams/records';
import type { ConsumedMessage } from '../../src/streams/transport';
import { type AlignChainOptions, type PromptOutcome, alignChain } from '../../src/operators/chain';
import { ModelRegistry } from '../../src/operators/registry';
import type { ChainItem, RankingTeacher, SamplerHandle } from '../../src/operators/types';
import { chainItem, newTestScheduler, standInPolicy, standInStudent } from './fixtures';

const silent = pino({ level: 'silent' });

/** Student scores: prompts whose id starts with "sure" get a wide gap (confident), others a narrow one. */
const studentScores = (promptId: string, count: number): number[] =>
  Array.from({ length: count }, (_unused, index) => (promptId.startsWith('sure') ? 4 : 0.1) * (count - index));

/** Teacher that prefers the last shortlisted candidate, after `delayMs`. */
function standInTeacher(delayMs: number, signals: AbortSignal[] = []): RankingTeacher {
  return {
    name: 'judge',
    rank: (_prompt, shortlist, signal) => {
      signals.push(signal);
      return timer(delayMs).pipe(map(() => shortlist.map((_candidate, index) => index)));
    },
  };
}

function chainOptions(overrides: Partial<AlignChainOptions> = {}): AlignChainOptions {
  return {
    models: { policy: () => standInPolicy('p1', 1), student: () => standInStudent('s1', studentScores, 1) },
    teacher: standInTeacher(5),
    k: 3,
    batchSize: 4,
    batchWindowMs: 2,
    gate: { tau: 0.8, temperature: 1, auditFraction: 0 },
    judge: {
      shortlistSize: 1,
      concurrency: 2,
      timeoutMs: 1000,
      retry: { maxRetries: 1, baseDelayMs: 10, maxDelayMs: 100, maxRetryAfterMs: 1000 },
      jitter: () => 0,
    },
    minMargin: 0,
    maxInFlight: 8,
    ...overrides,
  };
}

function runChainWith(
  operator: OperatorFunction<ChainItem, PromptOutcome>,
  marble: string,
  items: Record<string, ChainItem>,
): PromptOutcome[] {
  const outcomes: PromptOutcome[] = [];
  newTestScheduler().run(({ hot, flush }) => {
    hot(marble, items).pipe(operator).subscribe((outcome) => outcomes.push(outcome));
    flush();
  });
  return outcomes;
}

function runChain(options: AlignChainOptions, marble: string, items: Record<string, ChainItem>): PromptOutcome[] {
  return runChainWith(alignChain(options).operator, marble, items);
}

describe('alignChain', () => {
  test('emits one outcome per prompt with its records', () => {
    const outcomes = runChain(chainOptions(), '-a-b-|', { a: chainItem('sure-a'), b: chainItem('unsure-b') });
    assert.deepEqual(
      outcomes.map((outcome) => outcome.item.prompt.id),
      ['sure-a', 'unsure-b'],
    );
    const [sure, unsure] = outcomes;
    assert.equal(sure!.records.candidates[0]!.decision, 'STUDENT');
    assert.equal(sure!.records.judgments.length, 0);
    assert.equal(sure!.records.pairs[0]!.labeler, 'STUDENT');
    assert.equal(unsure!.records.candidates[0]!.decision, 'TEACHER');
    assert.equal(unsure!.records.judgments.length, 1);
    assert.equal(unsure!.records.pairs[0]!.labeler, 'TEACHER');
    // The teacher prefers the last shortlisted candidate, the student's worst.
    assert.equal(unsure!.records.pairs[0]!.chosen, 'question unsure-b #2');
    assert.deepEqual(unsure!.records.dlq, []);
  });

  test('a failing prompt becomes a dead letter', () => {
    const failing: SamplerHandle = {
      version: 'p1',
      sample: (prompts, seeds, k, signal) => {
        if (prompts.some((prompt) => prompt.id === 'bad')) throw new Error('prompt too long for the context window');
        return standInPolicy('p1').sample(prompts, seeds, k, signal);
      },
    };
    const source: ConsumedMessage = {
      topic: 'tsalign.prompts',
      partition: 2,
      offset: 41,
      key: Buffer.from('bad'),
      value: Buffer.from([1, 2, 3]),
      headers: {},
      timestamp: 0,
    };
    const options = chainOptions({ models: { policy: () => failing, student: () => standInStudent('s1', studentScores) } });
    const outcomes = runChain(options, '-a-b-c-|', {
      a: chainItem('sure-a'),
      b: { ...chainItem('bad'), source },
      c: chainItem('sure-c'),
    });
    assert.equal(outcomes.length, 3);
    const bad = outcomes.find((outcome) => outcome.item.prompt.id === 'bad')!;
    assert.equal(bad.paired, null);
    assert.equal(bad.records.candidates.length, 0);
    assert.equal(bad.records.dlq.length, 1);
    const letter = bad.records.dlq[0]!;
    assert.equal(letter.topic, 'tsalign.prompts');
    assert.equal(letter.partition, 2);
    assert.equal(letter.offset, 41n);
    assert.equal(letter.key, 'bad');
    assert.deepEqual(letter.value, Buffer.from([1, 2, 3]));
    assert.equal(letter.error, 'sample failed for prompt bad in round 1: prompt too long for the context window');
    assert.equal(outcomes.filter((outcome) => outcome.records.pairs.length === 1).length, 2);
  });

  test('teacher failure falls back to the student', async () => {
    // A Promise-based teacher, as production ones are, on the real scheduler.
    const broken: RankingTeacher = { name: 'judge', rank: () => Promise.reject(new Error('400 bad request')) };
    const chain = alignChain(chainOptions({ teacher: broken, batchWindowMs: 0 }));
    const [only] = await lastValueFrom(of(chainItem('unsure-a')).pipe(chain.operator, toArray()));
    assert.equal(only!.records.candidates[0]!.decision, 'TEACHER');
    assert.match(only!.records.judgments[0]!.error!, /400 bad request/);
    assert.equal(only!.records.pairs[0]!.labeler, 'STUDENT');
    assert.equal(only!.records.dlq.length, 1);
    assert.match(only!.records.dlq[0]!.error, /^teacher failed for prompt unsure-a in round 1/);
  });

  test('redelivered prompt yields the same ids', () => {
    const cache = new Map<string, readonly number[]>();
    const options = chainOptions();
    options.judge = { ...options.judge, cache };
    const outcomes = runChain(options, '-a------------a|', { a: chainItem('unsure-a') });
    const [first, second] = outcomes;
    assert.equal(outcomes.length, 2);
    assert.deepEqual(
      second!.records.candidates[0]!.candidates.map((candidate) => candidate.id),
      first!.records.candidates[0]!.candidates.map((candidate) => candidate.id),
    );
    assert.equal(second!.records.judgments[0]!.id, first!.records.judgments[0]!.id);
    assert.equal(second!.records.judgments[0]!.cached, true);
    assert.equal(second!.records.pairs[0]!.id, first!.records.pairs[0]!.id);
  });

  test('unsubscribe aborts the teacher and returns credits', () => {
    const signals: AbortSignal[] = [];
    const stalled: RankingTeacher = {
      name: 'judge',
      rank: (_prompt, _shortlist, signal) => {
        signals.push(signal);
        return NEVER;
      },
    };
    const chain = alignChain(chainOptions({ teacher: stalled }));
    newTestScheduler().run(({ hot, expectObservable }) => {
      const source = hot('-a-b', { a: chainItem('unsure-a'), b: chainItem('unsure-b') });
      expectObservable(source.pipe(chain.operator), '^-------!').toBe('');
    });
    assert.deepEqual(
      signals.map((signal) => signal.aborted),
      [true, true],
    );
    assert.equal(chain.limit.inFlight, 0);
  });

  test('holds at most maxInFlight prompts', () => {
    const sampled: string[][] = [];
    const policy = standInPolicy('p1', 1);
    const watched: SamplerHandle = {
      version: 'p1',
      sample: (prompts, seeds, k, signal) => {
        sampled.push(prompts.map((prompt) => prompt.id));
        return policy.sample(prompts, seeds, k, signal);
      },
    };
    const options = chainOptions({ maxInFlight: 2, teacher: standInTeacher(20) });
    const chain = alignChain({ ...options, models: { ...options.models, policy: () => watched } });
    let maxSeen = 0;
    chain.limit.available$.subscribe(() => {
      maxSeen = Math.max(maxSeen, chain.limit.inFlight);
    });
    const ids = ['unsure-1', 'unsure-2', 'unsure-3', 'unsure-4', 'unsure-5'];
    const items = Object.fromEntries(ids.map((id, index) => [String(index + 1), chainItem(id)]));
    const outcomes = runChainWith(chain.operator, '(12345|)', items);
    assert.equal(outcomes.length, 5);
    assert.equal(maxSeen, 2);
    // The first two prompts fill the limit; the others enter as outcomes free credits.
    assert.deepEqual(sampled[0], ['unsure-1', 'unsure-2']);
    assert.ok(sampled.every((batch) => batch.length <= 2));
    assert.equal(chain.limit.inFlight, 0);
  });

  test('source can wait for a free credit', async () => {
    const chain = alignChain(chainOptions({ maxInFlight: 1 }));
    assert.equal(await chain.limit.whenAvailable(), 1);
    assert.equal(chain.limit.tryAcquire(), true);
    let resolved = false;
    const waiting = chain.limit.whenAvailable().then(() => {
      resolved = true;
    });
    await Promise.resolve();
    assert.equal(resolved, false);
    chain.limit.release();
    await waiting;
    assert.equal(resolved, true);
  });

  test('metrics report the counters', () => {
    const chain = alignChain(chainOptions());
    newTestScheduler().run(({ hot, flush }) => {
      hot('-a-b-|', { a: chainItem('sure-a'), b: chainItem('unsure-b') }).pipe(chain.operator).subscribe();
      flush();
    });
    const byName = new Map(chain.metrics(1000).map((metric) => [metric.name, metric.value]));
    assert.equal(byName.get('chain/outcomes'), 2);
    assert.equal(byName.get('gate/teacher'), 1);
    assert.equal(byName.get('teacher/calls'), 1);
    assert.equal(byName.get('pairs/teacherPairs'), 1);
    assert.equal(byName.get('chain/in_flight'), 0);
  });
});

describe('ModelRegistry', () => {
  const update = (version: string, model: ModelUpdate['model'] = 'POLICY'): ModelUpdate => ({
    model,
    version,
    parentVersion: 'p1',
    round: 1,
    uri: `/checkpoints/${version}`,
    sha256: 'ab'.repeat(32),
    step: 10n,
    metrics: {},
  });

  test('swaps to a loaded version', async () => {
    const registry = new ModelRegistry({ policy: standInPolicy('p1'), student: standInStudent('s1', studentScores) }, silent);
    const result = await registry.swap(update('p2'), async () => standInPolicy('p2'));
    assert.deepEqual(result, { update: update('p2'), swapped: true, error: null });
    assert.equal(registry.policy().version, 'p2');
    assert.equal(registry.student().version, 's1');
  });

  test('keeps the old version when a load fails', async () => {
    const registry = new ModelRegistry({ policy: standInPolicy('p1'), student: standInStudent('s1', studentScores) }, silent);
    const rejected = firstValueFrom(registry.rejected$);
    const result = await registry.swap(update('p2'), () => Promise.reject(new Error('sha256 mismatch')));
    assert.equal(result.swapped, false);
    assert.equal(result.error, 'loading POLICY p2 from /checkpoints/p2 failed: sha256 mismatch');
    assert.equal(registry.policy().version, 'p1');
    assert.equal((await rejected).update.version, 'p2');
  });

  test('rejects a handle of the wrong version or kind', async () => {
    const registry = new ModelRegistry({ policy: standInPolicy('p1'), student: standInStudent('s1', studentScores) }, silent);
    const wrongVersion = await registry.swap(update('p2'), async () => standInPolicy('p3'));
    assert.match(wrongVersion.error!, /loader returned version p3 for update POLICY p2/);
    const wrongKind = await registry.swap(update('s2', 'STUDENT'), async () => standInPolicy('s2'));
    assert.match(wrongKind.error!, /without score\(\) for STUDENT s2/);
    assert.equal(registry.policy().version, 'p1');
    assert.equal(registry.student().version, 's1');
  });

  test('skips a redelivered update', async () => {
    const registry = new ModelRegistry({ policy: standInPolicy('p1'), student: standInStudent('s1', studentScores) }, silent);
    let loads = 0;
    const load = async () => {
      loads += 1;
      return standInPolicy('p2');
    };
    await registry.swap(update('p2'), load);
    const again = await registry.swap(update('p2'), load);
    assert.deepEqual(again, { update: update('p2'), swapped: false, error: null });
    assert.equal(loads, 1);
  });

  test('chain picks up a swap between prompts', async () => {
    const registry = new ModelRegistry({ policy: standInPolicy('p1'), student: standInStudent('s1', studentScores) }, silent);
    const chain = alignChain(chainOptions({ models: registry, batchWindowMs: 0 }));
    const prompts = new Subject<ChainItem>();
    const outcomes = new ReplaySubject<PromptOutcome>();
    prompts.pipe(chain.operator).subscribe(outcomes);

    prompts.next(chainItem('sure-a'));
    const first = await firstValueFrom(outcomes);
    await registry.swap(update('p2'), async () => standInPolicy('p2'));
    prompts.next(chainItem('sure-b'));
    prompts.complete();
    const all = await lastValueFrom(outcomes.pipe(toArray()));

    assert.equal(first.records.candidates[0]!.policyVersion, 'p1');
    assert.equal(all.length, 2);
    assert.equal(all[1]!.item.prompt.id, 'sure-b');
    assert.equal(all[1]!.records.candidates[0]!.policyVersion, 'p2');
  });
});
