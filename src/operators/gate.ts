import { type OperatorFunction, type SchedulerLike, asyncScheduler, defer, map } from 'rxjs';
import { createHash } from 'node:crypto';
import type { Decision } from '../streams/records';
import { errorMessage } from '../util/errors';
import { assertValidOptions } from './options';
import { type Flow, type GatedItem, type ScoredItem, bypassDeadLetters, deadLetter } from './types';

/** Length of the sliding window of `budget.perMinute`, in milliseconds. */
const MINUTE_MS = 60_000;

/** Counters of the gate, updated in place as items pass; read them at any time. */
export interface GateStats {
  /** Items the gate processed, dead letters included. */
  seen: number;
  /** Items the student decided, over-budget ones included. */
  student: number;
  /** Items sent to the teacher because the student was unsure. */
  teacher: number;
  /** Confident items sent to the teacher for an audit. */
  audit: number;
  /** Items that wanted the teacher (TEACHER or AUDIT) but were decided by the student because the budget was spent. */
  overBudget: number;
  /** Items that became dead letters here (invalid scores or audit draw). */
  invalid: number;
}

export function newGateStats(): GateStats {
  return { seen: 0, student: 0, teacher: 0, audit: 0, overBudget: 0, invalid: 0 };
}

export interface TeacherBudget {
  /** Maximum teacher-bound items in any sliding 60 s window of scheduler time. */
  perMinute?: number;
  /** Maximum teacher-bound items per round. */
  perRound?: number;
}

export interface GateOptions {
  /** Confidence threshold: at or above it the student decides. sigmoid(x >= 0) >= 0.5, so useful values lie in [0.5, 1]. */
  tau: number;
  /** Calibration temperature T of `gateConfidence`, > 0. */
  temperature: number;
  /** Share of confident items sent to the teacher for an audit, in [0, 1]. */
  auditFraction: number;
  budget?: TeacherBudget;
  /** Deterministic draw in [0, 1) per prompt and round that picks audits; defaults to `auditDraw`. */
  random?: (promptId: string, round: number) => number;
  /** Counters to update; pass your own object to read them. */
  stats?: GateStats;
  scheduler?: SchedulerLike;
}

/**
 * Returns the student's confidence in its own ranking: sigmoid((best - worst) / T) over the
 * student scores. It is 0.5 for a single candidate or equal scores and approaches 1 as the
 * gap between the best and the worst candidate grows relative to T.
 */
export function gateConfidence(scores: readonly number[], temperature: number): number {
  if (scores.length === 0) return 0.5;
  const gap = Math.max(...scores) - Math.min(...scores);
  return 1 / (1 + Math.exp(-gap / temperature));
}

/**
 * Returns a deterministic number in [0, 1) for a prompt and round: the first 48 bits of
 * sha256(JSON ["audit", promptId, round]) divided by 2^48. Replay draws the same audits.
 */
