import * as tf from '@tensorflow/tfjs';

/**
 * Building blocks of the transformer, written with ops whose forward and backward kernels exist on
 * every tfjs backend tsalign uses (node, wasm, cpu). The wasm backend has no `UnsortedSegmentSum`,
 * which the built-in gradient of `gather` needs, so `gatherRows` carries its own gradient.
 */

/** Whether the active backend has the kernel that tf's own `gather` gradient uses. */
function hasSegmentSum(): boolean {
  return tf.getKernel('UnsortedSegmentSum', tf.getBackend()) !== undefined;
}

/**
 * Returns `table[indices]` (rows), differentiable in `table`. The gradient scatters `dy` back to
 * the rows: with `UnsortedSegmentSum` where the backend has it, else as `oneHot(indices)^T @ dy`,
 * which costs `indices.length * rows` floats of memory in the backward pass only.
 */
export function gatherRows(table: tf.Tensor2D, indices: tf.Tensor1D): tf.Tensor2D {
  const rows = table.shape[0];
  const gatherWithGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    save([indices]);
    return {
      value: tf.gather(x, indices),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const grad = dy as tf.Tensor2D;
        const savedIndices = saved[0] as tf.Tensor1D;
        if (hasSegmentSum()) return tf.unsortedSegmentSum(grad, savedIndices, rows);
        const selection = oneHotFloat(savedIndices, rows); // [n, rows]
        return tf.matMul(selection, grad, true, false); // [rows, width]
      },
    };
  });
  return gatherWithGrad(table) as tf.Tensor2D;
}

/**
 * Returns one-hot rows as float32 ([n, depth]). It casts an int32 `oneHot` because the wasm
 * backend of tfjs 4.22 returns all zeros when `oneHot` is asked for float32 directly.
 */
export function oneHotFloat(indices: tf.Tensor1D, depth: number): tf.Tensor2D {
  return tf.cast(tf.oneHot(indices, depth), 'float32') as tf.Tensor2D;
}

/** LayerNorm over the last axis, with gain and bias (GPT-2's `ln_*`). */
export function layerNorm(
  x: tf.Tensor2D,
  gain: tf.Tensor1D,
  bias: tf.Tensor1D,
  epsilon: number,
): tf.Tensor2D {
  const mean = tf.mean(x, -1, true); // [n, 1]
  const centered = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centered), -1, true); // [n, 1]
  const normalized = tf.mul(centered, tf.rsqrt(tf.add(variance, epsilon)));
  return tf.add(tf.mul(normalized, gain), bias);
}

const GELU_SCALE = Math.sqrt(2 / Math.PI);

/** GELU, tanh approximation (the one GPT-2 uses). */
export function gelu(x: tf.Tensor2D): tf.Tensor2D {
  const cubic = tf.mul(tf.mul(tf.mul(x, x), x), 0.044715);
  const inner = tf.mul(tf.add(x, cubic), GELU_SCALE);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/** `x @ weight + bias` with a `[in, out]` weight (GPT-2's Conv1D layout). */
export function linear(x: tf.Tensor2D, weight: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor2D {
  return tf.add(tf.matMul(x, weight), bias);
}
