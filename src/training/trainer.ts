/**
 * The trainer: it consumes preference pairs and teacher comparisons, updates the policy with DPO
 * against a frozen reference and the student with Bradley-Terry, publishes checkpoints, and
 * closes rounds.
 *
 * A round starts with the reference equal to the policy (its version and sha256 are recorded).
 * Pairs sampled by a policy older than the round's reference are skipped and counted, and a
 * pair id trained on before is ignored, so redelivered pairs are never trained twice. With
 * `publishEvery = 0` (the default) the round's pairs are collected and trained when the round
 * closes, `epochs` passes in a seeded order: this is TS-Align's iterative scheme. With
 * `publishEvery = n > 0` each full batch is trained as it arrives, a checkpoint is published
 * every n optimizer steps, and the remaining `epochs - 1` passes run at round close.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Policy } from '../models/policy';
import type { RewardModel } from '../models/reward-model';
import type { TsalignConfig } from '../config/schema';
import type { ModelKind, ModelUpdate, OffsetRange, PreferencePair, RoundManifest } from '../streams/records';
import { DpoTrainer, type DpoStepResult } from './dpo-step';
import { RewardTrainer, type RewardStepResult } from './bt-step';
import { ReplayBuffer, type ReplayBufferState, type TeacherComparison } from './replay-buffer';
import { contentHash } from '../util/hash';
import { childLogger, type Logger } from '../util/logger';

/** A saved model: its version, checkpoint location and sha256. */
export interface ModelRef {
  version: string;
  uri: string;
  sha256: string;
}

/** Checkpoint storage of the trainer; `DirectoryModelStore` in src/run/model-store.ts implements it. */
export interface ModelStore {
  savePolicy(policy: Policy, version: string): Promise<ModelRef>;
  saveStudent(student: RewardModel, version: string): Promise<ModelRef>;
  /** Loads and verifies a checkpoint; throws when it is missing or its sha256 differs. */
  loadPolicy(ref: ModelRef): Promise<Policy>;
  loadStudent(ref: ModelRef): Promise<RewardModel>;
  /** Persists the trainer state atomically, after the checkpoints it names are durable. */
  saveTrainerState(state: TrainerState): Promise<void>;
}

/** Counters of one round. */
export interface RoundCounters {
  /** Pairs accepted for training. */
  pairs: number;
  /** Pairs skipped because their policy is older than the round's reference. */
  stalePairs: number;
  /** Pairs ignored because their id was seen before. */
  duplicatePairs: number;
  /** Teacher comparisons accepted for the student. */
  comparisons: number;
  policySteps: number;
  studentSteps: number;
}

/** Everything needed to resume the trainer, saved with each checkpoint. */
export interface TrainerState {
  format: 1;
  configHash: string;
  /** The open round. */
  round: number;
  policy: ModelRef;
  student: ModelRef;
  /** The frozen DPO reference: the policy at the round's start. */
  reference: ModelRef;
  /** The student at the round's start. */
  studentIn: ModelRef;
  policySteps: number;
  studentSteps: number;
  /** Policy versions whose pairs this round trains on: the reference and what was published since. */
  roundPolicyVersions: string[];
  /** Ids of every pair trained on or accepted for the open round. */
  seenPairIds: string[];
  /** Pairs accepted in the open round, in arrival order. */
  roundPairs: PreferencePair[];
  /** How many of `roundPairs` the streaming pass has trained. */
  streamedPairs: number;
  /** Teacher comparisons accepted in the open round, in arrival order. */
  roundComparisons: TeacherComparison[];
  streamedComparisons: number;
  replay: ReplayBufferState;
  counters: RoundCounters;
}

export interface TrainerOptions {
  config: TsalignConfig;
  configJson: string;
  configHash: string;
  store: ModelStore;
  /** Called with each published model; `tsalign run` and the worker write it to model-updates. */
  publish?: (update: ModelUpdate) => Promise<void>;
  logger?: Logger;
}

/** Facts that `closeRound` records beyond the trainer's own state. */
export interface RoundCloseInfo {
  promptOffsets: OffsetRange[];
  seeds?: Record<string, bigint>;
  /** Extra summary figures (the chain's counters); the trainer adds its own. */
  summary?: Record<string, number>;
  /**
   * Stops the round's training between steps with an AbortError. The trainer is then mid-round
   * and must be disposed; resume from the last snapshot to redo the round.
   */
  signal?: AbortSignal;
}

/** Result of offering pairs to the trainer. */
export interface AcceptResult {
  accepted: number;
  stale: number;
  duplicate: number;
}

