/**
 * `tsalign policy sft PAIRS --out DIR` warm-starts a policy from scratch with supervised
 * fine-tuning on the chosen responses of preference pairs (for HH-RLHF, the preferred assistant
 * replies) and writes it as a policy checkpoint, which `tsalign worker --policy DIR` starts from.
 *
 * PAIRS is read as `tsalign rm fit` reads it: JSON lines, plain or gzip, of
 * `{prompt, chosen, rejected}` or HH-RLHF `{chosen, rejected}` records. The summary goes to
 * stdout (one JSON document with `--json`); progress goes to stderr.
 */
import { Option, type Command } from 'commander';
import { selectBackend } from '../../models/backend';
import { saveCheckpoint } from '../../models/checkpoint';
import { Policy } from '../../models/policy';
import type { TokenizerKind } from '../../models/tokenizer';
import { readPreferencePairs } from '../../training/pairs-data';
import { type PolicySftProgress, warmStartPolicy } from '../../training/policy-sft';
import { UsageError } from '../../util/errors';
import { setLogLevel } from '../../util/logger';
import { LOG_LEVELS, parseWholeNumber } from '../common';
import {
  type ModelSizeOptionValues,
  type OptimizerOptionValues,
  addModelSizeOptions,
  addOptimizerOptions,
  checkOutDirectory,
  parseModelSize,
  parseOptimizerOptions,
} from '../model-options';

/** Minimum milliseconds between two progress lines on stderr. */
const PROGRESS_INTERVAL_MS = 5_000;

interface SftOptionValues extends OptimizerOptionValues, ModelSizeOptionValues {
  out: string;
  limit?: string;
  skip: string;
  steps: string;
  seed: string;
  backend?: string;
  json?: boolean;
  logLevel?: string;
}

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('Prepare policies for the chain.');
  const sft = policy
    .command('sft')
    .description('Train a policy from scratch on the chosen responses of PAIRS (SFT) and write it as a checkpoint.')
    .argument('<pairs>', 'JSON-lines file (plain or gzip) of {prompt, chosen, rejected} or HH-RLHF {chosen, rejected} records')
    .requiredOption('--out <dir>', 'checkpoint directory to write; it must not exist yet')
    .option('--limit <n>', 'read at most N pairs (after --skip)')
    .option('--skip <n>', 'pass over the first N pairs of the file', '0')
    .option('--steps <n>', 'optimizer steps; the pairs are cycled, reshuffled at each pass', '200');
  addOptimizerOptions(sft, { batchSize: 'responses per optimizer step', lr: '3e-3', warmupDefault: '5% of --steps' })
    .option('--seed <n>', 'seed of the weights and the shuffles', '1');
  addModelSizeOptions(sft)
    .option('--backend <name>', 'tfjs backend: node-gpu, node, wasm or cpu (default: TSALIGN_BACKEND, else the first that works)')
    .option('--json', 'print one JSON document on stdout')
    .addOption(new Option('--log-level <level>', 'log level on stderr').choices(LOG_LEVELS).env('TSALIGN_LOG_LEVEL'))
    .action(async (pairs: string, values: SftOptionValues) => {
      await runPolicySft(pairs, values);
    });
}

/** Summary that `policy sft` prints. */
export interface PolicySftReport {
  checkpoint: { dir: string; version: string; sha256: string };
  backend: string;
  parameters: number;
  config: Policy['config'];
  tokenizer: TokenizerKind;
  pairs: number;
  steps: number;
  epochs: number;
  /** Mean cross-entropy per response token over the first and the last tenth of the steps. */
  firstLoss: number;
  lastLoss: number;
  tokens: number;
  skippedSteps: number;
  seconds: number;
}

