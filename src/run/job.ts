/**
 * `tsalign run`, the main job: base models, then rounds of feed -> chain -> trainer in one
 * process over the topics, an evaluation after each round, and the report.
 */
import { join } from 'node:path';
import type { LoadedConfig } from '../config/load';
import type { TsalignConfig } from '../config/schema';
import { loadPolicy, loadRewardModel } from '../models/checkpoint';
import type { Policy } from '../models/policy';
import type { RewardModel } from '../models/reward-model';
import { deriveSeed } from '../models/random';
import { ModelRegistry } from '../operators/registry';
import type { PromptOutcome } from '../operators/chain';
import type { SamplerHandle, ScorerHandle } from '../operators/types';
import type { RoundMeasures, RunReport } from '../report/measures';
import { writeReport } from '../report/write';
import type { Metric, ModelUpdate, OffsetRange, Prompt, RoundManifest } from '../streams/records';
import { RecordWriter } from '../streams/sink';
import { ensureTopics, topicName } from '../streams/topics';
import type { Transport } from '../streams/transport';
import { encodeRecord } from '../streams/avro';
import { TaskPromptsExhaustedError, generateTaskPrompts } from '../tasks';
import { UsageError } from '../util/errors';
import { createTeacher, type Teacher } from '../teachers';
import { comparisonsFromRanking, type TeacherComparison } from '../training/replay-buffer';
import { Trainer, type ModelRef } from '../training/trainer';
import { childLogger } from '../util/logger';
import { prepareBase } from './base';
import { chainWriters, runChainRound } from './chain-round';
import { type ResponseSampler, auditedPrecision, heldOutComparisons, meanScore, respond, studentAgreement, winRate } from './evaluate';
import { policyHandle, studentHandle } from './handles';
import { DirectoryModelStore } from './model-store';
import { type FedRound, RUN_STATE_FORMAT, RUN_STATE_FORMAT_VERSION, fedRange, readRunState, runIdentity, transportKey, writeRunState } from './state';

export interface RunJobOptions {
  transport: Transport;
  dataDir: string;
  topicPrefix: string;
  config: LoadedConfig;
  /** Aborts the job between records; the round in progress is redone by the next run. */
  signal?: AbortSignal;
  /** Called with each round's measures (round 0 included) once they are final. */
  onRound?: (row: RoundMeasures) => void;
  /** Called with short progress texts while the job runs. */
  onProgress?: (text: string) => void;
  /** The active tfjs backend, for the report. */
  backend?: string;
}

export interface RunJobResult {
  rounds: RoundMeasures[];
  report: { json: string; html: string };
  /** True when the signal stopped the job before its last round. */
  interrupted: boolean;
}

/** Thrown inside the job when its signal aborts. */
class Interrupted extends Error {}

function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Interrupted('interrupted');
}

/** Held-out prompts: the first `evalPrompts` measure the win rate, the rest student agreement. */
export function heldOutPrompts(config: TsalignConfig): { evaluation: Prompt[]; agreement: Prompt[] } {
  const { evalPrompts, agreementPrompts, seed } = config.run;
  const prompts = generateTaskPrompts({ count: evalPrompts + agreementPrompts, seed: deriveSeed('tsalign.heldout', seed), split: 'heldout' });
  return { evaluation: prompts.slice(0, evalPrompts), agreement: prompts.slice(evalPrompts) };
}

/**
 * Returns the prompts of one round (1-based). All rounds come from one seeded stream of
 * train-split prompts, so rounds never share a prompt, and adding rounds keeps the earlier ones.
 */
export function roundPrompts(config: TsalignConfig, round: number): Prompt[] {
  const { promptsPerRound, seed } = config.run;
  const all = generateTaskPrompts({ count: round * promptsPerRound, seed: deriveSeed('tsalign.round-prompts', seed), split: 'train' });
  return all.slice((round - 1) * promptsPerRound);
}

/**
 * Checks that the task suite holds enough distinct prompts for every round and for the held-out
 * evaluation, so that a too-large count fails at once rather than at round 3 or after the
 * warm-up. Throws UsageError naming the keys to change.
 */
