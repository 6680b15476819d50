import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../util/errors';
import { sha256Hex } from '../util/hash';
import { tsalignVersion } from '../version';
import { type ResolvedTransformerConfig, resolveTransformerConfig } from './gpt';
import { Policy, policyWeightSpecs } from './policy';
import { RewardModel, rewardModelWeightSpecs } from './reward-model';
import { tokenizerFromJSON } from './tokenizer';
import type { WeightSpec } from './weights';

/**
 * Checkpoints are plain directories:
 *
 *   config.json      the model's resolved config
 *   tokenizer.json   the tokenizer's `toJSON()`
 *   weights.json     manifest: name, shape, dtype, byte offset and length of each weight
 *   weights.bin      all weights, float32 little-endian, back to back in manifest order
 *   checkpoint.json  format, versions, kind, per-file sha256 and the checkpoint sha256
 *
 * The checkpoint sha256 is the sha256 of the text `sha256sum` prints for the four data files in
 * the order above: one line `<hex sha256>  <file name>\n` per file. So
 * `sha256sum config.json tokenizer.json weights.json weights.bin | sha256sum` reproduces it.
 */

export const CHECKPOINT_FORMAT = 'tsalign-checkpoint';
export const CHECKPOINT_FORMAT_VERSION = 1;
/** The files the checkpoint sha256 covers, in hashing order. */
export const CHECKPOINT_DATA_FILES = ['config.json', 'tokenizer.json', 'weights.json', 'weights.bin'] as const;
const INFO_FILE = 'checkpoint.json';

export type CheckpointKind = 'policy' | 'reward-model';

export interface CheckpointMeta {
  /** Defaults to the first 16 hex digits of the sha256 of `weights.bin`. */
  version?: string;
  parentVersion?: string | null;
  kind: CheckpointKind;
  extra?: Record<string, unknown>;
}

/** The contents of `checkpoint.json`. */
export interface CheckpointInfo {
  format: typeof CHECKPOINT_FORMAT;
  formatVersion: number;
  tsalignVersion: string;
  kind: CheckpointKind;
  version: string;
  parentVersion: string | null;
  sha256: string;
  files: Record<string, string>;
  extra: Record<string, unknown>;
}

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: 'float32';
  offset: number;
  length: number;
}

/** A checkpoint that is missing a file, corrupted, or incompatible with this build. */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

/**
 * Writes a checkpoint of `model` to `dir`, atomically: the files go to a temporary sibling
 * directory, are flushed to disk, and the directory is renamed to `dir`. When `dir` already holds
 * a checkpoint with the same sha256 it is kept and its info returned; any other existing `dir` is
 * an error.
 */
export async function saveCheckpoint(
  dir: string,
  model: Policy | RewardModel,
  meta: CheckpointMeta,
): Promise<{ version: string; sha256: string; dir: string }> {
  const modelKind: CheckpointKind = model instanceof Policy ? 'policy' : 'reward-model';
  if (meta.kind !== modelKind) {
    throw new UsageError(`Checkpoint kind ${meta.kind} does not match the model, which is a ${modelKind}.`);
  }

  const contents = new Map<string, Buffer>();
  contents.set('config.json', jsonBytes(model.config));
  contents.set('tokenizer.json', jsonBytes(model.tokenizer.toJSON()));
  const { manifest, weights } = await serializeWeights(model);
  contents.set('weights.json', jsonBytes({ weights: manifest }));
  contents.set('weights.bin', weights);

  const files: Record<string, string> = {};
  for (const name of CHECKPOINT_DATA_FILES) files[name] = sha256Hex(contents.get(name)!);
  const sha256 = checkpointSha256(files);
  const version = meta.version ?? files['weights.bin']!.slice(0, 16);
  const info: CheckpointInfo = {
    format: CHECKPOINT_FORMAT,
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    tsalignVersion: tsalignVersion(),
    kind: meta.kind,
    version,
    parentVersion: meta.parentVersion ?? null,
    sha256,
    files,
    extra: meta.extra ?? {},
  };
  contents.set(INFO_FILE, jsonBytes(info));

  const target = path.resolve(dir);
  if (existsSync(target)) return reuseExisting(target, sha256);
  await mkdir(path.dirname(target), { recursive: true });
  const temporary = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(temporary);
  try {
    for (const [name, bytes] of contents) await writeDurably(path.join(temporary, name), bytes);
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    if (existsSync(path.join(target, INFO_FILE))) return reuseExisting(target, sha256);
    throw error;
  }
  return { version, sha256, dir: target };
}

