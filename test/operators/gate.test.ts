import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Decision } from '../../src/streams/records';
import { auditDraw, gate, gateConfidence, newGateStats } from '../../src/operators/gate';
import { type GatedItem, type ScoredItem, deadLetter } from '../../src/operators/types';
import { UsageError } from '../../src/util/errors';
import { newTestScheduler, scoredItem } from './fixtures';

const confident = [3, 0]; // sigmoid(3) = 0.953
const unsure = [0.2, 0]; // sigmoid(0.2) = 0.550
const neverAudit = (): number => 0.99;

function gated(item: ScoredItem, decision: Decision, overBudget = false): GatedItem {
  return {
    ...item,
    candidateSet: {
      promptId: item.prompt.id,
      round: item.round,
      policyVersion: item.policyVersion,
      studentVersion: item.studentVersion,
      seed: item.seed,
      candidates: item.candidates,
      studentScores: item.studentScores,
      confidence: gateConfidence(item.studentScores, 1),
      decision,
      overBudget,
    },
  };
}

describe('gateConfidence', () => {
  test('is sigmoid of the gap over T', () => {
    assert.equal(gateConfidence([2, 0, 1], 1), 1 / (1 + Math.exp(-2)));
    assert.equal(gateConfidence([2, 0], 4), 1 / (1 + Math.exp(-0.5)));
  });

  test('is one half without a gap', () => {
    assert.equal(gateConfidence([], 1), 0.5);
    assert.equal(gateConfidence([1.5], 1), 0.5);
    assert.equal(gateConfidence([1, 1, 1], 1), 0.5);
  });
});

describe('auditDraw', () => {
  test('is deterministic and in [0, 1)', () => {
    const draw = auditDraw('q1', 2);
    assert.equal(draw, auditDraw('q1', 2));
    assert.ok(draw >= 0);
    assert.ok(draw < 1);
    assert.notEqual(draw, auditDraw('q1', 3));
  });

  test('picks about the audit fraction', () => {
    let picked = 0;
    for (let index = 0; index < 2000; index += 1) if (auditDraw(`prompt-${index}`, 1) < 0.1) picked += 1;
    assert.ok(picked > 140, `picked ${picked} of 2000 at fraction 0.1`);
    assert.ok(picked < 260, `picked ${picked} of 2000 at fraction 0.1`);
  });
});

