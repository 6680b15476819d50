/**
 * `tsalign rm fit PAIRS --out DIR` trains a reward model from scratch on preference pairs with
 * the Bradley-Terry loss and writes it as a checkpoint. `tsalign rm eval PAIRS --model DIR`
 * reports a checkpoint's pairwise accuracy on pairs with a 95% Wilson interval.
 *
 * PAIRS is JSON lines, plain or gzip (detected by magic bytes): `{prompt, chosen, rejected}`
 * records, or HH-RLHF records whose `chosen` and `rejected` are whole dialogues. Results go to
 * stdout (one JSON document with `--json`); progress goes to stderr.
 */
import { existsSync, statSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { selectBackend } from '../../models/backend';
import { CheckpointError, loadRewardModel, readCheckpointInfo, saveCheckpoint } from '../../models/checkpoint';
import { RewardModel } from '../../models/reward-model';
import type { TokenizerKind } from '../../models/tokenizer';
import { type PreferenceExample, readPreferencePairs, splitHoldout } from '../../training/pairs-data';
import { evaluateRewardModel } from '../../training/reward-eval';
import { type FitProgress, fitRewardModel } from '../../training/reward-fit';
import type { PairwiseAccuracy } from '../../training/stats';
import { UsageError } from '../../util/errors';
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
import { setLogLevel } from '../../util/logger';

/** Minimum milliseconds between two progress lines on stderr. */
const PROGRESS_INTERVAL_MS = 5_000;

interface DataOptionValues {
  limit?: string;
  skip?: string;
  backend?: string;
  json?: boolean;
  logLevel?: string;
}

interface FitOptionValues extends DataOptionValues, OptimizerOptionValues, ModelSizeOptionValues {
  out: string;
  holdout: string;
  epochs: string;
  weightDecay: string;
  seed: string;
}

interface EvalOptionValues extends DataOptionValues {
  model: string;
}

export function registerRm(program: Command): void {
  const rm = program.command('rm').description('Fit and evaluate a reward model on preference pairs (Bradley-Terry).');

  const fit = rm
    .command('fit')
    .description('Train a reward model from scratch on PAIRS and write it as a checkpoint.')
    .argument('<pairs>', 'JSON-lines file (plain or gzip) of {prompt, chosen, rejected} or HH-RLHF {chosen, rejected} records')
    .requiredOption('--out <dir>', 'checkpoint directory to write; it must not exist yet')
    .option('--holdout <fraction>', 'share of the pairs kept out of training for validation, drawn with --seed', '0.1')
    .option('--epochs <n>', 'passes over the training pairs', '1');
  addOptimizerOptions(fit, { batchSize: 'pairs per optimizer step', lr: '1e-3', warmupDefault: '5% of all steps' })
    .option('--weight-decay <n>', 'decoupled weight decay (AdamW); 0 disables it', '0')
    .option('--seed <n>', 'seed of the weights, the holdout split and the shuffles', '1');
  addModelSizeOptions(fit);
  addDataOptions(fit).action(async (pairs: string, values: FitOptionValues) => {
    await runRmFit(pairs, values);
  });

  const evaluate = rm
    .command('eval')
    .description('Report the pairwise accuracy of a reward-model checkpoint on PAIRS, with a 95% Wilson interval.')
    .argument('<pairs>', 'JSON-lines file (plain or gzip) of {prompt, chosen, rejected} or HH-RLHF {chosen, rejected} records')
    .requiredOption('--model <dir>', 'reward-model checkpoint directory written by `tsalign rm fit`');
  addDataOptions(evaluate).action(async (pairs: string, values: EvalOptionValues) => {
    await runRmEval(pairs, values);
  });
}

function addDataOptions(command: Command): Command {
  return command
    .option('--limit <n>', 'read at most N pairs (after --skip)')
    .option('--skip <n>', 'pass over the first N pairs of the file', '0')
    .option('--backend <name>', 'tfjs backend: node-gpu, node, wasm or cpu (default: TSALIGN_BACKEND, else the first that works)')
    .option('--json', 'print one JSON document on stdout')
    .addOption(new Option('--log-level <level>', 'log level on stderr').choices(LOG_LEVELS).env('TSALIGN_LOG_LEVEL'));
}

/** Summary that `rm fit` prints. */
export interface RmFitReport {
  checkpoint: { dir: string; version: string; sha256: string };
  backend: string;
  parameters: number;
  config: RewardModel['config'];
  tokenizer: TokenizerKind;
  pairs: { train: number; validation: number };
  steps: number;
  epochs: number;
  loss: number;
  trainAccuracy: number;
  skippedSteps: number;
  validation: PairwiseAccuracy | null;
  seconds: number;
}

/** Runs `tsalign rm fit`; returns what it printed as data. */
export async function runRmFit(pairsPath: string, values: FitOptionValues): Promise<RmFitReport> {
  if (values.logLevel !== undefined) setLogLevel(values.logLevel);
  const holdout = parseFraction('--holdout', values.holdout);
  const epochs = parseWholeNumber('--epochs', values.epochs, 1);
  const optimizer = parseOptimizerOptions(values);
  const weightDecay = parseFraction('--weight-decay', values.weightDecay);
  const seed = parseWholeNumber('--seed', values.seed, 0);
  const { tokenizer, config } = parseModelSize(values);
  checkOutDirectory(values.out);

  const started = Date.now();
  const examples = await readPairs(pairsPath, values);
  const { train, validation } = splitHoldout(examples, holdout, seed);
  if (train.length === 0) {
    throw new UsageError(`no training pairs left: ${examples.length} read, ${validation.length} held out; lower --holdout or add pairs`);
  }
  const backend = await selectBackend(values.backend === undefined ? {} : { force: values.backend });
  const model = RewardModel.create(config, tokenizer, seed);
  const parameters = model.variables.reduce((sum, variable) => sum + variable.size, 0);
  process.stderr.write(
    `rm fit: ${train.length} training and ${validation.length} validation pairs, ${formatCount(parameters)} parameters, backend ${backend.name}\n`,
  );

  try {
    const progress = throttledProgress();
    const summary = await fitRewardModel(model, train, validation, {
      epochs,
      ...optimizer,
      weightDecay,
      seed,
      onProgress: progress,
    });
    const checkpoint = await saveCheckpoint(values.out, model, {
      kind: 'reward-model',
      extra: {
        trainedOn: pairsPath,
        skip: values.skip === undefined ? 0 : Number(values.skip),
        pairs: train.length,
        epochs,
        steps: summary.steps,
        validationAccuracy: summary.validation?.accuracy ?? null,
      },
    });
    const report: RmFitReport = {
      checkpoint,
      backend: backend.name,
      parameters,
      config: model.config,
      tokenizer: values.tokenizer,
      pairs: { train: train.length, validation: validation.length },
      steps: summary.steps,
      epochs,
      loss: summary.loss,
      trainAccuracy: summary.trainAccuracy,
      skippedSteps: summary.skippedSteps,
      validation: summary.validation ?? null,
      seconds: (Date.now() - started) / 1000,
    };
    printFitReport(report, values.json === true);
    return report;
  } finally {
    model.dispose();
  }
}

/** Summary that `rm eval` prints. */
export interface RmEvalReport extends PairwiseAccuracy {
  model: { dir: string; version: string; sha256: string };
  backend: string;
  seconds: number;
}

/** Runs `tsalign rm eval`; returns what it printed as data. */
export async function runRmEval(pairsPath: string, values: EvalOptionValues): Promise<RmEvalReport> {
  if (values.logLevel !== undefined) setLogLevel(values.logLevel);
  if (!existsSync(values.model) || !statSync(values.model).isDirectory()) {
    throw new UsageError(`model directory not found: ${values.model}; pass a checkpoint directory written by \`tsalign rm fit --out\``);
  }
  const started = Date.now();
  const examples = await readPairs(pairsPath, values);
  const backend = await selectBackend(values.backend === undefined ? {} : { force: values.backend });
  let model: RewardModel;
  let info;
  try {
    info = await readCheckpointInfo(values.model);
    model = await loadRewardModel(values.model);
  } catch (error) {
    if (error instanceof CheckpointError) throw new UsageError(`cannot load reward model from ${values.model}: ${error.message}`, { cause: error });
    throw error;
  }
  try {
    let lastReport = Date.now();
    const accuracy = await evaluateRewardModel(model, examples, (scored) => {
      if (Date.now() - lastReport < PROGRESS_INTERVAL_MS) return;
      lastReport = Date.now();
      process.stderr.write(`rm eval: ${scored}/${examples.length} pairs scored\n`);
    });
    const report: RmEvalReport = {
      ...accuracy,
      model: { dir: values.model, version: info.version, sha256: info.sha256 },
      backend: backend.name,
      seconds: (Date.now() - started) / 1000,
    };
    printEvalReport(report, values.json === true);
    return report;
  } finally {
    model.dispose();
  }
}

async function readPairs(pairsPath: string, values: DataOptionValues): Promise<PreferenceExample[]> {
  const skip = parseWholeNumber('--skip', values.skip ?? '0', 0);
  const limit = values.limit === undefined ? undefined : parseWholeNumber('--limit', values.limit, 1);
  const examples = await readPreferencePairs(pairsPath, { skip, ...(limit === undefined ? {} : { limit }) });
  if (examples.length === 0) {
    throw new UsageError(`no pairs in ${pairsPath} after skipping ${skip}; check the file and --skip`);
  }
  return examples;
}

/** Returns a progress callback that prints at most one line per interval, plus one at each epoch end. */
function throttledProgress(): (progress: FitProgress) => void {
  let lastLine = 0;
  return (progress) => {
    const now = Date.now();
    const validation = progress.validation;
    if (!progress.epochEnd && now - lastLine < PROGRESS_INTERVAL_MS) return;
    lastLine = now;
    const parts = [
      `step ${progress.step}/${progress.totalSteps}`,
      `epoch ${progress.epoch}`,
      `loss ${progress.loss.toFixed(4)}`,
      `train accuracy ${progress.trainAccuracy.toFixed(3)}`,
      `lr ${progress.lr.toExponential(2)}`,
    ];
    if (validation !== undefined) parts.push(`validation accuracy ${validation.accuracy.toFixed(3)} (n ${validation.n})`);
    process.stderr.write(`rm fit: ${parts.join(', ')}\n`);
  };
}

function printFitReport(report: RmFitReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const lines = [
    `checkpoint  ${report.checkpoint.dir} (version ${report.checkpoint.version}, sha256 ${report.checkpoint.sha256})`,
    `model       ${formatCount(report.parameters)} parameters: layers ${report.config.nLayers}, d_model ${report.config.dModel}, heads ${report.config.nHeads}, d_ff ${report.config.dFf}, context ${report.config.contextLength} tokens, ${report.tokenizer} tokenizer`,
    `training    ${report.pairs.train} pairs, ${report.epochs} epochs, ${report.steps} steps, final loss ${report.loss.toFixed(4)}, train accuracy ${report.trainAccuracy.toFixed(3)}`,
  ];
  if (report.skippedSteps > 0) lines.push(`warning     ${report.skippedSteps} steps skipped for a non-finite gradient`);
  if (report.validation !== null) lines.push(`validation  ${formatAccuracy(report.validation)}`);
  lines.push(`time        ${report.seconds.toFixed(1)} s on ${report.backend}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

function printEvalReport(report: RmEvalReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const lines = [
    `model     ${report.model.dir} (version ${report.model.version}, sha256 ${report.model.sha256})`,
    `accuracy  ${formatAccuracy(report)}`,
    `time      ${report.seconds.toFixed(1)} s on ${report.backend}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Formats accuracy, interval, n and ties; a tie counts as half a win. */
function formatAccuracy(result: PairwiseAccuracy): string {
  return (
    `${result.accuracy.toFixed(4)} (95% Wilson interval ${result.low.toFixed(4)}-${result.high.toFixed(4)}), ` +
    `n ${result.n}, ${result.wins} right, ${result.losses} wrong, ${result.ties} ties counted as half`
  );
}

function parseFraction(flag: string, value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number < 0 || number >= 1) {
    throw new UsageError(`invalid ${flag} ${JSON.stringify(value)}: give a number in [0, 1)`);
  }
  return number;
}

function formatCount(count: number): string {
  return count >= 1e6 ? `${(count / 1e6).toFixed(2)}M` : `${(count / 1e3).toFixed(1)}k`;
}
