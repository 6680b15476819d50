/**
 * `tsalign policy sft PAIRS --out DIR` warm-starts a policy from scratch with supervised
 * fine-tuning on the chosen responses of preference pairs (for HH-RLHF, the preferred assistant
 * replies) and writes it as a policy checkpoint, which `tsalign worker --policy DIR` starts from.
 *
 * PAIRS is read as `tsalign rm fit` reads it: JSON lines, plain or gzip, of
 * `{prompt, chosen, rejected}` or HH-RLHF `{chosen, rejected}` records. The summary goes to
 * stdout (one JSON document with `--json`); progress goes to stderr.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { selectBackend } from '../../models/backend';
import { saveCheckpoint } from '../../models/checkpoint';
import { Policy } from '../../models/policy';
import { TOKENIZER_KINDS, type TokenizerKind, createTokenizer } from '../../models/tokenizer';
import { readPreferencePairs } from '../../training/pairs-data';
import { type PolicySftProgress, warmStartPolicy } from '../../training/policy-sft';
import { UsageError } from '../../util/errors';
import { setLogLevel } from '../../util/logger';
import { LOG_LEVELS, parsePositiveNumber, parseWholeNumber } from '../common';

/** Minimum milliseconds between two progress lines on stderr. */
const PROGRESS_INTERVAL_MS = 5_000;

interface SftOptionValues {
  out: string;
  limit?: string;
  skip: string;
  steps: string;
  batchSize: string;
  lr: string;
  warmupSteps?: string;
  schedule: 'constant' | 'cosine';
  clipNorm: string;
  seed: string;
  tokenizer: TokenizerKind;
  layers: string;
  dModel: string;
  heads: string;
  dFf?: string;
  contextLength: string;
  backend?: string;
  json?: boolean;
  logLevel?: string;
}

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('Prepare policies for the chain.');
  policy
    .command('sft')
    .description('Train a policy from scratch on the chosen responses of PAIRS (SFT) and write it as a checkpoint.')
    .argument('<pairs>', 'JSON-lines file (plain or gzip) of {prompt, chosen, rejected} or HH-RLHF {chosen, rejected} records')
    .requiredOption('--out <dir>', 'checkpoint directory to write; it must not exist yet')
    .option('--limit <n>', 'read at most N pairs (after --skip)')
    .option('--skip <n>', 'pass over the first N pairs of the file', '0')
    .option('--steps <n>', 'optimizer steps; the pairs are cycled, reshuffled at each pass', '200')
    .option('--batch-size <n>', 'responses per optimizer step', '16')
    .option('--lr <rate>', 'peak learning rate of Adam', '3e-3')
    .option('--warmup-steps <n>', 'optimizer steps of linear warm-up (default: 5% of --steps)')
    .addOption(new Option('--schedule <kind>', 'learning rate after warm-up: cosine decays to 0 by the last step, constant keeps it').choices(['cosine', 'constant']).default('cosine'))
    .option('--clip-norm <n>', 'maximum global gradient norm', '1')
    .option('--seed <n>', 'seed of the weights and the shuffles', '1')
    .addOption(new Option('--tokenizer <kind>', 'tokenizer: byte (UTF-8 bytes) or gpt2 (BPE, 50,257 ids)').choices(TOKENIZER_KINDS).default('byte'))
    .option('--layers <n>', 'transformer layers', '2')
    .option('--d-model <n>', 'width of the transformer', '64')
    .option('--heads <n>', 'attention heads; must divide --d-model', '4')
    .option('--d-ff <n>', 'width of the feed-forward layers (default: 4 x --d-model)')
    .option('--context-length <n>', 'tokens per (prompt, response); longer pairs lose the start of the prompt first', '128')
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
  const batchSize = parseWholeNumber('--batch-size', values.batchSize, 1);
  const lr = parsePositiveNumber('--lr', values.lr);
  const warmupSteps = values.warmupSteps === undefined ? undefined : parseWholeNumber('--warmup-steps', values.warmupSteps, 0);
  const clipNorm = parsePositiveNumber('--clip-norm', values.clipNorm);
  const seed = parseWholeNumber('--seed', values.seed, 0);
  const dModel = parseWholeNumber('--d-model', values.dModel, 1);
  const heads = parseWholeNumber('--heads', values.heads, 1);
  if (dModel % heads !== 0) throw new UsageError(`--heads ${heads} does not divide --d-model ${dModel}; pick a divisor such as 4`);
  const tokenizer = createTokenizer(values.tokenizer);
  const config = {
    vocabSize: tokenizer.vocabSize,
    contextLength: parseWholeNumber('--context-length', values.contextLength, 8),
    dModel,
    nHeads: heads,
    nLayers: parseWholeNumber('--layers', values.layers, 1),
    dFf: values.dFf === undefined ? 4 * dModel : parseWholeNumber('--d-ff', values.dFf, 1),
  };
  if (existsSync(values.out) && (!statSync(values.out).isDirectory() || readdirSync(values.out).length > 0)) {
    throw new UsageError(`--out ${values.out} already exists; choose a new directory or remove it`);
  }

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
      batchSize,
      lr,
      ...(warmupSteps === undefined ? {} : { warmupSteps }),
      schedule: values.schedule,
      clipNorm,
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
