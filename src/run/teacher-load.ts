/**
 * The teacher-load curve of the confidence gate. Given prompts whose candidates carry both the
 * student's scores and the verifier's grades, it measures how many prompts each threshold tau
 * sends to the teacher, and how often the emitted pairs agree with the verifier.
 *
 * These are pure functions over precomputed scores. They follow the chain's rules: the gate's
 * `gateConfidence`, the teacher ranking the shortlist of `shortlistIndices`, and the pairs
 * stage's best-versus-worst pair with its skips (too few candidates, tie, identical texts,
 * margin below `minMargin`). The teacher is the verifier, so its scores are the grades.
 */
import { gateConfidence } from '../operators/gate';
import { rankIndices, shortlistIndices } from '../operators/ranking';

/** One prompt's K candidates with their student scores and verifier grades, index-aligned. */
export interface ScoredPrompt {
  promptId: string;
  candidates: ReadonlyArray<{ id: string; text: string }>;
  studentScores: readonly number[];
  /** Verifier grades of the candidates (higher is better); also the teacher's scores. */
  grades: readonly number[];
}

export interface LabelRule {
  /** Row name in tables and plots. */
  name: string;
  /**
   * Confidence threshold: the student decides a prompt whose `gateConfidence` is at or above
   * it, the teacher every other one. Above 1 the teacher decides every prompt.
   */
  tau: number;
  /** Calibration temperature T of `gateConfidence`. */
  temperature: number;
  /** m: the teacher reads the student's top m and bottom m candidates. */
  shortlist: number;
  minMargin: number;
}

/** One point of the curve: the load a rule puts on the teacher and the quality of its pairs. */
export interface TeacherLoadPoint {
  name: string;
  tau: number;
  shortlist: number;
  prompts: number;
  /** Prompts sent to the teacher, one call each. */
  teacherPrompts: number;
  /** teacherPrompts / prompts: teacher calls per prompt. */
  teacherShare: number;
  /** Candidates the teacher reads, averaged over all prompts. */
  candidatesReadPerPrompt: number;
  pairs: number;
  teacherPairs: number;
  studentPairs: number;
  /** Pairs whose chosen candidate grades strictly higher than the rejected one. */
  correct: number;
  /** Pairs whose chosen candidate grades strictly lower. */
  wrong: number;
  /** Pairs whose two candidates grade the same: the pair teaches nothing about the task. */
  gradeTies: number;
  /** (correct + gradeTies / 2) / pairs, or null without pairs. */
  accuracy: number | null;
  /** correct / (correct + wrong), ties left out, or null when there is neither. */
  strictAccuracy: number | null;
  /** Accuracy of the student's pairs alone, ties counted as half, or null without any. */
  studentAccuracy: number | null;
}

/** Best-versus-worst pair under `scores`, as indices into `scores`, or null when the pairs stage would skip it. */
function bestVersusWorst(scores: readonly number[], texts: readonly string[], minMargin: number): { chosen: number; rejected: number } | null {
  if (scores.length < 2) return null;
  const ranked = rankIndices(scores);
  const chosen = ranked[0] as number;
  const rejected = ranked[ranked.length - 1] as number;
  const margin = (scores[chosen] as number) - (scores[rejected] as number);
  if (margin === 0 || texts[chosen] === texts[rejected] || margin < minMargin) return null;
  return { chosen, rejected };
}