/** Reads and checks `checkpoint.json` (format and version); does not read the weights. */
export async function readCheckpointInfo(dir: string): Promise<CheckpointInfo> {
  const infoPath = path.join(dir, INFO_FILE);
  const bytes = await readRequired(dir, INFO_FILE);
  let info: Partial<CheckpointInfo>;
  try {
    info = JSON.parse(bytes.toString('utf8')) as Partial<CheckpointInfo>;
  } catch (error) {
    throw new CheckpointError(`Checkpoint file ${infoPath} is not valid JSON; the checkpoint is corrupted.`, { cause: error });
  }
  if (info.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(`${infoPath} has format ${JSON.stringify(info.format)}, expected ${CHECKPOINT_FORMAT}: this is not a tsalign checkpoint.`);
  }
  if (info.formatVersion !== CHECKPOINT_FORMAT_VERSION) {
    throw new CheckpointError(
      `${infoPath} has format version ${JSON.stringify(info.formatVersion)}, but this build of tsalign reads version ${CHECKPOINT_FORMAT_VERSION}: use a matching tsalign version.`,
    );
  }
  if (info.kind !== 'policy' && info.kind !== 'reward-model') {
    throw new CheckpointError(`${infoPath} has kind ${JSON.stringify(info.kind)}, expected policy or reward-model.`);
  }
  for (const name of CHECKPOINT_DATA_FILES) {
    if (typeof info.files?.[name] !== 'string' || typeof info.sha256 !== 'string') {
      throw new CheckpointError(`${infoPath} lacks the sha256 of ${name}; the checkpoint is corrupted.`);
    }
  }
  return info as CheckpointInfo;
}

export interface LoadOptions {
  /** The sha256 the caller expects, e.g. from a ModelUpdate record; a different one is an error. */
  expectedSha256?: string;
}

/** Loads a policy checkpoint, verifying every file's hash first. */
export async function loadPolicy(dir: string, options: LoadOptions = {}): Promise<Policy> {
  const loaded = await loadVerified(dir, 'policy', options, policyWeightSpecs);
  return Policy.fromWeights(loaded.config, loaded.tokenizer, loaded.arrays);
}

/** Loads a reward-model checkpoint, verifying every file's hash first. */
export async function loadRewardModel(dir: string, options: LoadOptions = {}): Promise<RewardModel> {
  const loaded = await loadVerified(dir, 'reward-model', options, rewardModelWeightSpecs);
  return RewardModel.fromWeights(loaded.config, loaded.tokenizer, loaded.arrays);
}

/** Returns the checkpoint sha256 for the per-file hashes (see the format comment at the top). */
export function checkpointSha256(files: Record<string, string>): string {
  return sha256Hex(CHECKPOINT_DATA_FILES.map((name) => `${files[name]}  ${name}\n`).join(''));
}

async function loadVerified(
  dir: string,
  kind: CheckpointKind,
  options: LoadOptions,
  specsOf: (config: ResolvedTransformerConfig) => WeightSpec[],
) {
  const info = await readCheckpointInfo(dir);
  if (info.kind !== kind) {
    throw new CheckpointError(`Checkpoint ${dir} contains a ${info.kind}, not a ${kind}; pass a ${kind} checkpoint directory.`);
  }
  const contents = new Map<string, Buffer>();
  for (const name of CHECKPOINT_DATA_FILES) {
    const bytes = await readRequired(dir, name);
    const actual = sha256Hex(bytes);
    if (actual !== info.files[name]) {
      throw new CheckpointError(
        `Checkpoint file ${path.join(dir, name)} has sha256 ${actual}, but checkpoint.json records ${info.files[name]}: the checkpoint is corrupted. Write it again from the trainer.`,
      );
    }
    contents.set(name, bytes);
  }
  const sha256 = checkpointSha256(info.files);
  if (sha256 !== info.sha256) {
    throw new CheckpointError(
      `Checkpoint ${dir} has sha256 ${sha256} over its files, but checkpoint.json records ${info.sha256}: the checkpoint is corrupted.`,
    );
  }
  if (options.expectedSha256 !== undefined && options.expectedSha256 !== sha256) {
    throw new CheckpointError(
      `Checkpoint ${dir} has sha256 ${sha256}, but ${options.expectedSha256} was expected: the directory contains a different checkpoint than the one announced.`,
    );
  }

  const tokenizer = tokenizerFromJSON(parseJson(dir, 'tokenizer.json', contents));
  let config: ResolvedTransformerConfig;
  try {
    config = resolveTransformerConfig(parseJson(dir, 'config.json', contents) as ResolvedTransformerConfig, tokenizer);
  } catch (error) {
    throw new CheckpointError(`Checkpoint ${dir} has an incompatible config.json: ${(error as Error).message}`, { cause: error });
  }
  const manifest = (parseJson(dir, 'weights.json', contents) as { weights?: ManifestEntry[] }).weights ?? [];
  const arrays = readWeights(dir, specsOf(config), manifest, contents.get('weights.bin')!);
  return { config, tokenizer, arrays };
}