export function auditDraw(promptId: string, round: number): number {
  const digest = createHash('sha256').update(JSON.stringify(['audit', promptId, round])).digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/**
 * Decides who labels each prompt: STUDENT, TEACHER or AUDIT, and builds its CandidateSet.
 *
 * Confidence is `gateConfidence(studentScores, temperature)`. At or above `tau` the student
 * decides, except that items with `random(promptId, round) < auditFraction` become AUDIT:
 * the teacher judges them so that the student's precision can be measured, and the pairs
 * stage records whether the two agree. Below `tau` the item goes to the TEACHER. A prompt
 * with fewer than two candidates has nothing to rank and is always decided by the student.
 *
 * TEACHER and AUDIT items count against the teacher budget (a sliding 60 s window of
 * scheduler time, and a total per round). An item over budget is decided by the student
 * with `overBudget: true` and counted in `stats.overBudget`; it is never dropped. The budget
 * depends on arrival times, so a redelivered prompt may be decided differently when the
 * budget state differs; the audit draw and the confidence do not change.
 *
 * Items whose scores are not finite, or whose audit draw is outside [0, 1), become dead letters.
 *
 * ```
 * scored:                         -a-b-c-|       a confident, b unsure, c unsure
 * gate({ budget: { perMinute: 1 } }): -A-B-C-|   A STUDENT, B TEACHER, C STUDENT + overBudget
 * ```
 *
 * Example: with T = 1 and tau = 0.8, scores [2, 0] give confidence sigmoid(2) = 0.881, so
 * the decision is STUDENT (or AUDIT when drawn); scores [0.5, 0] give 0.622 and TEACHER.
 */
export function gate<T extends ScoredItem>(options: GateOptions): OperatorFunction<Flow<T>, Flow<T & GatedItem>> {
  const { tau, temperature, auditFraction } = options;
  const perMinute = options.budget?.perMinute;
  const perRound = options.budget?.perRound;
  assertValidOptions('gate', [
    ...(tau >= 0 && tau <= 1 ? [] : [`tau must be in [0, 1], got ${tau}`]),
    ...(temperature > 0 && Number.isFinite(temperature) ? [] : [`temperature must be a finite number > 0, got ${temperature}`]),
    ...(auditFraction >= 0 && auditFraction <= 1 ? [] : [`auditFraction must be in [0, 1], got ${auditFraction}`]),
    ...(perMinute === undefined || (Number.isInteger(perMinute) && perMinute >= 0)
      ? []
      : [`budget.perMinute must be an integer >= 0, got ${perMinute}`]),
    ...(perRound === undefined || (Number.isInteger(perRound) && perRound >= 0)
      ? []
      : [`budget.perRound must be an integer >= 0, got ${perRound}`]),
  ]);
  const random = options.random ?? auditDraw;
  const stats = options.stats ?? newGateStats();
  const scheduler = options.scheduler ?? asyncScheduler;

  return bypassDeadLetters<T, T & GatedItem>((source) =>
    defer(() => {
      // Scheduler times of the teacher-bound items of the last 60 s, oldest first.
      const recentCalls: number[] = [];
      // Teacher-bound items so far per round.
      const callsPerRound = new Map<number, number>();

      const withinBudget = (round: number, now: number): boolean => {
        while (recentCalls.length > 0 && (recentCalls[0] as number) <= now - MINUTE_MS) recentCalls.shift();
        if (perMinute !== undefined && recentCalls.length >= perMinute) return false;
        if (perRound !== undefined && (callsPerRound.get(round) ?? 0) >= perRound) return false;
        return true;
      };

      const decide = (item: T): Flow<T & GatedItem> => {
        const now = scheduler.now();
        stats.seen += 1;
        const { prompt, round, studentScores } = item;

        let draw: number;
        try {
          if (!studentScores.every((value) => Number.isFinite(value))) {
            throw new Error(`student scores of prompt ${prompt.id} are not all finite: ${JSON.stringify(studentScores)}`);
          }
          draw = random(prompt.id, round);
          if (!(draw >= 0 && draw < 1)) {
            throw new Error(`audit draw for prompt ${prompt.id} round ${round} is ${draw}; expected a number in [0, 1)`);
          }
        } catch (error) {
          stats.invalid += 1;
          return deadLetter(item, 'gate', errorMessage(error), now);
        }

        const confidence = gateConfidence(studentScores, temperature);
        let wanted: Decision = 'STUDENT';
        if (item.candidates.length >= 2) {
          if (confidence < tau) wanted = 'TEACHER';
          else if (draw < auditFraction) wanted = 'AUDIT';
        }

        let decision = wanted;
        let overBudget = false;
        if (wanted !== 'STUDENT') {
          if (withinBudget(round, now)) {
            recentCalls.push(now);
            callsPerRound.set(round, (callsPerRound.get(round) ?? 0) + 1);
          } else {
            decision = 'STUDENT';
            overBudget = true;
            stats.overBudget += 1;
          }
        }
        if (decision === 'STUDENT') stats.student += 1;
        else if (decision === 'TEACHER') stats.teacher += 1;
        else stats.audit += 1;

        return {
          ...item,
          candidateSet: {
            promptId: prompt.id,
            round,
            policyVersion: item.policyVersion,
            studentVersion: item.studentVersion,
            seed: item.seed,
            candidates: item.candidates,
            studentScores,
            confidence,
            decision,
            overBudget,
          },
        };
      };

      return source.pipe(map(decide));
    }),
  );
}
