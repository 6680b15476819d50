/**
 * Loading of the run configuration: defaults, then the `--config FILE` document, then command
 * line overrides, each validated before anything runs.
 */
import { readFileSync } from 'node:fs';
import { UsageError, errorMessage } from '../util/errors';
import { canonicalJson, configHash } from './canonical';
import { type TsalignConfig, defaultConfig } from './schema';
import { parseOverride, validateConfig } from './validate';

export interface LoadedConfig {
  config: TsalignConfig;
  /** Canonical JSON of `config`. */
  json: string;
  /** sha256 of `json`. */
  hash: string;
}

export interface LoadConfigOptions {
  /** Path of a JSON configuration file. */
  file?: string;
  /** Partial configurations applied in order after the file, e.g. from flags. */
  overrides?: Array<Record<string, unknown>>;
  /** `KEY=VALUE` assignments with dotted keys, applied last. */
  assignments?: string[];
}

/** Reads and parses a JSON configuration file; throws a `UsageError` naming the file on failure. */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read config file ${file}: ${errorMessage(error)}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new UsageError(`invalid JSON in config file ${file}: ${errorMessage(error)}`);
  }
}

/** Returns a configuration with its canonical JSON and hash. */
export function withHash(config: TsalignConfig): LoadedConfig {
  return { config, json: canonicalJson(config), hash: configHash(config) };
}

/** True for a JSON object that is not an array. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Merges `patch` into `target` key by key, recursing into nested objects; later values win. */
function mergeInto(target: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  for (const [key, value] of Object.entries(patch)) {
    const current = target[key];
    target[key] = isPlainObject(current) && isPlainObject(value) ? mergeInto({ ...current }, value) : value;
  }
  return target;
}

/**
 * Builds the configuration from defaults, the file and the overrides. The file, the overrides
 * and the assignments are merged first and validated once, so settings that depend on each other
 * (such as `teacher.kind=reward-model` and `teacher.rewardModel.checkpoint`) may come from
 * different sources. Throws a `UsageError` naming each invalid key.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  let merged: Record<string, unknown> = {};
  if (options.file !== undefined) {
    const document = readConfigFile(options.file);
    if (!isPlainObject(document)) {
      throw new UsageError(`${options.file}: the configuration must be a JSON object, got ${JSON.stringify(document)?.slice(0, 60)}`);
    }
    merged = mergeInto(merged, document);
  }
  for (const override of options.overrides ?? []) merged = mergeInto(merged, override);
  for (const assignment of options.assignments ?? []) merged = mergeInto(merged, parseOverride(assignment));
  try {
    return withHash(validateConfig(merged, defaultConfig()));
  } catch (error) {
    if (error instanceof UsageError && options.file !== undefined) {
      const fromFlags = (options.overrides?.length ?? 0) + (options.assignments?.length ?? 0) > 0;
      const source = fromFlags ? `${options.file} with the command-line settings` : options.file;
      throw new UsageError(`${source}: ${error.message}`);
    }
    throw error;
  }
}

/** Parses a configuration from its canonical JSON (as recorded in a RoundManifest) and validates it. */
export function parseRecordedConfig(json: string): LoadedConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json) as unknown;
  } catch (error) {
    throw new UsageError(`the recorded configuration is not valid JSON: ${errorMessage(error)}`);
  }
  return withHash(validateConfig(parsed));
}