export function checkPromptCounts(config: TsalignConfig): void {
  const { rounds, promptsPerRound, evalPrompts, agreementPrompts } = config.run;
  try {
    roundPrompts(config, rounds);
  } catch (error) {
    if (!(error instanceof TaskPromptsExhaustedError)) throw error;
    throw new UsageError(
      `run.promptsPerRound=${promptsPerRound} over run.rounds=${rounds} needs ${error.requested} distinct train-split task prompts, ` +
        `but the task suite ran out after ${error.drawn}; lower run.promptsPerRound to at most ${Math.floor(error.drawn / rounds)} or lower run.rounds`,
      { cause: error },
    );
  }
  try {
    heldOutPrompts(config);
  } catch (error) {
    if (!(error instanceof TaskPromptsExhaustedError)) throw error;
    throw new UsageError(
      `run.evalPrompts=${evalPrompts} plus run.agreementPrompts=${agreementPrompts} needs ${error.requested} distinct held-out task prompts, ` +
        `but the task suite ran out after ${error.drawn}; lower run.evalPrompts or run.agreementPrompts so their sum is at most ${error.drawn}`,
      { cause: error },
    );
  }
}

/** Returns the comparisons a teacher judgment implies, with texts from the candidate set. */
export function outcomeComparisons(outcome: PromptOutcome): TeacherComparison[] {
  const paired = outcome.paired;
  const judgment = paired?.judgment;
  if (!paired || !judgment || judgment.error !== null || judgment.scores.length !== judgment.candidateIds.length) return [];
  const texts = new Map(paired.candidates.map((candidate) => [candidate.id, candidate.text]));
  const ranked = judgment.candidateIds.flatMap((id, i) => (texts.has(id) ? [{ text: texts.get(id)!, score: judgment.scores[i]! }] : []));
  return comparisonsFromRanking(paired.prompt.text, ranked);
}

/** Measures of the chain's part of a round, from its outcomes. */
function chainMeasures(outcomes: readonly PromptOutcome[], teacherCalls: number) {
  const prompts = outcomes.length;
  const pairs = outcomes.flatMap((outcome) => outcome.records.pairs);
  const decisions = outcomes.flatMap((outcome) => outcome.records.candidates.map((set) => set.decision));
  const audits = outcomes.flatMap((outcome) => (outcome.paired?.auditAgrees === undefined || outcome.paired.auditAgrees === null ? [] : [outcome.paired.auditAgrees]));
  const gaps = pairs.map((pair) => pair.chosen.length - pair.rejected.length);
  return {
    prompts,
    pairs: pairs.length,
    teacherCalls,
    teacherCallsPerPrompt: prompts === 0 ? 0 : teacherCalls / prompts,
    gateRate: prompts === 0 ? 0 : decisions.filter((decision) => decision === 'STUDENT').length / prompts,
    audited: audits.length,
    auditedPrecision: auditedPrecision(audits),
    lengthGap: gaps.length === 0 ? null : gaps.reduce((sum, gap) => sum + gap, 0) / gaps.length,
    deadLetters: outcomes.filter((outcome) => outcome.paired === null).length,
  };
}

function metricRecords(row: RoundMeasures, at: number): Metric[] {
  const labels = { round: String(row.round) };
  const values: Record<string, number | null> = {
    'run/pairs': row.pairs,
    'run/teacher_calls_per_prompt': row.teacherCallsPerPrompt,
    'run/gate_rate': row.gateRate,
    'run/audited_precision': row.auditedPrecision,
    'run/student_agreement': row.studentAgreement,
    'run/length_gap': row.lengthGap,
    'run/win_rate': row.winRate,
    'run/win_rate_low': row.winRateLow,
    'run/win_rate_high': row.winRateHigh,
    'run/seconds': row.seconds,
  };
  return Object.entries(values)
    .filter((entry): entry is [string, number] => entry[1] !== null)
    .map(([name, value]) => ({ name, value, labels, at: BigInt(at) }));
}

/** The evaluation fixtures shared by every round: prompts, base responses, held-out comparisons. */
export interface Evaluation {
  prompts: Prompt[];
  baseResponses: string[];
  /** Mean teacher score of `baseResponses`: the starting point of `evalScore`. */
  baseMeanScore: number;
  comparisons: TeacherComparison[];
}

