import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../util/errors';
import { type LayerCache, MASKED, selfAttention } from './attention';
import { gatherRows, gelu, layerNorm, linear, matMul, transposeLast } from './layers';
import type { Tokenizer } from './tokenizer';
import type { WeightSet, WeightSpec } from './weights';

/**
 * Size of a GPT-2-style transformer. `tieEmbeddings` (default true) reuses the token embedding as
 * the LM head; `layerNormEpsilon` defaults to GPT-2's 1e-5.
 */
export interface TransformerConfig {
  vocabSize: number;
  contextLength: number;
  dModel: number;
  nHeads: number;
  nLayers: number;
  dFf: number;
  tieEmbeddings?: boolean;
  layerNormEpsilon?: number;
}

export type ResolvedTransformerConfig = Required<TransformerConfig>;

const DEFAULT_LAYER_NORM_EPSILON = 1e-5;
const INIT_STD = 0.02;

/** Checks a config and fills in its defaults; throws `UsageError` naming the bad field. */
export function resolveTransformerConfig(
  config: TransformerConfig,
  tokenizer: Tokenizer,
): ResolvedTransformerConfig {
  const positiveIntegers = ['vocabSize', 'contextLength', 'dModel', 'nHeads', 'nLayers', 'dFf'] as const;
  for (const field of positiveIntegers) {
    const value = config[field];
    if (!Number.isInteger(value) || value < 1) {
      throw new UsageError(`Invalid model config: ${field} is ${JSON.stringify(value)}, expected a positive integer.`);
    }
  }
  if (config.dModel % config.nHeads !== 0) {
    throw new UsageError(
      `Invalid model config: dModel ${config.dModel} is not divisible by nHeads ${config.nHeads}.`,
    );
  }
  if (config.vocabSize < tokenizer.vocabSize) {
    throw new UsageError(
      `Invalid model config: vocabSize ${config.vocabSize} is smaller than the ${tokenizer.kind} tokenizer's ${tokenizer.vocabSize} ids.`,
    );
  }
  if (config.contextLength < 4) {
    throw new UsageError(`Invalid model config: contextLength ${config.contextLength} is below the minimum of 4.`);
  }
  const epsilon = config.layerNormEpsilon ?? DEFAULT_LAYER_NORM_EPSILON;
  if (!(epsilon > 0)) {
    throw new UsageError(`Invalid model config: layerNormEpsilon ${epsilon} must be positive.`);
  }
  return {
    vocabSize: config.vocabSize,
    contextLength: config.contextLength,
    dModel: config.dModel,
    nHeads: config.nHeads,
    nLayers: config.nLayers,
    dFf: config.dFf,
    tieEmbeddings: config.tieEmbeddings ?? true,
    layerNormEpsilon: epsilon,
  };
}

/** Lists the weights of the transformer trunk and LM head, with GPT-2's names and layouts. */
export function transformerWeightSpecs(config: ResolvedTransformerConfig, withLmHead: boolean): WeightSpec[] {
  const { vocabSize, contextLength, dModel, dFf, nLayers } = config;
  const normal = { kind: 'normal', std: INIT_STD } as const;
  // GPT-2 scales the residual projections by 1/sqrt(2 * nLayers) so the residual stream's variance
  // does not grow with depth.
  const residual = { kind: 'normal', std: INIT_STD / Math.sqrt(2 * nLayers) } as const;
  const zeros = { kind: 'zeros' } as const;
  const ones = { kind: 'ones' } as const;
  const specs: WeightSpec[] = [
    { name: 'wte.weight', shape: [vocabSize, dModel], init: normal },
    { name: 'wpe.weight', shape: [contextLength, dModel], init: normal },
  ];
  for (let i = 0; i < nLayers; i++) {
    specs.push(
      { name: `h.${i}.ln_1.weight`, shape: [dModel], init: ones },
      { name: `h.${i}.ln_1.bias`, shape: [dModel], init: zeros },
      { name: `h.${i}.attn.c_attn.weight`, shape: [dModel, 3 * dModel], init: normal },
      { name: `h.${i}.attn.c_attn.bias`, shape: [3 * dModel], init: zeros },
      { name: `h.${i}.attn.c_proj.weight`, shape: [dModel, dModel], init: residual },
      { name: `h.${i}.attn.c_proj.bias`, shape: [dModel], init: zeros },
      { name: `h.${i}.ln_2.weight`, shape: [dModel], init: ones },
      { name: `h.${i}.ln_2.bias`, shape: [dModel], init: zeros },
      { name: `h.${i}.mlp.c_fc.weight`, shape: [dModel, dFf], init: normal },
      { name: `h.${i}.mlp.c_fc.bias`, shape: [dFf], init: zeros },
      { name: `h.${i}.mlp.c_proj.weight`, shape: [dFf, dModel], init: residual },
      { name: `h.${i}.mlp.c_proj.bias`, shape: [dModel], init: zeros },
    );
  }
  specs.push({ name: 'ln_f.weight', shape: [dModel], init: ones }, { name: 'ln_f.bias', shape: [dModel], init: zeros });
  if (withLmHead && !config.tieEmbeddings) {
    // [vocab, dModel] like the token embedding (and PyTorch's nn.Linear), so both heads share code.
    specs.push({ name: 'lm_head.weight', shape: [vocabSize, dModel], init: normal });
  }
  return specs;
}

