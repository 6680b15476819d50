/**
 * Options every transport-using command takes, and opening the transport they select.
 */
import { Option, type Command } from 'commander';
import { createTransport } from '../streams/create-transport';
import { DEFAULT_TOPIC_PREFIX, checkTopicPrefix } from '../streams/topics';
import type { Transport } from '../streams/transport';
import { loadConfig, type LoadedConfig } from '../config';
import { UsageError, errorMessage } from '../util/errors';
import { childLogger, setLogLevel } from '../util/logger';

export const DEFAULT_DATA_DIR = './.tsalign';
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
/** How long connecting may take before a broker counts as unreachable. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** The common options as commander parses them. */
export interface CommonOptionValues {
  brokers?: string;
  dataDir: string;
  topicPrefix: string;
  config?: string;
  logLevel?: string;
}

/** The common options after checks, with the loaded configuration. */
export interface CommonOptions {
  /** Kafka bootstrap brokers; the embedded log under `dataDir` when absent. */
  brokers?: string;
  dataDir: string;
  topicPrefix: string;
  config: LoadedConfig;
}

/** Adds `--brokers`, `--data-dir`, `--topic-prefix`, `--config` and `--log-level` to a command. */
export function addCommonOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--brokers <host:port,...>', 'Kafka bootstrap brokers; without it the embedded log under --data-dir is used').env(
        'TSALIGN_BROKERS',
      ),
    )
    .addOption(new Option('--data-dir <dir>', 'directory of the embedded log').default(DEFAULT_DATA_DIR))
    .addOption(new Option('--topic-prefix <prefix>', 'prefix of every topic name').default(DEFAULT_TOPIC_PREFIX))
    .addOption(new Option('--config <file>', 'JSON configuration file'))
    .addOption(new Option('--log-level <level>', 'log level on stderr').choices(LOG_LEVELS).env('TSALIGN_LOG_LEVEL'));
}

/** Checks the common options, sets the log level and loads the configuration. Throws UsageError. */
export function resolveCommonOptions(values: CommonOptionValues): CommonOptions {
  if (values.logLevel !== undefined) setLogLevel(values.logLevel);
  checkTopicPrefix(values.topicPrefix);
  const brokers = values.brokers?.trim() || undefined;
  if (brokers !== undefined) checkBrokers(brokers);
  if (values.dataDir.trim() === '') {
    throw new UsageError('--data-dir is empty; name a directory, or leave the option out for ./.tsalign');
  }
  return {
    brokers,
    dataDir: values.dataDir,
    topicPrefix: values.topicPrefix,
    config: loadConfig({ file: values.config }),
  };
}

function checkBrokers(brokers: string): void {
  for (const address of brokers.split(',')) {
    const match = /^(\[[0-9a-fA-F:]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(address.trim());
    if (match === null || Number(match[2]) < 1 || Number(match[2]) > 65535) {
      throw new UsageError(
        `invalid broker address ${JSON.stringify(address)} in --brokers/TSALIGN_BROKERS: write host:port, separated by commas, such as 127.0.0.1:9092`,
      );
    }
  }
}

/**
 * Creates and connects the transport the options select. A Kafka broker that cannot be reached
 * fails within CONNECT_TIMEOUT_MS with an error naming the address (exit code 1). Commands that
 * only read pass `readOnly`, so they can open the embedded log while another process writes it.
 */
export async function openTransport(options: CommonOptions, clientId = 'tsalign-cli', access: { readOnly?: boolean } = {}): Promise<Transport> {
  const transport = createTransport({ brokers: options.brokers, dataDir: options.dataDir, clientId, readOnly: access.readOnly });
  const log = childLogger('transport', { kind: transport.kind, address: transport.address });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
  });
  try {
    await Promise.race([transport.connect(), timeout]);
  } catch (error) {
    await transport.close().catch((closeError: unknown) => log.debug({ err: errorMessage(closeError) }, 'closing after a failed connect failed'));
    if (error instanceof UsageError) throw error;
    const where = transport.kind === 'kafka' ? `Kafka brokers ${transport.address}` : `the embedded log at ${transport.address}`;
    const message = errorMessage(error);
    // The transports' own connect errors already name the address and the fix.
    if (message.includes(transport.address)) throw new Error(`cannot connect to ${where}: ${message}`, { cause: error });
    const advice =
      transport.kind === 'kafka'
        ? 'check --brokers or TSALIGN_BROKERS and that the broker runs (npm run kafka:start starts a local one)'
        : 'check that --data-dir names a writable directory that no other tsalign process holds';
    throw new Error(`cannot connect to ${where}: ${message}; ${advice}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
  log.debug('transport connected');
  return transport;
}

/** Parses a whole number option of at least `min`; throws UsageError naming the flag. */
export function parseWholeNumber(flag: string, value: string, min: number): number {
  const number = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(number) || number < min) {
    throw new UsageError(`invalid ${flag} ${JSON.stringify(value)}: give a whole number of at least ${min}`);
  }
  return number;
}

/** Parses a positive number option, fractions allowed; throws UsageError naming the flag. */
export function parsePositiveNumber(flag: string, value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0) {
    throw new UsageError(`invalid ${flag} ${JSON.stringify(value)}: give a number greater than 0`);
  }
  return number;
}