/** Samples and grades the base policy's evaluation responses and builds the held-out comparisons. */
export async function prepareEvaluation(config: TsalignConfig, basePolicy: ResponseSampler, teacher: Teacher, signal?: AbortSignal): Promise<Evaluation> {
  const { evaluation, agreement } = heldOutPrompts(config);
  const sampling = { seed: config.run.seed, temperature: config.run.evalTemperature, maxTokens: config.chain.maxTokens };
  const baseResponses = await respond(basePolicy, evaluation, sampling, signal);
  const comparisons = await heldOutComparisons(basePolicy, teacher, agreement, {
    seed: config.run.seed,
    temperature: config.chain.temperature,
    maxTokens: config.chain.maxTokens,
    k: config.chain.candidates,
  }, signal);
  const baseMeanScore = await meanScore(teacher, evaluation, baseResponses, signal);
  return { prompts: evaluation, baseResponses, baseMeanScore, comparisons };
}

async function evaluateRound(config: TsalignConfig, evaluation: Evaluation, policy: Policy, student: RewardModel, teacher: Teacher, signal?: AbortSignal) {
  const responses = await respond(policy, evaluation.prompts, { seed: config.run.seed, temperature: config.run.evalTemperature, maxTokens: config.chain.maxTokens }, signal);
  const wins = await winRate(teacher, evaluation.prompts, responses, evaluation.baseResponses, signal);
  const agreement = await studentAgreement((items) => student.score(items), evaluation.comparisons);
  return { wins, agreement };
}

/** Appends the round's prompts to one partition of the prompts topic and returns their range. */
async function feedRound(transport: Transport, prefix: string, config: TsalignConfig, round: number): Promise<FedRound> {
  const topic = topicName('prompts', prefix);
  const info = (await transport.listTopics()).find((candidate) => candidate.name === topic);
  const partition = (round - 1) % Math.max(1, info?.partitions ?? 1);
  const prompts = roundPrompts(config, round);
  // One produce call to one explicit partition keeps the round's prompts contiguous.
  // NOTE: another producer writing to the same partition at the same time could interleave.
  const positions = await transport.produce(
    prompts.map((prompt) => {
      const encoded = encodeRecord('Prompt', prompt);
      return { topic, key: prompt.id, value: encoded.value, headers: encoded.headers, partition };
    }),
  );
  const offsets = positions.map((position) => position.offset);
  const from = Math.min(...offsets);
  const to = Math.max(...offsets) + 1;
  if (to - from !== prompts.length) {
    throw new Error(`the prompts of round ${round} are not contiguous in ${topic}/${partition} (offsets ${from} to ${to - 1} for ${prompts.length} prompts); another producer wrote to the partition meanwhile: run again`);
  }
  return { round, topic, partition, from: String(from), to: String(to) };
}

/** Loads a model version for the chain, keeping track of loaded models to free them later. */
class ChainModels {
  private readonly loaded: Array<Policy | RewardModel> = [];

  constructor(private readonly config: TsalignConfig) {}

  async policy(ref: { version: string; uri: string; sha256: string }): Promise<SamplerHandle> {
    const policy = await loadPolicy(ref.uri, { expectedSha256: ref.sha256 });
    this.loaded.push(policy);
    return policyHandle(policy, ref.version, this.config.chain);
  }

  async student(ref: { version: string; uri: string; sha256: string }): Promise<ScorerHandle> {
    const student = await loadRewardModel(ref.uri, { expectedSha256: ref.sha256 });
    this.loaded.push(student);
    return studentHandle(student, ref.version);
  }

  dispose(): void {
    for (const model of this.loaded.splice(0)) model.dispose();
  }
}