/**
 * Lets the event loop run (a training step is synchronous inside its promise, so a shutdown
 * handler could not abort the signal otherwise), then throws if the signal aborted.
 */
async function yieldAndCheck(signal: AbortSignal | undefined): Promise<void> {
  await yieldToEventLoop();
  signal?.throwIfAborted();
}

/** Returns the version name of a model published at a round and step, e.g. `policy-r2-s40`. */
export function modelVersion(model: ModelKind, round: number, step: number): string {
  return `${model === 'POLICY' ? 'policy' : 'student'}-r${round}-s${step}`;
}

/** The fields of `TrainerState` that change only together with the saved weights. */
type CheckpointedFields = Pick<
  TrainerState,
  'policy' | 'student' | 'policySteps' | 'studentSteps' | 'roundPolicyVersions' | 'streamedPairs' | 'streamedComparisons' | 'replay'
> & { policyStepsInRound: number; studentStepsInRound: number };

function checkpointedFields(state: TrainerState): CheckpointedFields {
  return structuredClone({
    policy: state.policy,
    student: state.student,
    policySteps: state.policySteps,
    studentSteps: state.studentSteps,
    roundPolicyVersions: state.roundPolicyVersions,
    streamedPairs: state.streamedPairs,
    streamedComparisons: state.streamedComparisons,
    replay: state.replay,
    policyStepsInRound: state.counters.policySteps,
    studentStepsInRound: state.counters.studentSteps,
  });
}

function emptyCounters(): RoundCounters {
  return { pairs: 0, stalePairs: 0, duplicatePairs: 0, comparisons: 0, policySteps: 0, studentSteps: 0 };
}

/**
 * Returns the items in a seeded order: sorted by the hash of (seed, round, epoch, id). The order
 * depends only on those, never on arrival order, so a retrain from recorded pairs repeats it.
 */
export function epochOrder<T extends { id: string }>(items: readonly T[], seed: number, round: number, epoch: number): T[] {
  const keyed = items.map((item) => ({ item, key: contentHash(['tsalign.epoch', seed, round, epoch, item.id], 16) }));
  keyed.sort((a, b) => a.key.localeCompare(b.key));
  return keyed.map(({ item }) => item);
}

export class Trainer {
  private readonly log: Logger;
  private dpo: DpoTrainer;
  private rewardTrainer: RewardTrainer;
  private readonly replay: ReplayBuffer;
  private readonly seenPairIds: Set<string>;
  private readonly roundComparisonIds: Set<string>;
  /** Policy steps since the last published checkpoint. */
  private unpublishedSteps = 0;
  /**
   * The state fields that describe the weights, as of the last checkpoint. `persistReceived`
   * saves them with everything received since, because weights trained after the checkpoint
   * are lost in a crash and their pairs must be trained again on resume.
   */
  private checkpointed: CheckpointedFields;
  /** Serializes every operation, so concurrent callers never interleave optimizer steps. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly options: TrainerOptions,
    readonly policy: Policy,
    private reference: Policy,
    readonly student: RewardModel,
    private state: TrainerState,
  ) {
    
    this.log = options.logger ?? childLogger('trainer');
    this.dpo = this.newDpoTrainer();
    this.rewardTrainer = this.newRewardTrainer();
    this.replay = ReplayBuffer.fromJSON(state.replay);
    this.checkpointed = checkpointedFields(state);
    this.seenPairIds = new Set(state.seenPairIds);
    this.roundComparisonIds = new Set(state.roundComparisons.map((comparison) => comparison.id));
  }

  /**
   * Creates the DPO trainer with fresh Adam moments. Each round starts fresh, so a round's
   * training depends only on its reference, its pairs and the config, and a resumed or
   * replayed round trains exactly as the original did.
   */
  private newDpoTrainer(): DpoTrainer {
    const { trainer } = this.options.config;
    return new DpoTrainer(this.policy, this.reference, {
      beta: trainer.beta,
      lossType: 'sigmoid',
      labelSmoothing: 0,
      nllWeight: trainer.nllWeight,
      batchSize: trainer.batchSize,
      lr: trainer.lr,
      warmupSteps: 0,
      clipNorm: 1,
      weightDecay: 0,
    });
  }

  private newRewardTrainer(): RewardTrainer {
    const { trainer } = this.options.config;
    return new RewardTrainer(this.student, {
      batchSize: trainer.studentBatchSize + trainer.replayPerStep,
      lr: trainer.studentLr,
      warmupSteps: 0,
      clipNorm: 1,
      weightDecay: 0,
    });
  }