/** Returns one Float32Array per spec, checking the manifest against the config's shapes. */
function readWeights(dir: string, specs: WeightSpec[], manifest: ManifestEntry[], bin: Buffer): Float32Array[] {
  const entries = new Map(manifest.map((entry) => [entry.name, entry]));
  const expectedNames = new Set(specs.map((spec) => spec.name));
  const unexpected = manifest.filter((entry) => !expectedNames.has(entry.name)).map((entry) => entry.name);
  if (unexpected.length > 0) {
    throw new CheckpointError(`Checkpoint ${dir} has weights its config.json does not define: ${unexpected.join(', ')}.`);
  }
  return specs.map((spec) => {
    const entry = entries.get(spec.name);
    if (entry === undefined) {
      throw new CheckpointError(`Checkpoint ${dir} lacks weight ${spec.name}, which its config.json requires.`);
    }
    if (entry.dtype !== 'float32' || entry.shape.join(',') !== spec.shape.join(',')) {
      throw new CheckpointError(
        `Checkpoint ${dir} stores ${spec.name} as ${entry.dtype} [${entry.shape.join(', ')}], but its config.json requires float32 [${spec.shape.join(', ')}].`,
      );
    }
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (entry.length !== size * 4 || entry.offset < 0 || entry.offset + entry.length > bin.length) {
      throw new CheckpointError(`Checkpoint ${dir} gives ${spec.name} an invalid byte range in weights.bin.`);
    }
    const values = new Float32Array(size);
    const bytes = Buffer.from(values.buffer);
    bin.copy(bytes, 0, entry.offset, entry.offset + entry.length);
    if (os.endianness() === 'BE') bytes.swap32();
    return values;
  });
}

async function serializeWeights(model: Policy | RewardModel): Promise<{ manifest: ManifestEntry[]; weights: Buffer }> {
  const manifest: ManifestEntry[] = [];
  const parts: Buffer[] = [];
  let offset = 0;
  for (let i = 0; i < model.variables.length; i++) {
    const variable = model.variables[i]!;
    const values = (await variable.data()) as Float32Array;
    const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    const littleEndian = os.endianness() === 'BE' ? Buffer.from(bytes).swap32() : bytes;
    manifest.push({ name: model.variableNames[i]!, shape: [...variable.shape], dtype: 'float32', offset, length: bytes.length });
    parts.push(littleEndian);
    offset += bytes.length;
  }
  return { manifest, weights: Buffer.concat(parts) };
}

async function reuseExisting(target: string, sha256: string): Promise<{ version: string; sha256: string; dir: string }> {
  let existing: CheckpointInfo | null = null;
  try {
    existing = await readCheckpointInfo(target);
  } catch {
    existing = null;
  }
  if (existing === null || existing.sha256 !== sha256) {
    throw new UsageError(`Checkpoint directory ${target} already exists with other contents: choose a new directory or remove it.`);
  }
  return { version: existing.version, sha256, dir: target };
}

async function readRequired(dir: string, name: string): Promise<Buffer> {
  try {
    return await readFile(path.join(dir, name));
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') {
      throw new CheckpointError(`Checkpoint ${dir} is missing ${name}: the checkpoint is incomplete or not a checkpoint directory.`);
    }
    throw error;
  }
}

function parseJson(dir: string, name: string, contents: Map<string, Buffer>): unknown {
  try {
    return JSON.parse(contents.get(name)!.toString('utf8'));
  } catch (error) {
    throw new CheckpointError(`Checkpoint file ${path.join(dir, name)} is not valid JSON; the checkpoint is corrupted.`, { cause: error });
  }
}

async function writeDurably(file: string, bytes: Buffer): Promise<void> {
  const handle = await open(file, 'w');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function jsonBytes(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');
}