/** Runs the main job; see the file comment. Returns when every round is done or the signal aborted. */
export async function runJob(options: RunJobOptions): Promise<RunJobResult> {
  const { transport, dataDir, topicPrefix, signal } = options;
  const { config, json: configJson, hash } = options.config;
  const log = childLogger('run', { dataDir: transport.address });
  const runDir = join(dataDir, 'run');
  const progress = options.onProgress ?? (() => undefined);
  checkPromptCounts(config);
  const teacher = createTeacher(config.teacher.kind, config.teacher);

  let state = readRunState(runDir, config, transportKey(transport.kind, topicPrefix));
  await ensureTopics(transport, topicPrefix);

  const writers = chainWriters(transport, topicPrefix);
  const updatesWriter = new RecordWriter(transport, { topic: topicName('model-updates', topicPrefix), recordType: 'ModelUpdate', key: (record) => record.version });
  const roundsWriter = new RecordWriter(transport, { topic: topicName('rounds', topicPrefix), recordType: 'RoundManifest', key: (record) => String(record.round) });
  const metricsWriter = new RecordWriter(transport, { topic: topicName('metrics', topicPrefix), recordType: 'Metric', key: (record) => record.name });

  let interrupted = false;
  let trainer: Trainer | null = null;
  let basePolicy: Policy | null = null;
  try {
    if (state === null) {
      progress('warming up the base policy');
      const base = await prepareBase({
        config,
        runDir,
        teacher,
        signal,
        onStep: (step, total, loss) => progress(`warm-up step ${step}/${total}, loss ${loss.toFixed(3)}`),
      });
      state = {
        format: RUN_STATE_FORMAT,
        formatVersion: RUN_STATE_FORMAT_VERSION,
        identity: runIdentity(config),
        configHash: hash,
        base: { policy: base.policy, student: base.student },
        rounds: [],
        trainer: null,
        fed: [],
        transport: transportKey(transport.kind, topicPrefix),
      };
      // Announce the base models, so the chain workers and replay can find their checkpoints.
      for (const [model, ref] of [['POLICY', base.policy], ['STUDENT', base.student]] as const) {
        await updatesWriter.write({ model, version: ref.version, parentVersion: null, round: 0, uri: ref.uri, sha256: ref.sha256, step: 0n, metrics: {} });
      }
    }
    state.configHash = hash;
    checkSignal(signal);

    progress('preparing the held-out evaluation');
    const started = Date.now();
    basePolicy = await loadPolicy(state.base.policy.uri, { expectedSha256: state.base.policy.sha256 });
    const evaluation = await prepareEvaluation(config, basePolicy, teacher, signal);

    if (state.rounds.length === 0) {
      const baseStudent = await loadRewardModel(state.base.student.uri, { expectedSha256: state.base.student.sha256 });
      const agreement = await studentAgreement((items) => baseStudent.score(items), evaluation.comparisons);
      baseStudent.dispose();
      const n = evaluation.prompts.length;
      // Round 0 is the base policy against itself: the same prompts, seeds and weights give the
      // same responses, so every comparison is a tie and the win rate is exactly one half.
      const row: RoundMeasures = {
        round: 0,
        prompts: 0,
        pairs: 0,
        pairsTrained: 0,
        teacherCalls: 0,
        teacherCallsPerPrompt: 0,
        gateRate: 0,
        audited: 0,
        auditedPrecision: null,
        studentAgreement: agreement,
        agreementComparisons: evaluation.comparisons.length,
        lengthGap: null,
        winRate: 0.5,
        winRateLow: 0.5,
        winRateHigh: 0.5,
        wins: 0,
        losses: 0,
        ties: n,
        evalScore: evaluation.baseMeanScore,
        seconds: (Date.now() - started) / 1000,
      };
      state.rounds.push(row);
      writeRunState(runDir, state);
    }
    for (const row of state.rounds) options.onRound?.(row);

    const store = new DirectoryModelStore(join(runDir, 'checkpoints'), join(runDir, 'trainer'));
    const publish = async (update: ModelUpdate): Promise<void> => {
      await updatesWriter.write(update);
    };
    const trainerOptions = { config, configJson, configHash: hash, store, publish };
    trainer = state.trainer === null ? await Trainer.start(trainerOptions, 1, state.base.policy, state.base.student) : await Trainer.resume(trainerOptions, state.trainer);

    for (let round = state.rounds.length; round <= config.run.rounds; round++) {
      checkSignal(signal);
      const roundStarted = Date.now();
      if (trainer.round !== round) {
        throw new Error(`the trainer state is at round ${trainer.round} but the run continues with round ${round}; the run state in ${runDir} is inconsistent: use a new --data-dir`);
      }

      let fed = state.fed.find((entry) => entry.round === round);
      if (fed === undefined) {
        fed = await feedRound(transport, topicPrefix, config, round);
        state.fed.push(fed);
        writeRunState(runDir, state);
      }
      const range: OffsetRange = fedRange(fed);
      const total = Number(range.to - range.from);

      const roundResult = await runRound({
        transport,
        config,
        round,
        range,
        trainer,
        teacher,
        writers,
        signal,
        onProgress: (done, pairs) => progress(`round ${round}: ${done}/${total} prompts, ${pairs} pairs`),
        onUpdate: publish,
      });
      checkSignal(signal);

      progress(`round ${round}: training on ${roundResult.measures.pairs} pairs`);
      const manifest: RoundManifest = await trainer.closeRound({
        promptOffsets: [range],
        summary: {
          prompts: roundResult.measures.prompts,
          pairs: roundResult.measures.pairs,
          teacherCalls: roundResult.measures.teacherCalls,
          audited: roundResult.measures.audited,
          deadLetters: roundResult.measures.deadLetters,
        },
        signal,
      });
      await roundsWriter.write(manifest);

      progress(`round ${round}: evaluating`);
      const { wins, agreement } = await evaluateRound(config, evaluation, trainer.policy, trainer.student, teacher, signal);
      const measures = roundResult.measures;
      const row: RoundMeasures = {
        round,
        prompts: measures.prompts,
        pairs: measures.pairs,
        pairsTrained: manifest.summary.pairsTrained ?? 0,
        teacherCalls: measures.teacherCalls,
        teacherCallsPerPrompt: measures.teacherCallsPerPrompt,
        gateRate: measures.gateRate,
        audited: measures.audited,
        auditedPrecision: measures.auditedPrecision,
        studentAgreement: agreement,
        agreementComparisons: evaluation.comparisons.length,
        lengthGap: measures.lengthGap,
        winRate: wins.winRate,
        winRateLow: wins.low,
        winRateHigh: wins.high,
        wins: wins.wins,
        losses: wins.losses,
        ties: wins.ties,
        evalScore: wins.meanScore,
        seconds: (Date.now() - roundStarted) / 1000,
      };
      state.rounds.push(row);
      state.trainer = trainer.snapshot();
      writeRunState(runDir, state);
      for (const metric of metricRecords(row, Date.now())) void metricsWriter.write(metric);
      await metricsWriter.flush();
      log.info({ round, pairs: row.pairs, winRate: row.winRate, studentAgreement: row.studentAgreement }, 'round completed');
      options.onRound?.(row);
    }
  } catch (error) {
    if (!(error instanceof Interrupted) && !(signal?.aborted && isAbort(error))) throw error;
    interrupted = true;
    log.info('run interrupted; the next run continues after the last completed round');
  } finally {
    trainer?.dispose();
    basePolicy?.dispose();
    await Promise.all([writers.candidates.flush(), writers.judgments.flush(), writers.pairs.flush(), writers.dlq.flush(), updatesWriter.flush(), roundsWriter.flush(), metricsWriter.flush()]);
  }

  const rounds = state?.rounds ?? [];
  const report = writeReport(dataDir, buildReport(options, rounds));
  return { rounds, report, interrupted: interrupted || rounds.length <= config.run.rounds };
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error instanceof Interrupted);
}

