/**
 * `tsalign run`: the main job. Built-in task prompts, a warmed-up tiny policy, the verifier
 * teacher and three rounds of feed -> chain -> trainer on the embedded log by default; a
 * per-round table on stdout (or one JSON document with --json), progress on stderr, and
 * report.html / report.json in the data directory.
 */
import { Option, type Command } from 'commander';
import { loadConfig, TEACHER_KINDS, type LoadedConfig } from '../../config';
import { selectBackend } from '../../models/backend';
import { tableHeader, tableRow, type RoundMeasures } from '../../report/measures';
import { runJob } from '../../run/job';
import { EXIT_INTERRUPTED, onShutdownSignal } from '../../streams/shutdown';
import { addCommonOptions, openTransport, parseWholeNumber, resolveCommonOptions, type CommonOptionValues } from '../common';
import { ProgressLine } from '../progress';
import { setLogLevel } from '../../util/logger';

/** Milliseconds between progress lines when stderr is not a terminal. */
const PLAIN_PROGRESS_MS = 15_000;

interface RunOptionValues extends CommonOptionValues {
  rounds?: string;
  promptsPerRound?: string;
  candidates?: string;
  teacher?: string;
  set: string[];
  json?: boolean;
}

export function registerRun(program: Command): void {
  const command = program
    .command('run')
    .description('Run the main job: warm up a base policy, then rounds of sample -> score -> gate -> teacher -> pairs -> train, with an evaluation and a report.')
    .option('--rounds <n>', 'rounds to run (run.rounds)')
    .option('--prompts-per-round <n>', 'prompts fed per round (run.promptsPerRound)')
    .option('--candidates <k>', 'responses sampled per prompt (chain.candidates)')
    .addOption(new Option('--teacher <kind>', 'teacher that ranks shortlists (teacher.kind)').choices([...TEACHER_KINDS]))
    .option('--set <key=value>', 'set any configuration key, such as chain.tau=0.9; repeatable', (value: string, all: string[]) => [...all, value], [])
    .option('--json', 'print one JSON document on stdout instead of the table');
  addCommonOptions(command).action(async (values: RunOptionValues) => {
    await runCommand(values);
  });
}

/** Builds the configuration from --config, the dedicated flags and --set, in that order. */
export function runConfig(values: RunOptionValues): LoadedConfig {
  const run: Record<string, number> = {};
  if (values.rounds !== undefined) run.rounds = parseWholeNumber('--rounds', values.rounds, 1);
  if (values.promptsPerRound !== undefined) run.promptsPerRound = parseWholeNumber('--prompts-per-round', values.promptsPerRound, 1);
  const overrides: Array<Record<string, unknown>> = [];
  if (Object.keys(run).length > 0) overrides.push({ run });
  if (values.candidates !== undefined) overrides.push({ chain: { candidates: parseWholeNumber('--candidates', values.candidates, 2) } });
  if (values.teacher !== undefined) overrides.push({ teacher: { kind: values.teacher } });
  return loadConfig({ file: values.config, overrides, assignments: values.set });
}

async function runCommand(values: RunOptionValues): Promise<void> {
  // The table and the progress line are the job's output; info logs would bury them.
  if (values.logLevel === undefined) setLogLevel('warn');
  const common = resolveCommonOptions(values);
  const loaded = runConfig(values);
  const backend = await selectBackend();
  const transport = await openTransport({ ...common, config: loaded }, 'tsalign-run');
  const controller = new AbortController();
  const shutdown = onShutdownSignal(() => controller.abort());
  const progress = new ProgressLine();
  let lastPlainProgress = 0;
  const printRow = (row: RoundMeasures): void => {
    if (values.json) return;
    progress.clear();
    process.stdout.write(`${tableRow(row)}\n`);
  };

  try {
    if (!values.json) process.stdout.write(`${tableHeader()}\n`);
    process.stderr.write(`tsalign run: ${transport.kind} ${transport.address}, backend ${backend.name}, config ${loaded.hash.slice(0, 12)}\n`);
    const result = await runJob({
      transport,
      dataDir: common.dataDir,
      topicPrefix: common.topicPrefix,
      config: loaded,
      signal: controller.signal,
      backend: backend.name,
      onRound: printRow,
      onProgress: (text) => {
        if (progress.enabled) {
          progress.update(() => text);
          return;
        }
        // Without a terminal (logs piped to a file), a plain line every PLAIN_PROGRESS_MS
        // still shows that the job is alive and where it is.
        const now = Date.now();
        if (now - lastPlainProgress >= PLAIN_PROGRESS_MS) {
          lastPlainProgress = now;
          process.stderr.write(`${text}\n`);
        }
      },
    });
    progress.clear();
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ rounds: result.rounds, report: result.report.html, reportJson: result.report.json, interrupted: result.interrupted })}\n`);
    }
    process.stderr.write(`report: ${result.report.html}\n`);
    if (result.interrupted) {
      const next = result.rounds.length;
      process.stderr.write(`tsalign run: stopped before round ${next} completed; run the same command again to continue from round ${next}\n`);
      process.exitCode = EXIT_INTERRUPTED;
    }
  } finally {
    progress.clear();
    shutdown.dispose();
    await transport.close();
  }
}
