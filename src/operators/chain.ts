import {
  type Observable,
  type OperatorFunction,
  type SchedulerLike,
  asyncScheduler,
  defer,
  finalize,
  interval,
  map,
  tap,
} from 'rxjs';
import type { CandidateSet, DeadLetter, Judgment, Metric, PreferencePair } from '../streams/records';
import { type GateOptions, type GateStats, gate, newGateStats } from './gate';
import { InFlightLimit, admit } from './in-flight';
import { type PairStats, newPairStats, pairs } from './pairs';
import { sample } from './sample';
import { score } from './score';
import { type TeacherOptions, type TeacherStats, newTeacherStats, teacher } from './teacher';
import {
  type ChainItem,
  type Flow,
  type PairedItem,
  type RankingTeacher,
  type SamplerHandle,
  type ScorerHandle,
  type StageFailure,
  isDeadLetter,
} from './types';

export interface AlignChainOptions {
  /** Current model versions, read once per batch; a `ModelRegistry` fits. */
  models: { policy: () => SamplerHandle; student: () => ScorerHandle };
  teacher: RankingTeacher;
  /** Candidates per prompt. */
  k: number;
  seedFor?: (promptId: string, round: number) => bigint;
  /** Maximum prompts per sampler and per scorer call. */
  batchSize: number;
  /** Maximum wait in milliseconds for a sampler or scorer batch to fill. */
  batchWindowMs: number;
  gate: Pick<GateOptions, 'tau' | 'temperature' | 'auditFraction' | 'budget' | 'random'>;
  judge: Pick<TeacherOptions, 'shortlistSize' | 'concurrency' | 'timeoutMs' | 'retry' | 'cache' | 'jitter'>;
  /** Smallest margin that makes a pair. */
  minMargin: number;
  /** Maximum prompts inside the chain at once, from `sample` to the emitted outcome. */
  maxInFlight: number;
  scheduler?: SchedulerLike;
}

/** Records one prompt produced, grouped by the topic they go to. */
export interface OutcomeRecords {
  candidates: CandidateSet[];
  judgments: Judgment[];
  pairs: PreferencePair[];
  dlq: DeadLetter[];
}

/**
 * Everything one prompt produced. The chain emits exactly one outcome per prompt, after all
 * of its stages, so a runner writes `records` to their topics and then calls `item.ack`.
 */
export interface PromptOutcome {
  /** The prompt as it entered, with its `source` and `ack`. */
  item: ChainItem;
  records: OutcomeRecords;
  /** The stage output when the prompt went through every stage; null for a dead letter. */
  paired: PairedItem | null;
  /** Failures of this prompt: the one that stopped it, or a teacher failure it survived. */
  failures: StageFailure[];
}

export interface ChainStats {
  gate: GateStats;
  teacher: TeacherStats;
  pairs: PairStats;
  /** Outcomes emitted. */
  outcomes: number;
  /** Prompts that left the chain as dead letters. */
  deadLetters: number;
}

export interface AlignChain {
  /** The chain. Subscribe it once: its stats and its in-flight limit belong to one run. */
  operator: OperatorFunction<ChainItem, PromptOutcome>;
  /** The credit counter a source watches to pause; see `InFlightLimit`. */
  limit: InFlightLimit;
  stats: ChainStats;
  /** Returns the counters as Metric records stamped with `at` (epoch milliseconds). */
  metrics(at?: number): Metric[];
  /** Emits `metrics()` every `periodMs` on the chain's scheduler. */
  metrics$(periodMs: number): Observable<Metric[]>;
}

/**
 * Composes the TS-Align chain: `admit` -> `sample` -> `score` -> `gate` -> `teacher` ->
 * `pairs`, and turns each prompt's result into one `PromptOutcome`.
 *
 * ```
 * prompts:      -a-b-c-|
 * alignChain:   ----A--B-C|     one outcome per prompt, in completion order
 * ```
 *
 * At most `maxInFlight` prompts are between `admit` and the emitted outcome. Model versions
 * are read per batch, so swapping the registry's models applies from the next batch. No
 * prompt ends the stream: failures arrive as outcomes with `failures` and `records.dlq` set.
 *
 * Example:
 * ```
 * const chain = alignChain({ models: registry, teacher, k: 4, ... });
 * prompts$.pipe(chain.operator, concatMap(async (outcome) => {
 *   await writeAll(outcome.records);
 *   await outcome.item.ack?.();
 * }));
 * ```
 */
