/**
 * One supervised fine-tuning (SFT) step of the policy: token cross-entropy on responses, used to
 * warm a policy up before preference training.
 */
import * as tf from '@tensorflow/tfjs';
import { encodePair } from '../models/encoding';
import type { Tokenizer } from '../models/tokenizer';
import { maskedCrossEntropy } from './losses';
import { MicroBatchTrainer, type MicroBatchTrainerOptions, accumulateGradients, chunk } from './gradients';
import type { PromptResponse } from './dpo-step';

/** Inputs, next-token targets and the response mask of a batch, as plain arrays. */
export interface SftBatch {
  /** Input ids, [batch][time], right-padded with the tokenizer's PAD id. */
  inputs: number[][];
  /** Next-token target at each input position, [batch][time]; 0 under padding. */
  targets: number[][];
  /** 1 where the target is a response token or the closing EOS, else 0; [batch][time]. */
  mask: number[][];
  /** Number of 1s in `mask`: the tokens the loss averages over. */
  tokenCount: number;
}

/**
 * Builds the SFT batch of (prompt, response) examples. Each example is encoded by `encodePair`
 * as [BOS, ...prompt, ...response, EOS], cut to `contextLength` ids the way the policy scores
 * responses (the response kept from its start, the prompt losing its beginning first). Position
 * t predicts id t + 1, and only the response ids and the EOS are learned, never the prompt.
 */
export function buildSftBatch(tokenizer: Tokenizer, examples: readonly PromptResponse[], contextLength: number): SftBatch {
  const encoded = examples.map((example) => encodePair(tokenizer, example.prompt, example.response, contextLength));
  const time = Math.max(...encoded.map((pair) => pair.ids.length)) - 1;
  let tokenCount = 0;
  const inputs: number[][] = [];
  const targets: number[][] = [];
  const mask: number[][] = [];
  for (const { ids, responseStart } of encoded) {
    const inputRow = new Array<number>(time).fill(tokenizer.padId);
    const targetRow = new Array<number>(time).fill(0);
    const maskRow = new Array<number>(time).fill(0);
    for (let t = 0; t < ids.length - 1; t++) {
      inputRow[t] = ids[t]!;
      targetRow[t] = ids[t + 1]!;
      if (t + 1 >= responseStart) {
        maskRow[t] = 1;
        tokenCount++;
      }
    }
    inputs.push(inputRow);
    targets.push(targetRow);
    mask.push(maskRow);
  }
  return { inputs, targets, mask, tokenCount };
}

/** The part of a policy that the SFT trainer uses; `Policy` in src/models provides it. */
export interface LanguageModel {
  readonly variables: tf.Variable[];
  readonly tokenizer: Tokenizer;
  readonly config: { contextLength: number };
  /** Next-token logits, [batch, time] -> [batch, time, vocab], differentiable in `variables`. */
  logits(ids: tf.Tensor2D): tf.Tensor3D;
}

export interface SftOptions extends MicroBatchTrainerOptions {
  /** Examples per forward pass; a larger step is split into micro-batches whose gradients add up. */
  batchSize: number;
}

/** Loss of one SFT step, at the weights before the update. */
export interface SftStepResult {
  /** Mean cross-entropy per response token, in nats. */
  loss: number;
  /** Response tokens the loss averaged over. */
  tokens: number;
  gradNorm: number;
  lr: number;
  /** True when the gradient was not finite and the weights were left unchanged. */
  skipped: boolean;
}

/** Trains a policy on (prompt, response) examples with response-token cross-entropy. */
export class SftTrainer extends MicroBatchTrainer {
  constructor(
    readonly policy: LanguageModel,
    readonly options: SftOptions,
  ) {
    super(policy.variables, options);
  }

  /**
   * Takes one optimizer step on the examples. The loss is the mean over all response tokens of
   * the step, so micro-batches are weighted by their token counts.
   */
  async step(examples: readonly PromptResponse[]): Promise<SftStepResult> {
    if (examples.length === 0) throw new RangeError('an SFT step needs at least one example');
    const { tokenizer, config } = this.policy;
    const microBatches = chunk(examples, this.options.batchSize).map((microBatch) =>
      buildSftBatch(tokenizer, microBatch, config.contextLength),
    );
    const totalTokens = microBatches.reduce((sum, batch) => sum + batch.tokenCount, 0);

    const { gradients, loss } = accumulateGradients(this.policy.variables, microBatches.map((batch) => [batch]), ([batch]) => {
      const inputs = tf.tensor2d(batch!.inputs, undefined, 'int32'); // [batch, time]
      const targets = tf.tensor2d(batch!.targets, undefined, 'int32'); // [batch, time]
      const mask = tf.tensor2d(batch!.mask, undefined, 'float32'); // [batch, time]
      const meanLoss = maskedCrossEntropy(this.policy.logits(inputs), targets, mask);
      return tf.mul(meanLoss, batch!.tokenCount / Math.max(1, totalTokens)) as tf.Scalar;
    });

    const update = this.applyAccumulated(gradients);
    return { loss, tokens: totalTokens, ...update };
  }
}
