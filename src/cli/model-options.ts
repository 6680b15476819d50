/**
 * Options of the commands that train a transformer from scratch (`policy sft`, `rm fit`): the
 * optimizer settings, the model size and the checkpoint directory to write, with their checks.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { TransformerConfig } from '../models/gpt';
import { TOKENIZER_KINDS, type Tokenizer, type TokenizerKind, createTokenizer } from '../models/tokenizer';
import { UsageError } from '../util/errors';
import { parsePositiveNumber, parseWholeNumber } from './common';

/** Optimizer options as commander parses them. */
export interface OptimizerOptionValues {
  batchSize: string;
  lr: string;
  warmupSteps?: string;
  schedule: 'constant' | 'cosine';
  clipNorm: string;
}

/** Model-size options as commander parses them. */
export interface ModelSizeOptionValues {
  tokenizer: TokenizerKind;
  layers: string;
  dModel: string;
  heads: string;
  dFf?: string;
  contextLength: string;
}

/** Help text and defaults of the optimizer options that differ between commands. */
export interface OptimizerOptionTexts {
  /** Description of `--batch-size`, such as 'pairs per optimizer step'. */
  batchSize: string;
  /** Default of `--lr`, as commander shows and passes it. */
  lr: string;
  /** What `--warmup-steps` defaults to, shown in the help. */
  warmupDefault: string;
}

/** Optimizer options after checks. */
export interface OptimizerOptions {
  batchSize: number;
  lr: number;
  /** Absent when the trainer should pick its own warm-up. */
  warmupSteps?: number;
  schedule: 'constant' | 'cosine';
  clipNorm: number;
}

/** Adds `--batch-size`, `--lr`, `--warmup-steps`, `--schedule` and `--clip-norm` to a command. */
export function addOptimizerOptions(command: Command, texts: OptimizerOptionTexts): Command {
  return command
    .option('--batch-size <n>', texts.batchSize, '16')
    .option('--lr <rate>', 'peak learning rate of Adam', texts.lr)
    .option('--warmup-steps <n>', `optimizer steps of linear warm-up (default: ${texts.warmupDefault})`)
    .addOption(new Option('--schedule <kind>', 'learning rate after warm-up: cosine decays to 0 by the last step, constant keeps it').choices(['cosine', 'constant']).default('cosine'))
    .option('--clip-norm <n>', 'maximum global gradient norm', '1');
}

/** Adds `--tokenizer`, `--layers`, `--d-model`, `--heads`, `--d-ff` and `--context-length` to a command. */
export function addModelSizeOptions(command: Command): Command {
  return command
    .addOption(new Option('--tokenizer <kind>', 'tokenizer: byte (UTF-8 bytes) or gpt2 (BPE, 50,257 ids)').choices(TOKENIZER_KINDS).default('byte'))
    .option('--layers <n>', 'transformer layers', '2')
    .option('--d-model <n>', 'width of the transformer', '64')
    .option('--heads <n>', 'attention heads; must divide --d-model', '4')
    .option('--d-ff <n>', 'width of the feed-forward layers (default: 4 x --d-model)')
    .option('--context-length <n>', 'tokens per (prompt, response); longer pairs lose the start of the prompt first', '128');
}

/** Checks the optimizer options. Throws UsageError on the first invalid value. */
export function parseOptimizerOptions(values: OptimizerOptionValues): OptimizerOptions {
  const batchSize = parseWholeNumber('--batch-size', values.batchSize, 1);
  const lr = parsePositiveNumber('--lr', values.lr);
  const warmupSteps = values.warmupSteps === undefined ? undefined : parseWholeNumber('--warmup-steps', values.warmupSteps, 0);
  const clipNorm = parsePositiveNumber('--clip-norm', values.clipNorm);
  return {
    batchSize,
    lr,
    ...(warmupSteps === undefined ? {} : { warmupSteps }),
    schedule: values.schedule,
    clipNorm,
  };
}

/**
 * Checks the model-size options and creates the tokenizer they name. Throws UsageError on the
 * first invalid value, or when `--heads` does not divide `--d-model`.
 */
export function parseModelSize(values: ModelSizeOptionValues): { tokenizer: Tokenizer; config: TransformerConfig } {
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
  return { tokenizer, config };
}

/** Fails before any training when `--out` would be refused at the end: it exists and is not an empty directory. */
export function checkOutDirectory(out: string): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory() || readdirSync(out).length > 0) {
    throw new UsageError(`--out ${out} already exists; choose a new directory or remove it`);
  }
}
