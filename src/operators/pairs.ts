import { type OperatorFunction, type SchedulerLike, asyncScheduler, map } from 'rxjs';
import type { Candidate, Labeler, PreferencePair } from '../streams/records';
import { errorMessage } from '../util/errors';
import { contentHash } from '../util/hash';
import { assertValidOptions, isNonNegative } from './options';
import { rankIndices } from './ranking';
import {
  type Flow,
  type JudgedItem,
  type PairSkipReason,
  type PairedItem,
  bypassDeadLetters,
  deadLetter,
} from './types';

/** Counters of the pairs stage, updated in place; read them at any time. */
export interface PairStats {
  /** Items the stage processed, dead letters included. */
  seen: number;
  /** Pairs emitted, by labeler. */
  teacherPairs: number;
  studentPairs: number;
  /** Items without a pair, by reason. */
  tooFewCandidates: number;
  tie: number;
  identicalTexts: number;
  belowMargin: number;
  /** AUDIT items where the teacher ordered the student's chosen over its rejected candidate. */
  auditAgreed: number;
  /** AUDIT items where the teacher ranked the student's rejected candidate as high or higher. */
  auditDisagreed: number;
  /** Items that became dead letters here. */
  invalid: number;
}

export function newPairStats(): PairStats {
  return {
    seen: 0,
    teacherPairs: 0,
    studentPairs: 0,
    tooFewCandidates: 0,
    tie: 0,
    identicalTexts: 0,
    belowMargin: 0,
    auditAgreed: 0,
    auditDisagreed: 0,
    invalid: 0,
  };
}

export interface PairsOptions {
  /** Smallest score margin (chosen minus rejected, under the labeler) that makes a pair; >= 0. */
  minMargin: number;
  stats?: PairStats;
  /** Clock of dead-letter times. */
  scheduler?: SchedulerLike;
}

/** Returns the pair id: a content hash of (promptId, chosenId, rejectedId). */
export function pairId(promptId: string, chosenId: string, rejectedId: string): string {
  return contentHash([promptId, chosenId, rejectedId]);
}

/**
 * Turns each judged item into at most one preference pair: chosen is the best and rejected
 * the worst candidate under whoever decided. For TEACHER and AUDIT items with a verdict that
 * is the teacher's scores over the shortlist, labelled TEACHER; otherwise (STUDENT items,
 * teacher failures, shortlists too small to ask) the student's scores over all candidates,
 * labelled STUDENT. Best and worst follow `rankIndices`, so equal scores keep candidate order.
 *
 * No pair is made, and the reason is set in `pairSkip` and counted, when fewer than two
 * candidates are scored, when best and worst tie, when their texts are identical, or when
 * the margin is below `minMargin`. Pair ids are content hashes of (promptId, chosenId,
 * rejectedId), so a redelivered prompt yields the same id and the trainer can drop it.
 *
 * For AUDIT items with a verdict, `auditAgrees` records whether the teacher scores the
 * student's own best strictly above the student's own worst.
 *
 * ```
 * judged:                   -a-b-|      a has a clear winner, b ties
 * pairs({ minMargin: 0 }):  -A-B-|      A.pair set, B.pair null with pairSkip "tie"
 * ```
 *
 * Example: a TEACHER item whose judgment scores the shortlist [x, y] as [1, 4] gives
 * `{ chosenId: y.id, rejectedId: x.id, labeler: "TEACHER", margin: 3, ... }`.
 */
export function pairs<T extends JudgedItem>(options: PairsOptions): OperatorFunction<Flow<T>, Flow<T & PairedItem>> {
  const { minMargin } = options;
  assertValidOptions('pairs', isNonNegative(minMargin) ? [] : [`minMargin must be a number >= 0, got ${minMargin}`]);
  const stats = options.stats ?? newPairStats();
  const scheduler = options.scheduler ?? asyncScheduler;

  const makePair = (item: T): Flow<T & PairedItem> => {
    stats.seen += 1;
    try {
      return pairItem(item, minMargin, stats);
    } catch (error) {
      stats.invalid += 1;
      return deadLetter(item, 'pairs', errorMessage(error), scheduler.now());
    }
  };

  return bypassDeadLetters<T, T & PairedItem>((source) => source.pipe(map(makePair)));
}

