/**
 * Checkpoints of a run on disk: one directory per model version under `<root>/<version>`,
 * written atomically by `saveCheckpoint`, and the trainer state beside them.
 */
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError, loadPolicy, loadRewardModel, saveCheckpoint } from '../models/checkpoint';
import type { Policy } from '../models/policy';
import type { RewardModel } from '../models/reward-model';
import type { ModelRef, ModelStore, TrainerState } from '../training/trainer';
import { writeFileAtomic } from '../report/write';
import { errorMessage } from '../util/errors';
import { childLogger } from '../util/logger';

export const TRAINER_STATE_FILE = 'trainer-state.json';

/** File name of the trainer state at the start of a round. */
export function roundStartFile(round: number): string {
  return `round-${round}.json`;
}

/** Reads a saved trainer state, or returns null when there is none. Throws on a corrupted file. */
export function readTrainerState(dir: string, name = TRAINER_STATE_FILE): TrainerState | null {
  const file = join(dir, name);
  if (!existsSync(file)) return null;
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(file, 'utf8')) as TrainerState;
  } catch (error) {
    throw new CheckpointError(`trainer state ${file} is not valid JSON (${errorMessage(error)}); the checkpoint directory is corrupted: restore it or start a new --data-dir`);
  }
  if (state.format !== 1) {
    throw new CheckpointError(`trainer state ${file} has format ${JSON.stringify(state.format)}, but this tsalign reads format 1: use the tsalign version that wrote it, or a new --data-dir`);
  }
  return state;
}

/** A `ModelStore` on the local file system. */
export class DirectoryModelStore implements ModelStore {
  private readonly log = childLogger('model-store');

  constructor(
    /** Directory of the checkpoints, one sub-directory per version. */
    readonly root: string,
    /** Directory of the trainer state file; null keeps no state (replay's retrain). */
    readonly stateDir: string | null = root,
  ) {
    mkdirSync(root, { recursive: true });
  }

  async savePolicy(policy: Policy, version: string): Promise<ModelRef> {
    return this.save(policy, version, 'policy');
  }

  async saveStudent(student: RewardModel, version: string): Promise<ModelRef> {
    return this.save(student, version, 'reward-model');
  }

  /**
   * Saves a checkpoint under its version. A directory left with other weights by an interrupted
   * run of the same round is moved aside to `<version>.stale-<time>`, never deleted.
   */
  private async save(model: Policy | RewardModel, version: string, kind: 'policy' | 'reward-model'): Promise<ModelRef> {
    const dir = join(this.root, version);
    try {
      const saved = await saveCheckpoint(dir, model, { kind, version });
      return { version, uri: saved.dir, sha256: saved.sha256 };
    } catch (error) {
      if (!existsSync(dir)) throw error;
      const aside = `${dir}.stale-${Date.now()}`;
      this.log.warn({ version, dir, aside, err: errorMessage(error) }, 'checkpoint directory held other weights; moved aside');
      renameSync(dir, aside);
      const saved = await saveCheckpoint(dir, model, { kind, version });
      return { version, uri: saved.dir, sha256: saved.sha256 };
    }
  }

  loadPolicy(ref: ModelRef): Promise<Policy> {
    return loadPolicy(ref.uri, { expectedSha256: ref.sha256 });
  }

  loadStudent(ref: ModelRef): Promise<RewardModel> {
    return loadRewardModel(ref.uri, { expectedSha256: ref.sha256 });
  }

  /**
   * Writes `trainer-state.json`, and once per round `round-<n>.json`: the state at the start of
   * round n, which `tsalign replay --retrain` resumes from.
   */
  async saveTrainerState(state: TrainerState): Promise<void> {
    if (this.stateDir === null) return;
    mkdirSync(this.stateDir, { recursive: true });
    const json = JSON.stringify(state);
    writeFileAtomic(join(this.stateDir, TRAINER_STATE_FILE), json);
    const roundStart = join(this.stateDir, roundStartFile(state.round));
    if (state.roundPairs.length === 0 && state.counters.policySteps === 0 && !existsSync(roundStart)) writeFileAtomic(roundStart, json);
  }
}
