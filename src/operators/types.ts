/**
 * The values that flow through the TS-Align operator chain.
 *
 * One prompt travels as one item. Each stage returns the item it received plus its own
 * fields, so a later stage sees every earlier result: `ChainItem` -> `SampledItem` ->
 * `ScoredItem` -> `GatedItem` -> `JudgedItem` -> `PairedItem`. A prompt that a stage cannot
 * process leaves the chain as a `DeadLetterItem` value, never on the error channel, so one
 * bad prompt cannot end the stream; every later stage passes dead letters through unchanged.
 */
import { type ObservableInput, type OperatorFunction, connect, filter, merge } from 'rxjs';
import type { ConsumedMessage } from '../streams/transport';
import type { Candidate, CandidateSet, Judgment, PreferencePair, Prompt } from '../streams/records';

/** A prompt entering the chain. */
export interface ChainItem {
  prompt: Prompt;
  round: number;
  /** The consumed message the prompt came from; dead-letter records copy its coordinates. */
  source?: ConsumedMessage;
  /** Commits the source record; the chain carries it untouched and never calls it. */
  ack?: () => void | Promise<void>;
}

/** Output of `sample`: K candidates drawn by one policy version. */
export interface SampledItem extends ChainItem {
  policyVersion: string;
  /** Seed the sampler drew with, derived from the prompt id and the round. */
  seed: bigint;
  candidates: Candidate[];
}

/** Output of `score`: one student reward per candidate. */
export interface ScoredItem extends SampledItem {
  studentVersion: string;
  /** Student reward per candidate, in the order of `candidates`. */
  studentScores: number[];
}

/** Output of `gate`: the decision and the complete CandidateSet record. */
export interface GatedItem extends ScoredItem {
  /** The record for the candidates topic; `decision` is the gate's decision. */
  candidateSet: CandidateSet;
}

/** Output of `teacher`. */
export interface JudgedItem extends GatedItem {
  /** The teacher call for TEACHER and AUDIT items (cached, failed or answered); else null. */
  judgment: Judgment | null;
  /**
   * Set when the teacher failed for good. The item then falls back to the student's scores:
   * its pair is labelled STUDENT while `candidateSet.decision` keeps the gate's decision.
   */
  teacherFailure: StageFailure | null;
}

export type PairSkipReason = 'too-few-candidates' | 'tie' | 'identical-texts' | 'below-margin';

/** Output of `pairs`. */
export interface PairedItem extends JudgedItem {
  pair: PreferencePair | null;
  /** Reason no pair was made, or null when `pair` is set. */
  pairSkip: PairSkipReason | null;
  /**
   * For AUDIT items with a teacher verdict: whether the teacher orders the student's chosen
   * and rejected candidates the same way the student does. Null otherwise.
   */
  auditAgrees: boolean | null;
}

export type StageName = 'sample' | 'score' | 'gate' | 'teacher' | 'pairs';

/** The failure of one prompt in one stage. */
export interface StageFailure {
  stage: StageName;
  promptId: string;
  round: number;
  error: string;
  /** Scheduler time of the failure in milliseconds (epoch time on the default scheduler). */
  at: number;
}

/** A prompt that left the chain because a stage could not process it. */
export interface DeadLetterItem {
  kind: 'dead-letter';
  item: ChainItem;
  failure: StageFailure;
}

/** Element type of a stage's output: the stage's item or a dead letter from any stage. */
export type Flow<T> = T | DeadLetterItem;

export function isDeadLetter(value: unknown): value is DeadLetterItem {
  return typeof value === 'object' && value !== null && (value as DeadLetterItem).kind === 'dead-letter';
}

/** Builds the dead letter of `item`, keeping only the `ChainItem` fields. */
export function deadLetter(item: ChainItem, stage: StageName, error: string, at: number): DeadLetterItem {
  const { prompt, round, source, ack } = item;
  const base: ChainItem = { prompt, round };
  if (source !== undefined) base.source = source;
  if (ack !== undefined) base.ack = ack;
  return { kind: 'dead-letter', item: base, failure: { stage, promptId: prompt.id, round, error, at } };
}

/**
 * Applies `operator` to the items and passes dead letters from earlier stages straight
 * through. The output completes when the source and `operator`'s output have completed.
 */
export function bypassDeadLetters<T, R>(
  operator: OperatorFunction<T, Flow<R>>,
): OperatorFunction<Flow<T>, Flow<R>> {
  return (source) =>
    source.pipe(
      connect((shared) =>
        merge(
          shared.pipe(filter(isDeadLetter)),
          shared.pipe(filter((value): value is T => !isDeadLetter(value)), operator),
        ),
      ),
    );
}

/** One sampled response as the sampler returns it, before it gets an id. */
export interface SampledText {
  text: string;
  tokens: number;
  logprob: number;
}

/**
 * A loaded policy version. `sample` returns K responses per prompt, in the order of
 * `prompts`; it must stop and reject when `signal` aborts. Production samplers return a
 * Promise; test stand-ins may return an Observable timed on a virtual scheduler.
 */
export interface SamplerHandle {
  readonly version: string;
  sample(
    prompts: readonly Prompt[],
    seeds: readonly bigint[],
    k: number,
    signal: AbortSignal,
  ): ObservableInput<SampledText[][]>;
}

/** A loaded student version. `score` returns one reward per candidate of each prompt. */
export interface ScorerHandle {
  readonly version: string;
  score(
    batch: readonly { prompt: Prompt; candidates: readonly Candidate[] }[],
    signal: AbortSignal,
  ): ObservableInput<number[][]>;
}

/**
 * The teacher as the `teacher` operator calls it. Every `Teacher` from `teachers/types` fits,
 * because a Promise is an ObservableInput; test stand-ins return virtual-time Observables.
 */
export interface RankingTeacher {
  readonly name: string;
  rank(prompt: Prompt, shortlist: readonly Candidate[], signal: AbortSignal): ObservableInput<number[]>;
}