function pairItem<T extends JudgedItem>(item: T, minMargin: number, stats: PairStats): T & PairedItem {
  const judgment = item.judgment;
  const teacherDecided = judgment !== null && judgment.error === null;

  let labeler: Labeler = 'STUDENT';
  let scored: Candidate[] = item.candidates;
  let scores: number[] = item.studentScores;
  if (teacherDecided) {
    labeler = 'TEACHER';
    scored = judgment.candidateIds.map((id) => {
      const candidate = item.candidates.find((each) => each.id === id);
      if (candidate === undefined) {
        throw new Error(`judgment ${judgment.id} names candidate ${id}, which prompt ${item.prompt.id} does not have`);
      }
      return candidate;
    });
    scores = judgment.scores;
    if (scores.length !== scored.length) {
      throw new Error(`judgment ${judgment.id} has ${scores.length} scores for ${scored.length} candidates`);
    }
  }

  const auditAgrees = item.candidateSet.decision === 'AUDIT' && teacherDecided ? studentAgreesWithTeacher(item) : null;
  if (auditAgrees === true) stats.auditAgreed += 1;
  if (auditAgrees === false) stats.auditDisagreed += 1;

  const skipped = (reason: PairSkipReason): T & PairedItem => {
    if (reason === 'too-few-candidates') stats.tooFewCandidates += 1;
    else if (reason === 'tie') stats.tie += 1;
    else if (reason === 'identical-texts') stats.identicalTexts += 1;
    else stats.belowMargin += 1;
    return { ...item, pair: null, pairSkip: reason, auditAgrees };
  };

  if (scored.length < 2) return skipped('too-few-candidates');
  const ranked = rankIndices(scores);
  const bestIndex = ranked[0] as number;
  const worstIndex = ranked[ranked.length - 1] as number;
  const chosen = scored[bestIndex] as Candidate;
  const rejected = scored[worstIndex] as Candidate;
  const margin = (scores[bestIndex] as number) - (scores[worstIndex] as number);
  if (margin === 0) return skipped('tie');
  if (chosen.text === rejected.text) return skipped('identical-texts');
  if (margin < minMargin) return skipped('below-margin');

  if (labeler === 'TEACHER') stats.teacherPairs += 1;
  else stats.studentPairs += 1;
  const pair: PreferencePair = {
    id: pairId(item.prompt.id, chosen.id, rejected.id),
    promptId: item.prompt.id,
    prompt: item.prompt.text,
    chosen: chosen.text,
    rejected: rejected.text,
    chosenId: chosen.id,
    rejectedId: rejected.id,
    labeler,
    confidence: item.candidateSet.confidence,
    margin,
    round: item.round,
    policyVersion: item.policyVersion,
    studentVersion: item.studentVersion,
  };
  return { ...item, pair, pairSkip: null, auditAgrees };
}

/**
 * Returns whether the teacher scores the student's best candidate strictly above the
 * student's worst. Both are in the shortlist, which always contains the student's top and bottom.
 */
function studentAgreesWithTeacher(item: JudgedItem): boolean {
  const judgment = item.judgment!;
  const ranked = rankIndices(item.studentScores);
  const studentBest = item.candidates[ranked[0] as number] as Candidate;
  const studentWorst = item.candidates[ranked[ranked.length - 1] as number] as Candidate;
  const bestScore = judgment.scores[judgment.candidateIds.indexOf(studentBest.id)];
  const worstScore = judgment.scores[judgment.candidateIds.indexOf(studentWorst.id)];
  if (bestScore === undefined || worstScore === undefined) {
    throw new Error(`judgment ${judgment.id} lacks the student's best or worst candidate of prompt ${item.prompt.id}`);
  }
  return bestScore > worstScore;
}