/**
 * Base of the policy and the reward model: a resolved config, the tokenizer and the transformer's
 * weights, exposed as named variables. Each subclass builds the `WeightSet` from its own specs.
 */
export abstract class TransformerModel {
  readonly config: ResolvedTransformerConfig;
  readonly tokenizer: Tokenizer;
  /** The weights' logical names (GPT-2's for the trunk), in the order of `variables`. */
  readonly variableNames: readonly string[];
  readonly variables: tf.Variable[];
  protected readonly weights: WeightSet;

  protected constructor(config: ResolvedTransformerConfig, tokenizer: Tokenizer, weights: WeightSet) {
    this.config = config;
    this.tokenizer = tokenizer;
    this.weights = weights;
    this.variableNames = weights.names;
    this.variables = weights.variables;
  }

  dispose(): void {
    this.weights.dispose();
  }
}

/** Inputs of one forward pass over `ids` ([batch, time]). */
export interface ForwardInputs {
  ids: tf.Tensor2D; // [batch, time] int32
  /** Position of each id ([batch, time] int32); default 0..time-1 in every row. */
  positions?: tf.Tensor2D;
  /** Additive attention mask, broadcast to [batch, heads, time, past + time]. */
  mask: tf.Tensor;
  /** Keys and values of earlier positions, one entry per layer. */
  past?: LayerCache[];
  /** Added to the embeddings ([batch * time, dModel]); the reward model's segment embedding. */
  embeddingOffset?: tf.Tensor2D;
}

/**
 * Runs the transformer trunk (embeddings, pre-norm blocks, final LayerNorm). Returns the hidden
 * states ([batch * time, dModel]) and every layer's keys and values. Call it inside `tf.tidy`.
 */
export function transformerForward(
  config: ResolvedTransformerConfig,
  weights: WeightSet,
  inputs: ForwardInputs,
): { hidden: tf.Tensor2D; presents: LayerCache[] } {
  const [batch, time] = inputs.ids.shape;
  const epsilon = config.layerNormEpsilon;

  const flatIds = tf.reshape(inputs.ids, [batch * time]) as tf.Tensor1D;
  const flatPositions =
    inputs.positions !== undefined
      ? (tf.reshape(inputs.positions, [batch * time]) as tf.Tensor1D)
      : (tf.tile(tf.range(0, time, 1, 'int32'), [batch]) as tf.Tensor1D);
  let x = tf.add(
    gatherRows(weights.get('wte.weight') as tf.Tensor2D, flatIds),
    gatherRows(weights.get('wpe.weight') as tf.Tensor2D, flatPositions),
  ) as tf.Tensor2D; // [batch * time, dModel]
  if (inputs.embeddingOffset !== undefined) x = tf.add(x, inputs.embeddingOffset);

  const presents: LayerCache[] = [];
  for (let i = 0; i < config.nLayers; i++) {
    const w = (name: string) => weights.get(`h.${i}.${name}`);
    const normed1 = layerNorm(x, w('ln_1.weight') as tf.Tensor1D, w('ln_1.bias') as tf.Tensor1D, epsilon);
    const attention = selfAttention(
      normed1,
      batch,
      time,
      config.nHeads,
      {
        qkvWeight: w('attn.c_attn.weight') as tf.Tensor2D,
        qkvBias: w('attn.c_attn.bias') as tf.Tensor1D,
        projWeight: w('attn.c_proj.weight') as tf.Tensor2D,
        projBias: w('attn.c_proj.bias') as tf.Tensor1D,
      },
      inputs.mask,
      inputs.past?.[i],
    );
    presents.push(attention.present);
    x = tf.add(x, attention.output);

    const normed2 = layerNorm(x, w('ln_2.weight') as tf.Tensor1D, w('ln_2.bias') as tf.Tensor1D, epsilon);
    const expanded = gelu(linear(normed2, w('mlp.c_fc.weight') as tf.Tensor2D, w('mlp.c_fc.bias') as tf.Tensor1D)); // [batch * time, dFf]
    x = tf.add(x, linear(expanded, w('mlp.c_proj.weight') as tf.Tensor2D, w('mlp.c_proj.bias') as tf.Tensor1D));
  }

  const hidden = layerNorm(x, weights.get('ln_f.weight') as tf.Tensor1D, weights.get('ln_f.bias') as tf.Tensor1D, epsilon);
  return { hidden, presents };
}

/** Applies the LM head: [n, dModel] -> [n, vocab]. */
export function lmHead(config: ResolvedTransformerConfig, weights: WeightSet, hidden: tf.Tensor2D): tf.Tensor2D {
  const head = weights.get(config.tieEmbeddings ? 'wte.weight' : 'lm_head.weight') as tf.Tensor2D; // [vocab, dModel]
  return matMul(hidden, transposeLast(head));
}

/** Returns the causal mask [1, 1, time, time]: 0 on and below the diagonal, `MASKED` above. */
export function causalMask(time: number): tf.Tensor4D {
  const values = new Float32Array(time * time);
  for (let i = 0; i < time; i++) {
    for (let j = i + 1; j < time; j++) values[i * time + j] = MASKED;
  }
  return tf.tensor4d(values, [1, 1, time, time]);
}
