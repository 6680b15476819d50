import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { type ScoredPrompt, teacherLoadCurve, teacherLoadPoint } from '../../src/run/teacher-load';

function scored(promptId: string, texts: string[], studentScores: number[], grades: number[]): ScoredPrompt {
  return { promptId, candidates: texts.map((text, index) => ({ id: `${promptId}-${index}`, text })), studentScores, grades };
}

// With T = 1: confident has gap 4 (confidence 0.982), unsure gap 0.2 (0.550).
const confidentRight = scored('a', ['w', 'x', 'y', 'z'], [4, 3, 1, 0], [1, 0.5, 0, 0]);
const confidentWrong = scored('b', ['w', 'x', 'y', 'z'], [4, 3, 1, 0], [0, 0.5, 0, 1]);
// The student's best and worst both grade 0; the middle candidates grade 1 and 0.5.
const unsureMiddle = scored('c', ['w', 'x', 'y', 'z'], [0.2, 0.15, 0.1, 0], [0, 1, 0.5, 0]);
const rule = { name: 'test', temperature: 1, shortlist: 1, minMargin: 0 };

describe('teacherLoadPoint', () => {
  test('confident prompts stay with the student', () => {
    const point = teacherLoadPoint([confidentRight, confidentWrong], { ...rule, tau: 0.9 });
    assert.equal(point.teacherPrompts, 0);
    assert.equal(point.candidatesReadPerPrompt, 0);
    assert.equal(point.studentPairs, 2);
    assert.equal(point.correct, 1);
    assert.equal(point.wrong, 1);
    assert.equal(point.accuracy, 0.5);
    assert.equal(point.studentAccuracy, 0.5);
  });

  test('unsure prompts go to the teacher', () => {
    const point = teacherLoadPoint([confidentRight, unsureMiddle], { ...rule, tau: 0.9, shortlist: 2 });
    assert.equal(point.teacherPrompts, 1);
    assert.equal(point.teacherShare, 0.5);
    assert.equal(point.candidatesReadPerPrompt, 2);
    assert.equal(point.teacherPairs, 1);
    assert.equal(point.studentPairs, 1);
    assert.equal(point.correct, 2);
    assert.equal(point.accuracy, 1);
  });

  test('tied shortlist emits no pair', () => {
    // m = 1 shows the teacher only the student's best and worst, which grade the same.
    const point = teacherLoadPoint([unsureMiddle], { ...rule, tau: 0.9 });
    assert.equal(point.teacherPrompts, 1);
    assert.equal(point.pairs, 0);
    assert.equal(point.accuracy, null);
  });

  test('grade ties count as half', () => {
    const tiedGrades = scored('d', ['w', 'x'], [2, 0], [0.5, 0.5]);
    const point = teacherLoadPoint([tiedGrades, confidentRight], { ...rule, tau: 0.5 });
    assert.equal(point.gradeTies, 1);
    assert.equal(point.accuracy, 0.75);
    assert.equal(point.strictAccuracy, 1);
  });

  test('identical texts and margin skip pairs', () => {
    const identical = scored('e', ['same', 'same'], [3, 0], [1, 0]);
    assert.equal(teacherLoadPoint([identical], { ...rule, tau: 0.5 }).pairs, 0);
    assert.equal(teacherLoadPoint([confidentRight], { ...rule, tau: 0.5, minMargin: 5 }).pairs, 0);
  });

  test('single candidate stays with student', () => {
    const single = scored('f', ['only'], [0], [1]);
    const point = teacherLoadPoint([single], { ...rule, tau: 1 });
    assert.equal(point.teacherPrompts, 0);
    assert.equal(point.pairs, 0);
  });

  test('misaligned grades are rejected', () => {
    const broken = scored('g', ['w', 'x'], [1, 0], [1]);
    assert.throws(() => teacherLoadPoint([broken], { ...rule, tau: 0.9 }), /prompt g has 2 candidates/);
  });
});

describe('teacherLoadCurve', () => {
  test('references send every prompt', () => {
    const curve = teacherLoadCurve([confidentRight, confidentWrong, unsureMiddle], {
      taus: [0.5, 0.9],
      temperature: 1,
      shortlist: 1,
      minMargin: 0,
      candidates: 4,
    });
    assert.deepEqual(curve.gated.map((point) => point.teacherPrompts), [0, 1]);
    assert.equal(curve.teacherBestVersusWorst.teacherShare, 1);
    assert.equal(curve.teacherBestVersusWorst.candidatesReadPerPrompt, 2);
    // b's best and worst by the student grade 0 and 1, so the teacher flips them; c ties.
    assert.equal(curve.teacherBestVersusWorst.pairs, 2);
    assert.equal(curve.teacherBestVersusWorst.accuracy, 1);
    assert.equal(curve.teacherAllCandidates.candidatesReadPerPrompt, 4);
    assert.equal(curve.teacherAllCandidates.pairs, 3);
    assert.equal(curve.teacherAllCandidates.accuracy, 1);
  });
});