  /**
   * Starts a trainer at round `round` from saved models: the policy (also the reference) and
   * the student, as the round's inputs.
   */
  static async start(options: TrainerOptions, round: number, policyRef: ModelRef, studentRef: ModelRef): Promise<Trainer> {
    const { trainer, run } = options.config;
    const state: TrainerState = {
      format: 1,
      configHash: options.configHash,
      round,
      policy: policyRef,
      student: studentRef,
      reference: policyRef,
      studentIn: studentRef,
      policySteps: 0,
      studentSteps: 0,
      roundPolicyVersions: [policyRef.version],
      seenPairIds: [],
      roundPairs: [],
      streamedPairs: 0,
      roundComparisons: [],
      streamedComparisons: 0,
      replay: new ReplayBuffer(trainer.replayBufferSize, run.seed).toJSON(),
      counters: emptyCounters(),
    };
    await options.store.saveTrainerState(state);
    return Trainer.resume(options, state);
  }

  /**
   * Resumes from a saved state: loads the policy, the reference and the student and checks
   * their sha256. Pairs accepted in the open round but not yet checkpointed are retrained from
   * the state's `roundPairs` by the next `closeRound`, never twice.
   */
  static async resume(options: TrainerOptions, state: TrainerState): Promise<Trainer> {
    const policy = await options.store.loadPolicy(state.policy);
    const reference = await options.store.loadPolicy(state.reference);
    const student = await options.store.loadStudent(state.student);
    return new Trainer(options, policy, reference, student, state);
  }

  get round(): number {
    return this.state.round;
  }

  get counters(): Readonly<RoundCounters> {
    return this.state.counters;
  }

  get policyRef(): ModelRef {
    return this.state.policy;
  }

  get studentRef(): ModelRef {
    return this.state.student;
  }

  get referenceRef(): ModelRef {
    return this.state.reference;
  }

  /** Pairs accepted in the open round. */
  get roundPairCount(): number {
    return this.state.roundPairs.length;
  }

  /** Returns a copy of the state as it would be saved now. */
  snapshot(): TrainerState {
    return structuredClone({ ...this.state, seenPairIds: [...this.seenPairIds], replay: this.replay.toJSON() });
  }

  /**
   * Saves the state of the last checkpoint together with every pair and comparison received
   * since, so the caller may then commit the offsets of what it delivered. On resume, the
   * received items that the checkpoint's weights have not seen are trained again.
   */
  persistReceived(): Promise<void> {
    return this.serialize(async () => {
      const { policyStepsInRound, studentStepsInRound, ...fields } = this.checkpointed;
      const state = this.snapshot();
      await this.options.store.saveTrainerState({
        ...state,
        ...structuredClone(fields),
        counters: { ...state.counters, policySteps: policyStepsInRound, studentSteps: studentStepsInRound },
      });
    });
  }

