import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Decision, Judgment, PreferencePair } from '../../src/streams/records';
import { newPairStats, pairId, pairs } from '../../src/operators/pairs';
import { type JudgedItem, type PairSkipReason, type PairedItem, deadLetter } from '../../src/operators/types';
import { gatedItem, newTestScheduler } from './fixtures';

/** Builds a judged item whose teacher scored candidates `indices` with `scores`. */
function judgedItem(
  id: string,
  studentScores: number[],
  decision: Decision,
  verdict?: { indices: number[]; scores: number[]; error?: string },
): JudgedItem {
  const item = gatedItem(id, studentScores, decision);
  if (verdict === undefined) return { ...item, judgment: null, teacherFailure: null };
  const judgment: Judgment = {
    id: `judgment-${id}`,
    promptId: id,
    round: 1,
    teacher: 'judge',
    candidateIds: verdict.indices.map((index) => item.candidates[index]!.id),
    scores: verdict.scores,
    latencyMs: 1,
    cached: false,
    error: verdict.error ?? null,
  };
  const teacherFailure =
    verdict.error === undefined ? null : { stage: 'teacher' as const, promptId: id, round: 1, error: verdict.error, at: 0 };
  return { ...item, judgment, teacherFailure };
}

function expectedPair(item: JudgedItem, chosen: number, rejected: number, labeler: 'TEACHER' | 'STUDENT', margin: number): PreferencePair {
  const chosenCandidate = item.candidates[chosen]!;
  const rejectedCandidate = item.candidates[rejected]!;
  return {
    id: pairId(item.prompt.id, chosenCandidate.id, rejectedCandidate.id),
    promptId: item.prompt.id,
    prompt: item.prompt.text,
    chosen: chosenCandidate.text,
    rejected: rejectedCandidate.text,
    chosenId: chosenCandidate.id,
    rejectedId: rejectedCandidate.id,
    labeler,
    confidence: item.candidateSet.confidence,
    margin,
    round: 1,
    policyVersion: 'p1',
    studentVersion: 's1',
  };
}

const paired = (item: JudgedItem, pair: PreferencePair, auditAgrees: boolean | null = null): PairedItem => ({
  ...item,
  pair,
  pairSkip: null,
  auditAgrees,
});
const skipped = (item: JudgedItem, reason: PairSkipReason): PairedItem => ({ ...item, pair: null, pairSkip: reason, auditAgrees: null });

describe('pairs', () => {
  test('labels by whoever decided', () => {
    const stats = newPairStats();
    const byStudent = judgedItem('s', [0.2, 0.9, 0.5], 'STUDENT');
    const byTeacher = judgedItem('t', [0.2, 0.9, 0.5], 'TEACHER', { indices: [1, 0], scores: [1, 4] });
    const fallback = judgedItem('f', [0.2, 0.9, 0.5], 'TEACHER', { indices: [1, 0], scores: [], error: 'timed out' });
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('-s-t-f|', { s: byStudent, t: byTeacher, f: fallback }).pipe(pairs({ minMargin: 0, stats }));
      expectObservable(output).toBe('-s-t-f|', {
        s: paired(byStudent, expectedPair(byStudent, 1, 0, 'STUDENT', 0.9 - 0.2)),
        t: paired(byTeacher, expectedPair(byTeacher, 0, 1, 'TEACHER', 3)),
        f: paired(fallback, expectedPair(fallback, 1, 0, 'STUDENT', 0.9 - 0.2)),
      });
    });
    assert.equal(stats.teacherPairs, 1);
    assert.equal(stats.studentPairs, 2);
  });

  test('records audit agreement', () => {
    const stats = newPairStats();
    const agrees = judgedItem('a', [3, 0], 'AUDIT', { indices: [0, 1], scores: [5, 2] });
    const disagrees = judgedItem('d', [3, 0], 'AUDIT', { indices: [0, 1], scores: [2, 5] });
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('ad|', { a: agrees, d: disagrees }).pipe(pairs({ minMargin: 0, stats }));
      expectObservable(output).toBe('ad|', {
        a: paired(agrees, expectedPair(agrees, 0, 1, 'TEACHER', 3), true),
        d: paired(disagrees, expectedPair(disagrees, 1, 0, 'TEACHER', 3), false),
      });
    });
    assert.equal(stats.auditAgreed, 1);
    assert.equal(stats.auditDisagreed, 1);
  });

  test('skips ties, twins, small margins and singletons', () => {
    const stats = newPairStats();
    const tie = judgedItem('tie', [0.5, 0.5], 'STUDENT');
    const twinBase = judgedItem('twin', [0.9, 0.1], 'STUDENT');
    const twin: JudgedItem = { ...twinBase, candidates: [twinBase.candidates[0]!, { ...twinBase.candidates[0]!, logprob: -2 }] };
    const small = judgedItem('small', [0.55, 0.5], 'STUDENT');
    const single = judgedItem('single', [0.7], 'STUDENT');
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('abcd|', { a: tie, b: twin, c: small, d: single }).pipe(pairs({ minMargin: 0.1, stats }));
      expectObservable(output).toBe('abcd|', {
        a: skipped(tie, 'tie'),
        b: skipped(twin, 'identical-texts'),
        c: skipped(small, 'below-margin'),
        d: skipped(single, 'too-few-candidates'),
      });
    });
    assert.deepEqual(
      [stats.tie, stats.identicalTexts, stats.belowMargin, stats.tooFewCandidates, stats.studentPairs],
      [1, 1, 1, 1, 0],
    );
  });

  test('dead-letters a judgment of unknown candidates', () => {
    const good = judgedItem('g', [0.9, 0.1], 'STUDENT');
    const broken = judgedItem('b', [0.9, 0.1], 'TEACHER', { indices: [0, 1], scores: [1, 2] });
    broken.judgment = { ...broken.judgment!, candidateIds: ['nope', broken.candidates[1]!.id] };
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('-b-g|', { b: broken, g: good }).pipe(pairs({ minMargin: 0 }));
      expectObservable(output).toBe('-d-g|', {
        d: deadLetter(broken, 'pairs', 'judgment judgment-b names candidate nope, which prompt b does not have', 1),
        g: paired(good, expectedPair(good, 0, 1, 'STUDENT', 0.9 - 0.1)),
      });
    });
  });

  test('redelivered prompt gets the same pair id', () => {
    const outputs: PairedItem[] = [];
    const item = judgedItem('r', [0.2, 0.8], 'STUDENT');
    newTestScheduler().run(({ hot, flush }) => {
      hot('r--r|', { r: item }).pipe(pairs({ minMargin: 0 })).subscribe((value) => outputs.push(value as PairedItem));
      flush();
    });
    assert.equal(outputs.length, 2);
    assert.equal(outputs[0]!.pair!.id, outputs[1]!.pair!.id);
    assert.equal(outputs[0]!.pair!.id, pairId('r', item.candidates[1]!.id, item.candidates[0]!.id));
  });

  test('unsubscribe stops pairing', () => {
    const stats = newPairStats();
    const item = judgedItem('x', [0.2, 0.8], 'STUDENT');
    newTestScheduler().run(({ hot, expectObservable }) => {
      const output = hot('-x---x|', { x: item }).pipe(pairs({ minMargin: 0, stats }));
      expectObservable(output, '^--!').toBe('-x-', { x: paired(item, expectedPair(item, 1, 0, 'STUDENT', 0.8 - 0.2)) });
    });
    assert.equal(stats.seen, 1);
  });
});
