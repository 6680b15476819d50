/**
 * The durable state of `tsalign run` in `<data dir>/run/state.json`: which configuration the run
 * belongs to, the base models, the measures of every completed round, the trainer state after
 * the last completed round, and where the round in progress fed its prompts. A second run reads
 * it and continues after the last completed round.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configHash } from '../config/canonical';
import type { TsalignConfig } from '../config/schema';
import type { RoundMeasures } from '../report/measures';
import { writeFileAtomic } from '../report/write';
import type { OffsetRange } from '../streams/records';
import type { ModelRef, TrainerState } from '../training/trainer';
import { UsageError, errorMessage } from '../util/errors';

export const RUN_STATE_FORMAT = 'tsalign-run';
export const RUN_STATE_FORMAT_VERSION = 1;

/** Location of a fed round's prompts, as JSON (offsets as strings). */
export interface FedRound {
  round: number;
  topic: string;
  partition: number;
  from: string;
  to: string;
}

export interface RunState {
  format: typeof RUN_STATE_FORMAT;
  formatVersion: number;
  /** Hash of the configuration without `run.rounds`, so a run can be extended by more rounds. */
  identity: string;
  configHash: string;
  base: { policy: ModelRef; student: ModelRef };
  /** Measures of round 0 (the base) and of every completed round, in order. */
  rounds: RoundMeasures[];
  /** Trainer state after the last completed round; null before round 1 completes. */
  trainer: TrainerState | null;
  /** Prompt ranges of fed rounds, including the one in progress. */
  fed: FedRound[];
  /** Transport kind and topic prefix the run writes to, e.g. `kafka tsalign.`; absent in older states. */
  transport?: string;
}

/** Returns the transport key recorded in the run state: the kind and the topic prefix. */
export function transportKey(kind: string, topicPrefix: string): string {
  return `${kind} ${topicPrefix}`;
}

/** Returns the hash of a configuration without `run.rounds`. */
export function runIdentity(config: TsalignConfig): string {
  return configHash({ ...config, run: { ...config.run, rounds: null } });
}

export function runStatePath(runDir: string): string {
  return join(runDir, 'state.json');
}

/**
 * Reads the run state of a data directory, or returns null when there is none. Throws a
 * UsageError for a state written by an incompatible version or for another configuration, so
 * nothing is overwritten.
 */
export function readRunState(runDir: string, config: TsalignConfig, transport?: string): RunState | null {
  const file = runStatePath(runDir);
  if (!existsSync(file)) return null;
  let state: RunState;
  try {
    state = JSON.parse(readFileSync(file, 'utf8')) as RunState;
  } catch (error) {
    throw new UsageError(`the run state ${file} is not valid JSON (${errorMessage(error)}); it is corrupted: restore it, or use a new --data-dir`);
  }
  if (state.format !== RUN_STATE_FORMAT || state.formatVersion !== RUN_STATE_FORMAT_VERSION) {
    throw new UsageError(
      `the data directory was written by an incompatible tsalign: ${file} has format ${JSON.stringify(state.format)} version ${JSON.stringify(state.formatVersion)}, ` +
        `this tsalign reads ${RUN_STATE_FORMAT} version ${RUN_STATE_FORMAT_VERSION}; use a new --data-dir (nothing was changed)`,
    );
  }
  const identity = runIdentity(config);
  if (state.identity !== identity) {
    throw new UsageError(
      `the data directory contains a run with another configuration (identity ${state.identity.slice(0, 12)}, this one ${identity.slice(0, 12)}); ` +
        'only run.rounds may change between runs that continue each other: use the same --config and flags, or a new --data-dir (nothing was changed)',
    );
  }
  if (transport !== undefined && state.transport !== undefined && state.transport !== transport) {
    throw new UsageError(
      `the data directory contains a run on ${state.transport}, not ${transport}: its topics, checkpoints and state belong together, ` +
        'so continue it with the same transport and --topic-prefix, or give this run a new --data-dir (nothing was changed)',
    );
  }
  return state;
}

export function writeRunState(runDir: string, state: RunState): void {
  mkdirSync(runDir, { recursive: true });
  writeFileAtomic(runStatePath(runDir), `${JSON.stringify(state, null, 1)}\n`);
}

export function fedRange(fed: FedRound): OffsetRange {
  return { topic: fed.topic, partition: fed.partition, from: BigInt(fed.from), to: BigInt(fed.to) };
}