describe('gate', () => {
  test('decides by confidence and audit draw', () => {
    const stats = newGateStats();
    const a = scoredItem('a', confident);
    const b = scoredItem('b', unsure);
    const c = scoredItem('c', confident);
    const one = scoredItem('one', [5]);
    newTestScheduler().run(({ hot, expectObservable }) => {
      const source = hot('-a-b-c-o-|', { a, b, c, o: one });
      const random = (promptId: string): number => (promptId === 'c' ? 0.05 : 0.5);
      const output = source.pipe(gate({ tau: 0.8, temperature: 1, auditFraction: 0.1, random, stats }));
      expectObservable(output).toBe('-a-b-c-o-|', {
        a: gated(a, 'STUDENT'),
        b: gated(b, 'TEACHER'),
        c: gated(c, 'AUDIT'),
        o: gated(one, 'STUDENT'),
      });
    });
    assert.deepEqual(stats, { seen: 4, student: 2, teacher: 1, audit: 1, overBudget: 0, invalid: 0 });
  });

  test('threshold is inclusive', () => {
    const item = scoredItem('a', [2, 0]);
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('-a|', { a: item }).pipe(
        gate({ tau: gateConfidence([2, 0], 1), temperature: 1, auditFraction: 0, random: neverAudit }),
      );
      expectObservable(output).toBe('-a|', { a: gated(item, 'STUDENT') });
    });
  });

  test('budget per minute slides in virtual time', () => {
    const stats = newGateStats();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => scoredItem(id, unsure));
    newTestScheduler().run(({ hot, expectObservable }) => {
      const source = hot('abc 59996ms d 2ms e|', { a, b, c, d, e: scoredItem('e', unsure) });
      const output = source.pipe(
        gate({ tau: 0.8, temperature: 1, auditFraction: 0, random: neverAudit, budget: { perMinute: 2 }, stats }),
      );
      // d arrives at 59999 ms while a (0 ms) and b (1 ms) are in the window; at 60002 ms they are out.
      expectObservable(output).toBe('abc 59996ms d 2ms e|', {
        a: gated(a!, 'TEACHER'),
        b: gated(b!, 'TEACHER'),
        c: gated(c!, 'STUDENT', true),
        d: gated(d!, 'STUDENT', true),
        e: gated(scoredItem('e', unsure), 'TEACHER'),
      });
    });
    assert.equal(stats.overBudget, 2);
    assert.equal(stats.teacher, 3);
  });

  test('budget per round counts audits too', () => {
    const stats = newGateStats();
    const a = scoredItem('a', confident, 1);
    const b = scoredItem('b', unsure, 1);
    const c = scoredItem('c', unsure, 2);
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('abc|', { a, b, c }).pipe(
        gate({ tau: 0.8, temperature: 1, auditFraction: 1, budget: { perRound: 1 }, stats }),
      );
      expectObservable(output).toBe('abc|', { a: gated(a, 'AUDIT'), b: gated(b, 'STUDENT', true), c: gated(c, 'TEACHER') });
    });
    assert.deepEqual(stats, { seen: 3, student: 1, teacher: 1, audit: 1, overBudget: 1, invalid: 0 });
  });

  test('dead-letters invalid scores and draws', () => {
    const stats = newGateStats();
    const bad = scoredItem('bad', [Number.NaN, 1]);
    const weird = scoredItem('weird', confident);
    const good = scoredItem('good', confident);
    newTestScheduler().run(({ hot, expectObservable }) => {
      const random = (promptId: string): number => (promptId === 'weird' ? 1.5 : 0.5);
      const output = hot('-x-w-g|', { x: bad, w: weird, g: good }).pipe(
        gate({ tau: 0.8, temperature: 1, auditFraction: 0.1, random, stats }),
      );
      expectObservable(output).toBe('-x-w-g|', {
        x: deadLetter(bad, 'gate', 'student scores of prompt bad are not all finite: [null,1]', 1),
        w: deadLetter(weird, 'gate', 'audit draw for prompt weird round 1 is 1.5; expected a number in [0, 1)', 3),
        g: gated(good, 'STUDENT'),
      });
    });
    assert.equal(stats.invalid, 2);
  });

  test('redelivered prompt gets the same decision', () => {
    const item = scoredItem('a', confident);
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('-a--a|', { a: item }).pipe(gate({ tau: 0.8, temperature: 1, auditFraction: 0.3 }));
      const decision: Decision = auditDraw('a', 1) < 0.3 ? 'AUDIT' : 'STUDENT';
      expectObservable(output).toBe('-a--a|', { a: gated(item, decision) });
    });
  });

  test('unsubscribe stops processing', () => {
    const stats = newGateStats();
    newTestScheduler().run(({ hot, expectObservable }) => {
      const source = hot('-a--b|', { a: scoredItem('a', unsure), b: scoredItem('b', unsure) });
      const output = source.pipe(gate({ tau: 0.8, temperature: 1, auditFraction: 0, stats }));
      expectObservable(output, '^--!').toBe('-a-', { a: gated(scoredItem('a', unsure), 'TEACHER') });
    });
    assert.equal(stats.seen, 1);
  });

  test('rejects invalid options', () => {
    assert.throws(
      () => gate({ tau: 1.2, temperature: 0, auditFraction: -1, budget: { perMinute: 1.5 } }),
      (error: unknown) =>
        error instanceof UsageError &&
        /tau must be in \[0, 1\], got 1.2/.test(error.message) &&
        /temperature must be a finite number > 0, got 0/.test(error.message) &&
        /auditFraction must be in \[0, 1\], got -1/.test(error.message) &&
        /budget.perMinute must be an integer >= 0, got 1.5/.test(error.message),
    );
  });
});