/** Notes that compare the measured figures with the job's targets. */
export function targetNotes(rounds: readonly RoundMeasures[]): string[] {
  const trained = rounds.filter((row) => row.round > 0);
  if (trained.length === 0) return ['no round completed yet'];
  const first = trained[0]!;
  const last = trained[trained.length - 1]!;
  const pct = (value: number): string => `${(value * 100).toFixed(1)}%`;
  const notes = [
    `final win rate vs base ${pct(last.winRate)} (95% interval ${pct(last.winRateLow)} to ${pct(last.winRateHigh)}); target at least 65%: ${last.winRate >= 0.65 ? 'met' : 'missed'}`,
    `student agreement ${pct(rounds[0]!.studentAgreement)} at round 0, ${pct(first.studentAgreement)} after round ${first.round}, ${pct(last.studentAgreement)} after round ${last.round}`,
    `teacher calls per prompt ${first.teacherCallsPerPrompt.toFixed(2)} in round ${first.round}, ${last.teacherCallsPerPrompt.toFixed(2)} in round ${last.round}`,
  ];
  const audited = trained.filter((row) => row.auditedPrecision !== null);
  if (audited.length > 0) {
    const total = audited.reduce((sum, row) => sum + row.audited, 0);
    const agreed = audited.reduce((sum, row) => sum + row.audited * row.auditedPrecision!, 0);
    notes.push(`audited student precision ${pct(agreed / total)} over ${total} audits; target at least 90%: ${agreed / total >= 0.9 ? 'met' : 'missed'}`);
  } else {
    notes.push('no confident student decision was audited, so audited precision is unmeasured');
  }
  return notes;
}

