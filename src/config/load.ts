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

/**
 * Builds the configuration from defaults, the file and the overrides. Throws a `UsageError`
 * naming each invalid key.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  let config = defaultConfig();
  if (options.file !== undefined) {
    try {
      config = validateConfig(readConfigFile(options.file), config);
    } catch (error) {
      if (error instanceof UsageError) throw new UsageError(`${options.file}: ${error.message}`);
      throw error;
    }
  }
  for (const override of options.overrides ?? []) config = validateConfig(override, config);
  for (const assignment of options.assignments ?? []) config = validateConfig(parseOverride(assignment), config);
  return withHash(config);
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