/** Runs `tsalign policy sft`; returns what it printed as data. */
export async function runPolicySft(pairsPath: string, values: SftOptionValues): Promise<PolicySftReport> {
  if (values.logLevel !== undefined) setLogLevel(values.logLevel);
  const skip = parseWholeNumber('--skip', values.skip, 0);
  const limit = values.limit === undefined ? undefined : parseWholeNumber('--limit', values.limit, 1);
  const steps = parseWholeNumber('--steps', values.steps, 1);
  const optimizer = parseOptimizerOptions(values);
  const seed = parseWholeNumber('--seed', values.seed, 0);
  const { tokenizer, config } = parseModelSize(values);
  checkOutDirectory(values.out);

  const started = Date.now();
  const pairs = await readPreferencePairs(pairsPath, { skip, ...(limit === undefined ? {} : { limit }) });
  if (pairs.length === 0) throw new UsageError(`no pairs in ${pairsPath} after skipping ${skip}; check the file and --skip`);
  const examples = pairs.map((pair) => ({ prompt: pair.prompt, response: pair.chosen }));
  const backend = await selectBackend(values.backend === undefined ? {} : { force: values.backend });
  const policy = Policy.create(config, tokenizer, seed);
  const parameters = policy.variables.reduce((sum, variable) => sum + variable.size, 0);
  process.stderr.write(`policy sft: ${examples.length} chosen responses, ${steps} steps, ${formatCount(parameters)} parameters, backend ${backend.name}\n`);

  try {
    let lastLine = 0;
    const onStep = (progress: PolicySftProgress): void => {
      const now = Date.now();
      if (progress.step !== progress.totalSteps && now - lastLine < PROGRESS_INTERVAL_MS) return;
      lastLine = now;
      process.stderr.write(
        `policy sft: step ${progress.step}/${progress.totalSteps}, epoch ${progress.epoch}, loss ${progress.loss.toFixed(4)}, lr ${progress.lr.toExponential(2)}\n`,
      );
    };
    const summary = await warmStartPolicy(policy, examples, {
      steps,
      ...optimizer,
      seed,
      onStep,
    });
    const checkpoint = await saveCheckpoint(values.out, policy, {
      kind: 'policy',
      extra: { trainedOn: pairsPath, skip, pairs: examples.length, steps: summary.steps, lastLoss: summary.lastLoss },
    });
    const report: PolicySftReport = {
      checkpoint,
      backend: backend.name,
      parameters,
      config: policy.config,
      tokenizer: values.tokenizer,
      pairs: examples.length,
      steps: summary.steps,
      epochs: summary.epochs,
      firstLoss: summary.firstLoss,
      lastLoss: summary.lastLoss,
      tokens: summary.tokens,
      skippedSteps: summary.skippedSteps,
      seconds: (Date.now() - started) / 1000,
    };
    printReport(report, values.json === true);
    return report;
  } finally {
    policy.dispose();
  }
}

function printReport(report: PolicySftReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const lines = [
    `checkpoint  ${report.checkpoint.dir} (version ${report.checkpoint.version}, sha256 ${report.checkpoint.sha256})`,
    `model       ${formatCount(report.parameters)} parameters: layers ${report.config.nLayers}, d_model ${report.config.dModel}, heads ${report.config.nHeads}, d_ff ${report.config.dFf}, context ${report.config.contextLength} tokens, ${report.tokenizer} tokenizer`,
    `training    ${report.pairs} chosen responses, ${report.steps} steps (${report.epochs} passes begun), ${report.tokens} response tokens`,
    `loss        ${report.firstLoss.toFixed(4)} over the first tenth of the steps, ${report.lastLoss.toFixed(4)} over the last tenth (nats per token)`,
  ];
  if (report.skippedSteps > 0) lines.push(`warning     ${report.skippedSteps} steps skipped for a non-finite gradient`);
  lines.push(`time        ${report.seconds.toFixed(1)} s on ${report.backend}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

function formatCount(count: number): string {
  return count >= 1e6 ? `${(count / 1e6).toFixed(2)}M` : `${(count / 1e3).toFixed(1)}k`;
}