  private serialize<T>(operation: () => Promise<T>): Promise<T> {
    const next = this.queue.then(operation, operation);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Offers pairs for training. Repeated ids and, with `stalePairs: skip`, pairs from a policy
   * other than the round's reference or a version published since are counted and skipped.
   * In continuous mode (`publishEvery > 0`) full batches train at once.
   */
  addPairs(pairs: readonly PreferencePair[]): Promise<AcceptResult> {
    return this.serialize(async () => {
      const result: AcceptResult = { accepted: 0, stale: 0, duplicate: 0 };
      const counters = this.state.counters;
      for (const pair of pairs) {
        if (this.seenPairIds.has(pair.id)) {
          result.duplicate++;
          counters.duplicatePairs++;
          continue;
        }
        if (this.options.config.trainer.stalePairs === 'skip' && !this.state.roundPolicyVersions.includes(pair.policyVersion)) {
          result.stale++;
          counters.stalePairs++;
          this.log.debug({ pairId: pair.id, policyVersion: pair.policyVersion, round: this.state.round }, 'stale pair skipped');
          continue;
        }
        this.seenPairIds.add(pair.id);
        this.state.roundPairs.push(pair);
        counters.pairs++;
        result.accepted++;
      }
      if (this.options.config.trainer.publishEvery > 0) await this.trainStreaming(false);
      return result;
    });
  }

  /** Offers teacher comparisons for the student; repeated ids within the round are ignored. */
  addComparisons(comparisons: readonly TeacherComparison[]): Promise<number> {
    return this.serialize(async () => {
      let accepted = 0;
      for (const comparison of comparisons) {
        if (this.roundComparisonIds.has(comparison.id)) continue;
        this.roundComparisonIds.add(comparison.id);
        this.state.roundComparisons.push(comparison);
        accepted++;
      }
      this.state.counters.comparisons += accepted;
      if (this.options.config.trainer.publishEvery > 0) await this.trainStreaming(false);
      return accepted;
    });
  }

  /** Continuous mode: trains every full batch not streamed yet (all of them when `flush`). */
  private async trainStreaming(flush: boolean): Promise<void> {
    const { batchSize, studentBatchSize, publishEvery } = this.options.config.trainer;
    while (this.state.roundPairs.length - this.state.streamedPairs >= (flush ? 1 : batchSize)) {
      const batch = this.state.roundPairs.slice(this.state.streamedPairs, this.state.streamedPairs + batchSize);
      this.state.streamedPairs += batch.length;
      await this.policyStep(batch);
      if (publishEvery > 0 && this.unpublishedSteps >= publishEvery) await this.publishCheckpoint(false);
    }
    while (this.state.roundComparisons.length - this.state.streamedComparisons >= (flush ? 1 : studentBatchSize)) {
      const batch = this.state.roundComparisons.slice(this.state.streamedComparisons, this.state.streamedComparisons + studentBatchSize);
      this.state.streamedComparisons += batch.length;
      await this.studentStep(batch);
    }
  }

  private async policyStep(pairs: readonly PreferencePair[]): Promise<DpoStepResult> {
    const result = await this.dpo.step(pairs.map((pair) => ({ id: pair.id, prompt: pair.prompt, chosen: pair.chosen, rejected: pair.rejected })));
    this.state.policySteps++;
    this.state.counters.policySteps++;
    this.unpublishedSteps++;
    this.lastPolicyStep = result;
    this.log.debug({ round: this.state.round, step: this.state.policySteps, loss: result.loss, margin: result.margin }, 'policy step');
    return result;
  }

  private async studentStep(comparisons: readonly TeacherComparison[]): Promise<RewardStepResult> {
    const { replayPerStep } = this.options.config.trainer;
    const current = new Set(comparisons.map((comparison) => comparison.id));
    const replayed = this.replay.sample(replayPerStep, this.state.studentSteps, current);
    const result = await this.rewardTrainer.step([...comparisons, ...replayed]);
    this.state.studentSteps++;
    this.state.counters.studentSteps++;
    this.lastStudentStep = result;
    this.log.debug({ round: this.state.round, step: this.state.studentSteps, loss: result.loss, accuracy: result.accuracy }, 'student step');
    return result;
  }

  /** Metrics of the latest steps, for ModelUpdate records. */
  private lastPolicyStep: DpoStepResult | null = null;
  private lastStudentStep: RewardStepResult | null = null;

  /** Saves both models, announces them, and persists the state that names them. */
  private async publishCheckpoint(roundClose: boolean): Promise<void> {
    const { store } = this.options;
    const round = this.state.round;
    const policyRef = await store.savePolicy(this.policy, modelVersion('POLICY', round, this.state.policySteps));
    const studentRef = await store.saveStudent(this.student, modelVersion('STUDENT', round, this.state.studentSteps));
    const previousPolicy = this.state.policy;
    const previousStudent = this.state.student;
    this.state.policy = policyRef;
    this.state.student = studentRef;
    if (!this.state.roundPolicyVersions.includes(policyRef.version)) this.state.roundPolicyVersions.push(policyRef.version);
    this.unpublishedSteps = 0;
    if (!roundClose) {
      await store.saveTrainerState(this.snapshot());
      this.checkpointed = checkpointedFields(this.snapshot());
    }

    const policyMetrics: Record<string, number> = this.lastPolicyStep
      ? { loss: this.lastPolicyStep.loss, margin: this.lastPolicyStep.margin, accuracy: this.lastPolicyStep.accuracy }
      : {};
    const studentMetrics: Record<string, number> = this.lastStudentStep
      ? { loss: this.lastStudentStep.loss, accuracy: this.lastStudentStep.accuracy, margin: this.lastStudentStep.margin }
      : {};
    await this.options.publish?.({
      model: 'POLICY',
      version: policyRef.version,
      parentVersion: previousPolicy.version,
      round,
      uri: policyRef.uri,
      sha256: policyRef.sha256,
      step: BigInt(this.state.policySteps),
      metrics: policyMetrics,
    });
    await this.options.publish?.({
      model: 'STUDENT',
      version: studentRef.version,
      parentVersion: previousStudent.version,
      round,
      uri: studentRef.uri,
      sha256: studentRef.sha256,
      step: BigInt(this.state.studentSteps),
      metrics: studentMetrics,
    });
    this.log.info({ round, policy: policyRef.version, student: studentRef.version }, 'checkpoint published');
  }

  /**
   * Closes the open round. It trains what is left: all `epochs` passes in iterative mode, the
   * remaining passes in continuous mode, and the student on the round's comparisons mixed with
   * replayed earlier ones. Then it publishes both models, makes the policy the next reference,
   * saves the state and returns the round's manifest.
   */
  closeRound(info: RoundCloseInfo): Promise<RoundManifest> {
    return this.serialize(async () => {
      const { trainer, run } = this.options.config;
      const round = this.state.round;
      const continuous = trainer.publishEvery > 0;
      if (continuous) await this.trainStreaming(true);

      const firstEpoch = continuous ? 1 : 0;
      for (let epoch = firstEpoch; epoch < trainer.epochs; epoch++) {
        const ordered = epochOrder(this.state.roundPairs, run.seed, round, epoch);
        for (let start = 0; start < ordered.length; start += trainer.batchSize) {
          await this.policyStep(ordered.slice(start, start + trainer.batchSize));
          await yieldAndCheck(info.signal);
        }
        const comparisons = epochOrder(this.state.roundComparisons, run.seed, round, epoch);
        for (let start = 0; start < comparisons.length; start += trainer.studentBatchSize) {
          await this.studentStep(comparisons.slice(start, start + trainer.studentBatchSize));
          await yieldAndCheck(info.signal);
        }
      }
      // Offered in a seeded order, so the reservoir's content does not depend on arrival order.
      this.replay.add(epochOrder(this.state.roundComparisons, run.seed, round, -1));

      await this.publishCheckpoint(true);
      const counters = this.state.counters;
      const manifest: RoundManifest = {
        round,
        status: 'CLOSED',
        policyIn: this.state.reference.version,
        policyOut: this.state.policy.version,
        studentIn: this.state.studentIn.version,
        studentOut: this.state.student.version,
        referenceVersion: this.state.reference.version,
        referenceSha256: this.state.reference.sha256,
        promptOffsets: info.promptOffsets,
        seeds: { run: BigInt(run.seed), round: BigInt(round), ...(info.seeds ?? {}) },
        config: this.options.configJson,
        configHash: this.options.configHash,
        summary: {
          ...(info.summary ?? {}),
          pairsTrained: counters.pairs,
          stalePairs: counters.stalePairs,
          duplicatePairs: counters.duplicatePairs,
          comparisons: counters.comparisons,
          policySteps: counters.policySteps,
          studentSteps: counters.studentSteps,
          ...(this.lastPolicyStep ? { dpoLoss: this.lastPolicyStep.loss, dpoMargin: this.lastPolicyStep.margin } : {}),
          ...(this.lastStudentStep ? { studentLoss: this.lastStudentStep.loss, studentAccuracy: this.lastStudentStep.accuracy } : {}),
        },
      };

      // The policy as it is now becomes the next round's frozen reference.
      const nextReference = this.policy.clone();
      this.dpo.dispose();
      this.rewardTrainer.dispose();
      this.reference.dispose();
      this.reference = nextReference;
      this.dpo = this.newDpoTrainer();
      this.rewardTrainer = this.newRewardTrainer();
      this.state = {
        ...this.state,
        round: round + 1,
        reference: this.state.policy,
        studentIn: this.state.student,
        roundPolicyVersions: [this.state.policy.version],
        roundPairs: [],
        streamedPairs: 0,
        roundComparisons: [],
        streamedComparisons: 0,
        counters: emptyCounters(),
      };
      this.roundComparisonIds.clear();
      await this.options.store.saveTrainerState(this.snapshot());
      this.checkpointed = checkpointedFields(this.snapshot());
      this.log.info({ round, policyOut: manifest.policyOut, studentOut: manifest.studentOut, pairs: counters.pairs }, 'round closed');
      return manifest;
    });
  }

  /** Reference log-probs of the given pairs under the round's frozen reference. */
  referenceLogprobs(pairs: ReadonlyArray<{ prompt: string; chosen: string; rejected: string }>): Promise<{ chosen: number[]; rejected: number[] }> {
    return this.dpo.referenceLogprobs(pairs);
  }

  dispose(): void {
    this.dpo.dispose();
    this.rewardTrainer.dispose();
    this.reference.dispose();
    this.policy.dispose();
    this.student.dispose();
  }
}
