import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadRewardModel } from '../models/checkpoint';
import type { RewardModel } from '../models/reward-model';
import type { Candidate, Prompt } from '../streams/records';
import { UsageError } from '../util/errors';
import { childLogger, type Logger } from '../util/logger';
import type { Teacher } from './types';

/** Settings of the reward-model teacher, mirroring the `teacher.rewardModel` section of the run configuration. */
export interface RewardModelTeacherConfig {
  /** Checkpoint directory of a reward model, e.g. written by `tsalign rm fit`. Required. */
  checkpoint?: string;
  /** The checkpoint sha256 the caller expects; a checkpoint with another one is rejected. */
  expectedSha256?: string;
}

/** Characters of the checkpoint sha256 in the teacher's name. */
const NAME_SHA_LENGTH = 16;

/**
 * Returns the checkpoint sha256 recorded in `checkpoint.json`, read synchronously so the teacher's
 * name is known at construction. Loading the weights verifies it against the files.
 */
function recordedSha256(dir: string): string {
  const infoPath = path.join(dir, 'checkpoint.json');
  let sha256: unknown;
  try {
    sha256 = (JSON.parse(readFileSync(infoPath, 'utf8')) as { sha256?: unknown }).sha256;
  } catch (error) {
    throw new UsageError(
      `invalid teacher.rewardModel.checkpoint ${JSON.stringify(dir)}: cannot read ${infoPath} ` +
        `(${(error as Error).message}); point it at a reward-model checkpoint directory, e.g. from tsalign rm fit`,
      { cause: error },
    );
  }
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new UsageError(
      `invalid teacher.rewardModel.checkpoint ${JSON.stringify(dir)}: ${infoPath} records no sha256, so it is not a tsalign checkpoint`,
    );
  }
  return sha256;
}

/**
 * The `reward-model` teacher: scores every shortlisted response with a tfjs reward model, on the
 * tfjs backend the process has selected. The weights load on the first `rank` call, verified
 * against the checkpoint sha256 that the teacher's name carries, so one name always means one
 * set of weights. A checkpoint that fails to load fails every call with the same non-retriable
 * error.
 */
export class RewardModelTeacher implements Teacher {
  readonly name: string;
  /** Checkpoint sha256, from checkpoint.json and verified when the weights load. */
  readonly sha256: string;
  private readonly dir: string;
  private readonly log: Logger;
  /** The loaded model; null until the first `rank` call starts loading it. */
  private model: Promise<RewardModel> | null = null;

  constructor(config: RewardModelTeacherConfig) {
    const dir = config.checkpoint;
    if (typeof dir !== 'string' || dir === '') {
      throw new UsageError(
        'missing teacher.rewardModel.checkpoint: the reward-model teacher needs the checkpoint directory of a reward model, e.g. from tsalign rm fit',
      );
    }
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new UsageError(`invalid teacher.rewardModel.checkpoint ${JSON.stringify(dir)}: no such directory`);
    }
    this.dir = dir;
    this.sha256 = recordedSha256(dir);
    if (config.expectedSha256 !== undefined && config.expectedSha256 !== this.sha256) {
      throw new UsageError(
        `reward-model checkpoint ${dir} has sha256 ${this.sha256}, but ${config.expectedSha256} was expected: ` +
          'the directory contains a different checkpoint than the one requested',
      );
    }
    this.name = `reward-model:${this.sha256.slice(0, NAME_SHA_LENGTH)}`;
    this.log = childLogger('teacher.reward-model', { checkpoint: dir, sha256: this.sha256 });
  }

  /** Loads the weights now instead of on the first call, so a bad checkpoint fails early. */
  async load(): Promise<RewardModel> {
    if (this.model === null) {
      this.model = loadRewardModel(this.dir, { expectedSha256: this.sha256 });
      this.model.then(
        () => this.log.info('reward model loaded'),
        (error: unknown) => this.log.error({ err: (error as Error).message }, 'reward model failed to load'),
      );
    }
    return this.model;
  }

  async rank(prompt: Prompt, shortlist: readonly Candidate[], signal: AbortSignal): Promise<number[]> {
    signal.throwIfAborted();
    const model = await this.load();
    signal.throwIfAborted();
    const scores = await model.score(shortlist.map((candidate) => ({ prompt: prompt.text, response: candidate.text })));
    const invalid = scores.findIndex((score) => !Number.isFinite(score));
    if (invalid >= 0) {
      throw new Error(
        `reward model ${this.name} gave candidate ${shortlist[invalid]!.id} of prompt ${prompt.id} the non-finite ` +
          `score ${scores[invalid]}: the checkpoint's weights are likely diverged, so refit it`,
      );
    }
    return scores;
  }

  /** Frees the model's tensors. The teacher must not be used afterwards. */
  async dispose(): Promise<void> {
    if (this.model === null) return;
    const model = await this.model.catch(() => null);
    model?.dispose();
  }
}

export function createRewardModelTeacher(config: RewardModelTeacherConfig): RewardModelTeacher {
  return new RewardModelTeacher(config);
}