function buildReport(options: RunJobOptions, rounds: RoundMeasures[]): RunReport {
  return {
    version: 1,
    createdAt: new Date().toISOString(),
    transport: `${options.transport.kind} ${options.transport.address}`,
    backend: options.backend ?? 'unknown',
    teacher: options.config.config.teacher.kind,
    configHash: options.config.hash,
    config: options.config.config,
    rounds,
    notes: targetNotes(rounds),
  };
}

interface RunRoundOptions {
  transport: Transport;
  config: TsalignConfig;
  round: number;
  range: OffsetRange;
  trainer: Trainer;
  teacher: Teacher;
  writers: ReturnType<typeof chainWriters>;
  signal?: AbortSignal;
  onProgress: (done: number, pairs: number) => void;
  onUpdate: (update: ModelUpdate) => Promise<void>;
}

/**
 * Runs the chain over the round's prompts with the trainer's current models. In continuous mode
 * (`publishEvery > 0`) pairs go to the trainer as they come, and published models are swapped
 * in. Otherwise they go to it in offset order once the chain is done.
 */
async function runRound(options: RunRoundOptions) {
  const { config, trainer, round } = options;
  const continuous = config.trainer.publishEvery > 0;
  const models = new ChainModels(config);
  const policyRef: ModelRef = trainer.policyRef;
  const studentRef: ModelRef = trainer.studentRef;
  const registry = new ModelRegistry({ policy: await models.policy(policyRef), student: await models.student(studentRef) });
  let done = 0;
  let pairs = 0;
  try {
    const result = await runChainRound({
      transport: options.transport,
      config,
      round,
      range: options.range,
      models: registry,
      teacher: options.teacher,
      cache: new Map(),
      writers: options.writers,
      signal: options.signal,
      onOutcome: async (outcome) => {
        done++;
        pairs += outcome.records.pairs.length;
        options.onProgress(done, pairs);
        if (continuous) {
          await trainer.addComparisons(outcomeComparisons(outcome));
          await trainer.addPairs(outcome.records.pairs);
          await swapPublished(registry, trainer, models);
        }
      },
    });
    if (!continuous) {
      for (const outcome of result.outcomes) {
        await trainer.addComparisons(outcomeComparisons(outcome));
        await trainer.addPairs(outcome.records.pairs);
      }
    }
    return { measures: chainMeasures(result.outcomes, result.stats.teacher.calls) };
  } finally {
    registry.close();
    models.dispose();
  }
}

/** Swaps the chain's models to the trainer's latest published versions, if they changed. */
async function swapPublished(registry: ModelRegistry, trainer: Trainer, models: ChainModels): Promise<void> {
  const policy = trainer.policyRef;
  const student = trainer.studentRef;
  const base = { parentVersion: null, round: trainer.round, step: 0n, metrics: {} };
  if (registry.policy().version !== policy.version) {
    await registry.swap({ ...base, model: 'POLICY', version: policy.version, uri: policy.uri, sha256: policy.sha256 }, () => models.policy(policy));
  }
  if (registry.student().version !== student.version) {
    await registry.swap({ ...base, model: 'STUDENT', version: student.version, uri: student.uri, sha256: student.sha256 }, () => models.student(student));
  }
}