/** Adds up the pairs, the teacher calls and the grade agreement of one labelling rule over every prompt. */
export function teacherLoadPoint(prompts: readonly ScoredPrompt[], rule: LabelRule): TeacherLoadPoint {
  let teacherPrompts = 0;
  let candidatesRead = 0;
  let teacherPairs = 0;
  let studentPairs = 0;
  let correct = 0;
  let wrong = 0;
  let gradeTies = 0;
  let studentScore = 0;

  for (const prompt of prompts) {
    const { candidates, studentScores, grades } = prompt;
    if (studentScores.length !== candidates.length || grades.length !== candidates.length) {
      throw new Error(
        `prompt ${prompt.promptId} has ${candidates.length} candidates but ${studentScores.length} student scores and ${grades.length} grades; ` +
          'score and grade every candidate',
      );
    }
    // As in the gate, a prompt with fewer than two candidates has nothing to rank and stays with the student.
    const toTeacher = candidates.length >= 2 && gateConfidence(studentScores, rule.temperature) < rule.tau;

    let pair: { chosen: number; rejected: number } | null;
    if (toTeacher) {
      teacherPrompts += 1;
      const shortlist = shortlistIndices(studentScores, candidates.map((candidate) => candidate.id), rule.shortlist);
      candidatesRead += shortlist.length;
      const picked = bestVersusWorst(
        shortlist.map((index) => grades[index] as number),
        shortlist.map((index) => (candidates[index] as { text: string }).text),
        rule.minMargin,
      );
      pair = picked === null ? null : { chosen: shortlist[picked.chosen] as number, rejected: shortlist[picked.rejected] as number };
    } else {
      pair = bestVersusWorst(studentScores, candidates.map((candidate) => candidate.text), rule.minMargin);
    }
    if (pair === null) continue;

    if (toTeacher) teacherPairs += 1;
    else studentPairs += 1;
    const difference = (grades[pair.chosen] as number) - (grades[pair.rejected] as number);
    if (difference > 0) correct += 1;
    else if (difference < 0) wrong += 1;
    else gradeTies += 1;
    if (!toTeacher && difference > 0) studentScore += 1;
    if (!toTeacher && difference === 0) studentScore += 0.5;
  }

  const pairs = teacherPairs + studentPairs;
  return {
    name: rule.name,
    tau: rule.tau,
    shortlist: rule.shortlist,
    prompts: prompts.length,
    teacherPrompts,
    teacherShare: prompts.length === 0 ? 0 : teacherPrompts / prompts.length,
    candidatesReadPerPrompt: prompts.length === 0 ? 0 : candidatesRead / prompts.length,
    pairs,
    teacherPairs,
    studentPairs,
    correct,
    wrong,
    gradeTies,
    accuracy: pairs === 0 ? null : (correct + gradeTies / 2) / pairs,
    strictAccuracy: correct + wrong === 0 ? null : correct / (correct + wrong),
    studentAccuracy: studentPairs === 0 ? null : studentScore / studentPairs,
  };
}

export interface TeacherLoadCurveOptions {
  taus: readonly number[];
  temperature: number;
  shortlist: number;
  minMargin: number;
  /** K, the candidates per prompt: the teacher-on-all-candidates row reads all of them. */
  candidates: number;
}

/** Reference rows and the gated rows of the curve. */
export interface TeacherLoadCurve {
  /** One row per tau, with the configured shortlist m. */
  gated: TeacherLoadPoint[];
  /** The teacher ranks the student's best and worst (m = 1) on every prompt. */
  teacherBestVersusWorst: TeacherLoadPoint;
  /** The teacher ranks all K candidates on every prompt. */
  teacherAllCandidates: TeacherLoadPoint;
}

/**
 * Computes the gated rows for each tau and the two reference rows. The references use a tau
 * above 1, which no confidence reaches, so the teacher decides every prompt with two or more
 * candidates. The "all candidates" row sets m to ceil(K / 2), so the shortlist is all of K.
 */
export function teacherLoadCurve(prompts: readonly ScoredPrompt[], options: TeacherLoadCurveOptions): TeacherLoadCurve {
  const { temperature, shortlist, minMargin } = options;
  const everyPrompt = 2;
  return {
    gated: options.taus.map((tau) => teacherLoadPoint(prompts, { name: `tau ${tau}`, tau, temperature, shortlist, minMargin })),
    teacherBestVersusWorst: teacherLoadPoint(prompts, { name: 'teacher, best vs worst', tau: everyPrompt, temperature, shortlist: 1, minMargin }),
    teacherAllCandidates: teacherLoadPoint(prompts, {
      name: 'teacher, all candidates',
      tau: everyPrompt,
      temperature,
      shortlist: Math.max(1, Math.ceil(options.candidates / 2)),
      minMargin,
    }),
  };
}
