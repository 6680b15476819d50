import * as tf from '@tensorflow/tfjs';
import { encodePair, padRight } from './encoding';
import {
  type ResolvedTransformerConfig,
  type TransformerConfig,
  TransformerModel,
  causalMask,
  resolveTransformerConfig,
  transformerForward,
  transformerWeightSpecs,
} from './gpt';
import { gatherRows, matMul } from './layers';
import type { PromptResponse } from './policy';
import type { Tokenizer } from './tokenizer';
import { type WeightSpec, WeightSet } from './weights';

/** Size of the reward model's transformer; `tieEmbeddings` has no effect (there is no LM head). */
export type RewardModelConfig = TransformerConfig;

/** Pairs scored per forward pass in `score`, to bound memory. */
const SCORING_CHUNK = 32;

/**
 * The student reward model: the policy's transformer blocks (causal) over `[BOS, prompt, response,
 * EOS]`, with a learned segment vector added to the response positions so the model can tell the
 * two parts apart, and a linear scalar head on the last non-padding position. Long pairs follow
 * `encodePair`'s rule: the response is kept from its start (cut only beyond `contextLength - 2`
 * ids) and the prompt loses its beginning first.
 */
export class RewardModel extends TransformerModel {
  /** Creates a reward model with fresh weights; the same seed gives the same weights. */
  static create(config: RewardModelConfig, tokenizer: Tokenizer, seed: number): RewardModel {
    const resolved = resolveTransformerConfig(config, tokenizer);
    return new RewardModel(resolved, tokenizer, WeightSet.initialize(rewardModelWeightSpecs(resolved), seed, 'reward-model'));
  }

  /** Creates a reward model holding the given values, one array per `rewardModelWeightSpecs` entry. */
  static fromWeights(config: RewardModelConfig, tokenizer: Tokenizer, arrays: readonly Float32Array[]): RewardModel {
    const resolved = resolveTransformerConfig(config, tokenizer);
    return new RewardModel(resolved, tokenizer, WeightSet.fromArrays(rewardModelWeightSpecs(resolved), arrays, 'reward-model'));
  }

  /** Returns one differentiable score per pair ([batch]). */
  scoreTensor(batch: PromptResponse[]): tf.Tensor1D {
    if (batch.length === 0) return tf.tensor1d([]);
    const pairs = batch.map((item) => encodePair(this.tokenizer, item.prompt, item.response, this.config.contextLength));
    const time = Math.max(...pairs.map((pair) => pair.ids.length));
    const dModel = this.config.dModel;

    // 1 on response positions (EOS included), 0 on prompt and padding. [batch * time, 1]
    const responseFlags = new Float32Array(batch.length * time);
    pairs.forEach((pair, b) => responseFlags.fill(1, b * time + pair.responseStart, b * time + pair.ids.length));
    const lastRows = pairs.map((pair, b) => b * time + pair.ids.length - 1);

    return tf.tidy(() => {
      const ids = padRight(pairs.map((pair) => pair.ids), this.tokenizer.padId, time);
      const segment = tf.reshape(this.weights.get('segment.weight'), [1, dModel]);
      const embeddingOffset = tf.mul(tf.tensor2d(responseFlags, [batch.length * time, 1]), segment) as tf.Tensor2D;
      const { hidden } = transformerForward(this.config, this.weights, { ids, mask: causalMask(time), embeddingOffset });
      const last = gatherRows(hidden, tf.tensor1d(lastRows, 'int32')); // [batch, dModel]
      const scores = tf.add(matMul(last, this.weights.get('score.weight') as tf.Tensor2D), this.weights.get('score.bias')); // [batch, 1]
      return tf.reshape(scores, [batch.length]) as tf.Tensor1D;
    });
  }

  /** Returns the scores as numbers, without recording gradients, in chunks. */
  async score(batch: PromptResponse[]): Promise<number[]> {
    const result: number[] = [];
    for (let start = 0; start < batch.length; start += SCORING_CHUNK) {
      const scores = tf.tidy(() => this.scoreTensor(batch.slice(start, start + SCORING_CHUNK)));
      result.push(...(await scores.data()));
      scores.dispose();
    }
    return result;
  }

  /** Returns a deep copy (new variables, same values). */
  clone(): RewardModel {
    return new RewardModel(this.config, this.tokenizer, this.weights.clone('reward-model'));
  }
}

/** Lists the reward model's weights: the transformer trunk, the segment vector and the score head. */
export function rewardModelWeightSpecs(config: ResolvedTransformerConfig): WeightSpec[] {
  return [
    ...transformerWeightSpecs(config, false),
    { name: 'segment.weight', shape: [config.dModel], init: { kind: 'normal', std: 0.02 } },
    { name: 'score.weight', shape: [config.dModel, 1], init: { kind: 'normal', std: 0.02 } },
    { name: 'score.bias', shape: [1], init: { kind: 'zeros' } },
  ];
}
