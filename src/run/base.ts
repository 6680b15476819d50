/**
 * The base models of a run: a tiny policy warmed up with SFT on noisy task demonstrations, and
 * the student (untrained, or trained on a small teacher-labelled seed set). Both are cached in
 * the data directory under a hash of the settings that shape them, so a second run skips the
 * warm-up.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { TsalignConfig, ModelSizeConfig } from '../config/schema';
import { configHash } from '../config/canonical';
import { Policy } from '../models/policy';
import { RewardModel } from '../models/reward-model';
import { createTokenizer, type Tokenizer } from '../models/tokenizer';
import { deriveSeed } from '../models/random';
import { readCheckpointInfo } from '../models/checkpoint';
import type { TransformerConfig } from '../models/gpt';
import { generateTaskPrompts, noisyDemonstrations } from '../tasks';
import { SftTrainer } from '../training/sft-step';
import { RewardTrainer } from '../training/bt-step';
import { epochOrder, modelVersion, type ModelRef } from '../training/trainer';
import type { Teacher } from '../teachers/types';
import { heldOutComparisons } from './evaluate';
import { DirectoryModelStore } from './model-store';
import { childLogger } from '../util/logger';

/** Distinct warm-up demonstrations; steps cycle through them. */
const WARMUP_PROMPTS = 1000;

/** Returns the transformer config of a model size for a tokenizer. */
export function transformerConfig(size: ModelSizeConfig, tokenizer: Tokenizer): TransformerConfig {
  return {
    vocabSize: tokenizer.vocabSize,
    contextLength: size.contextLength,
    dModel: size.embedding,
    nHeads: size.heads,
    nLayers: size.layers,
    dFf: 4 * size.embedding,
  };
}

/**
 * Returns the hash of the settings that shape the base models. Changing anything else (rounds,
 * chain or trainer settings) keeps the cached base.
 */
export function baseKey(config: TsalignConfig): string {
  const { run, models, teacher } = config;
  return configHash({
    models,
    seed: run.seed,
    warmupSteps: run.warmupSteps,
    warmupLr: run.warmupLr,
    warmupBatchSize: run.warmupBatchSize,
    warmupNoise: run.warmupNoise,
    studentSeedPrompts: run.studentSeedPrompts,
    // The seed set is labelled by the teacher, so the teacher shapes the student.
    teacher: run.studentSeedPrompts > 0 ? teacher : null,
  }).slice(0, 16);
}

export interface BaseModels {
  policy: ModelRef;
  student: ModelRef;
  /** True when the models came from the cache. */
  cached: boolean;
}

export interface PrepareBaseOptions {
  config: TsalignConfig;
  /** Directory of the run's files, e.g. `<data dir>/run`. */
  runDir: string;
  /** Needed only when `run.studentSeedPrompts > 0`. */
  teacher?: Teacher;
  /** Called after each warm-up step, for a progress line. */
  onStep?: (step: number, total: number, loss: number) => void;
  signal?: AbortSignal;
}

/** Returns the cached base models, or trains and saves them. */
export async function prepareBase(options: PrepareBaseOptions): Promise<BaseModels> {
  const { config, runDir } = options;
  const log = childLogger('base');
  const key = baseKey(config);
  const store = new DirectoryModelStore(join(runDir, 'base', key), null);
  const policyVersion = modelVersion('POLICY', 0, 0);
  const studentVersion = modelVersion('STUDENT', 0, 0);
  const policyDir = join(store.root, policyVersion);
  const studentDir = join(store.root, studentVersion);
  if (existsSync(policyDir) && existsSync(studentDir)) {
    const policyInfo = await readCheckpointInfo(policyDir);
    const studentInfo = await readCheckpointInfo(studentDir);
    log.info({ key }, 'base models from cache');
    return {
      policy: { version: policyVersion, uri: policyDir, sha256: policyInfo.sha256 },
      student: { version: studentVersion, uri: studentDir, sha256: studentInfo.sha256 },
      cached: true,
    };
  }

  const tokenizer = createTokenizer(config.models.tokenizer);
  const policy = Policy.create(transformerConfig(config.models.policy, tokenizer), tokenizer, deriveSeed('tsalign.base.policy', config.run.seed));
  const student = RewardModel.create(transformerConfig(config.models.student, tokenizer), tokenizer, deriveSeed('tsalign.base.student', config.run.seed));
  try {
    await warmUp(policy, options);
    if (config.run.studentSeedPrompts > 0) await seedStudent(policy, student, options);
    const policyRef = await store.savePolicy(policy, policyVersion);
    const studentRef = await store.saveStudent(student, studentVersion);
    log.info({ key, policy: policyRef.sha256, student: studentRef.sha256 }, 'base models saved');
    return { policy: policyRef, student: studentRef, cached: false };
  } finally {
    policy.dispose();
    student.dispose();
  }
}