export function alignChain(options: AlignChainOptions): AlignChain {
  const scheduler = options.scheduler ?? asyncScheduler;
  const limit = new InFlightLimit(options.maxInFlight);
  const stats: ChainStats = {
    gate: newGateStats(),
    teacher: newTeacherStats(),
    pairs: newPairStats(),
    outcomes: 0,
    deadLetters: 0,
  };
  const stages = {
    sample: sample<ChainItem>({
      policy: options.models.policy,
      k: options.k,
      ...(options.seedFor === undefined ? {} : { seedFor: options.seedFor }),
      batchSize: options.batchSize,
      batchWindowMs: options.batchWindowMs,
      scheduler,
    }),
    score: score({ student: options.models.student, batchSize: options.batchSize, batchWindowMs: options.batchWindowMs, scheduler }),
    gate: gate({ ...options.gate, stats: stats.gate, scheduler }),
    teacher: teacher({ ...options.judge, teacher: options.teacher, stats: stats.teacher, scheduler }),
    pairs: pairs({ minMargin: options.minMargin, stats: stats.pairs, scheduler }),
  };

  const operator: OperatorFunction<ChainItem, PromptOutcome> = (source) =>
    defer(() => {
      // Credits this subscription holds; returned when it ends early.
      let creditsHeld = 0;
      const paired = source.pipe(
        admit(limit),
        tap(() => {
          creditsHeld += 1;
        }),
        stages.sample,
        stages.score,
        stages.gate,
        stages.teacher,
        stages.pairs,
      );
      return paired.pipe(
        map(toOutcome),
        tap((outcome) => {
          stats.outcomes += 1;
          if (outcome.paired === null) stats.deadLetters += 1;
          // Released before the outcome reaches the subscriber: `admit` may push the next
          // prompt synchronously from here, and it trampolines that push.
          creditsHeld -= 1;
          limit.release();
        }),
        finalize(() => {
          limit.release(creditsHeld);
          creditsHeld = 0;
        }),
      );
    });

  const metrics = (at = Date.now()): Metric[] => chainMetrics(stats, limit, at);
  return {
    operator,
    limit,
    stats,
    metrics,
    metrics$: (periodMs) => interval(periodMs, scheduler).pipe(map(() => metrics())),
  };
}

/** Builds the outcome of one prompt from the last stage's output. */
export function toOutcome(flow: Flow<PairedItem>): PromptOutcome {
  if (isDeadLetter(flow)) {
    return {
      item: flow.item,
      records: { candidates: [], judgments: [], pairs: [], dlq: [toDeadLetterRecord(flow.item, flow.failure)] },
      paired: null,
      failures: [flow.failure],
    };
  }
  const failures = flow.teacherFailure === null ? [] : [flow.teacherFailure];
  const { prompt, round, source, ack } = flow;
  const item: ChainItem = { prompt, round };
  if (source !== undefined) item.source = source;
  if (ack !== undefined) item.ack = ack;
  return {
    item,
    records: {
      candidates: [flow.candidateSet],
      judgments: flow.judgment === null ? [] : [flow.judgment],
      pairs: flow.pair === null ? [] : [flow.pair],
      dlq: failures.map((failure) => toDeadLetterRecord(item, failure)),
    },
    paired: flow,
    failures,
  };
}

/**
 * Builds the DeadLetter record of a failed prompt. When the item has a `source`, the record
 * copies the consumed message. Without one, the value is the prompt as JSON and the
 * coordinates are topic "prompts", partition -1 and offset -1.
 */
export function toDeadLetterRecord(item: ChainItem, failure: StageFailure): DeadLetter {
  const source = item.source;
  const error = `${failure.stage} failed for prompt ${failure.promptId} in round ${failure.round}: ${failure.error}`;
  if (source !== undefined) {
    return {
      topic: source.topic,
      partition: source.partition,
      offset: BigInt(source.offset),
      key: source.key === null ? null : source.key.toString('utf8'),
      value: source.value,
      error,
      at: BigInt(Math.round(failure.at)),
    };
  }
  const json = JSON.stringify(item.prompt, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
  return {
    topic: 'prompts',
    partition: -1,
    offset: -1n,
    key: item.prompt.id,
    value: Buffer.from(json, 'utf8'),
    error,
    at: BigInt(Math.round(failure.at)),
  };
}

function chainMetrics(stats: ChainStats, limit: InFlightLimit, at: number): Metric[] {
  const stamp = BigInt(Math.round(at));
  const metric = (name: string, value: number): Metric => ({ name, value, labels: {}, at: stamp });
  const audits = stats.pairs.auditAgreed + stats.pairs.auditDisagreed;
  const list: Metric[] = [
    metric('chain/in_flight', limit.inFlight),
    metric('chain/outcomes', stats.outcomes),
    metric('chain/dead_letters', stats.deadLetters),
    ...Object.entries(stats.gate).map(([name, value]) => metric(`gate/${name}`, value)),
    ...Object.entries(stats.teacher).map(([name, value]) => metric(`teacher/${name}`, value)),
    ...Object.entries(stats.pairs).map(([name, value]) => metric(`pairs/${name}`, value)),
  ];
  // Audited precision of student decisions: how often the teacher agrees with the student.
  if (audits > 0) list.push(metric('gate/audit_precision', stats.pairs.auditAgreed / audits));
  return list;
}
