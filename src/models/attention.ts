import * as tf from '@tensorflow/tfjs';
import { linear, matMul, transposeLast } from './layers';

/** Keys and values of the positions seen so far, one entry per layer. */
export type LayerCache = {
  keys: tf.Tensor4D; // [batch, heads, past, headSize]
  values: tf.Tensor4D; // [batch, heads, past, headSize]
};

export interface AttentionWeights {
  qkvWeight: tf.Tensor2D; // [dModel, 3 * dModel], GPT-2's c_attn
  qkvBias: tf.Tensor1D;
  projWeight: tf.Tensor2D; // [dModel, dModel], GPT-2's attn.c_proj
  projBias: tf.Tensor1D;
}

/** Additive mask value for a key a query must not see; exp(-1e9 - max) is exactly 0 in float32. */
export const MASKED = -1e9;

/**
 * Multi-head self-attention over `x` ([batch * time, dModel]). `mask` is added to the scores and
 * broadcasts to [batch, heads, time, past + time]: 0 where a query may see a key, `MASKED` where
 * not (future positions, padding). With `past`, the new keys and values are appended to it and
 * the queries see both. Returns the output and the keys and values of all positions seen.
 */
export function selfAttention(
  x: tf.Tensor2D,
  batch: number,
  time: number,
  nHeads: number,
  weights: AttentionWeights,
  mask: tf.Tensor,
  past?: LayerCache,
): { output: tf.Tensor2D; present: LayerCache } {
  const dModel = x.shape[1];
  const headSize = dModel / nHeads;

  const qkv = linear(x, weights.qkvWeight, weights.qkvBias); // [batch * time, 3 * dModel]
  const [q, k, v] = tf.split(qkv, 3, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  const toHeads = (t: tf.Tensor2D): tf.Tensor4D =>
    tf.transpose(tf.reshape(t, [batch, time, nHeads, headSize]), [0, 2, 1, 3]); // [batch, heads, time, headSize]
  const queries = toHeads(q);
  let keys = toHeads(k);
  let values = toHeads(v);
  if (past !== undefined) {
    keys = tf.concat([past.keys, keys], 2); // [batch, heads, past + time, headSize]
    values = tf.concat([past.values, values], 2);
  }

  const scores = tf.add(tf.mul(matMul(queries, transposeLast(keys)), 1 / Math.sqrt(headSize)), mask); // [batch, heads, time, past + time]
  const attended = matMul(tf.softmax(scores), values); // [batch, heads, time, headSize]
  const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [batch * time, dModel]) as tf.Tensor2D;
  const output = linear(merged, weights.projWeight, weights.projBias);
  return { output, present: { keys, values } };
}