/** Trains the policy with SFT on noisy demonstrations of train-split task prompts. */
async function warmUp(policy: Policy, options: PrepareBaseOptions): Promise<void> {
  const { run } = options.config;
  if (run.warmupSteps === 0) return;
  const prompts = generateTaskPrompts({ count: WARMUP_PROMPTS, seed: deriveSeed('tsalign.warmup', run.seed), split: 'train' });
  const demonstrations = noisyDemonstrations(prompts, { seed: run.seed, noise: run.warmupNoise }).map((demo, i) => ({
    id: prompts[i]!.id,
    prompt: demo.prompt,
    response: demo.response,
  }));
  const sft = new SftTrainer(policy, { batchSize: run.warmupBatchSize, lr: run.warmupLr, warmupSteps: Math.min(20, run.warmupSteps), clipNorm: 1 });
  try {
    let order = epochOrder(demonstrations, run.seed, 0, 0);
    let cursor = 0;
    let epoch = 0;
    for (let step = 0; step < run.warmupSteps; step++) {
      options.signal?.throwIfAborted();
      if (cursor + run.warmupBatchSize > order.length) {
        epoch++;
        order = epochOrder(demonstrations, run.seed, 0, epoch);
        cursor = 0;
      }
      const batch = order.slice(cursor, cursor + run.warmupBatchSize);
      cursor += run.warmupBatchSize;
      const result = await sft.step(batch);
      options.onStep?.(step + 1, run.warmupSteps, result.loss);
      // The step runs synchronously inside its promise; without a macrotask break here a
      // SIGINT or SIGTERM handler could not run (and abort the signal) until the warm-up ends.
      await yieldToEventLoop();
    }
  } finally {
    sft.dispose();
  }
}

/**
 * Trains the student on the teacher's rankings of base-policy samples for a seed set of
 * train-split prompts (distinct from the round prompts' seed stream).
 */
async function seedStudent(policy: Policy, student: RewardModel, options: PrepareBaseOptions): Promise<void> {
  const { config, teacher } = options;
  if (teacher === undefined) throw new Error('a teacher is needed to label the student seed set (run.studentSeedPrompts > 0)');
  const prompts = generateTaskPrompts({ count: config.run.studentSeedPrompts, seed: deriveSeed('tsalign.student-seed', config.run.seed), split: 'train' });
  const comparisons = await heldOutComparisons(policy, teacher, prompts, {
    seed: config.run.seed,
    temperature: config.chain.temperature,
    maxTokens: config.chain.maxTokens,
    k: config.chain.candidates,
  }, options.signal);
  const trainer = new RewardTrainer(student, { batchSize: config.trainer.studentBatchSize, lr: config.trainer.studentLr, warmupSteps: 0, clipNorm: 1 });
  try {
    for (let epoch = 0; epoch < Math.max(1, config.trainer.epochs); epoch++) {
      const ordered = epochOrder(comparisons, config.run.seed, 0, epoch);
      for (let start = 0; start < ordered.length; start += config.trainer.studentBatchSize) {
        options.signal?.throwIfAborted();
        await trainer.step(ordered.slice(start, start + config.trainer.studentBatchSize));
        await yieldToEventLoop();
      }
    }
  } finally {
    trainer.dispose();
  }
}
