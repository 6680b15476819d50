import * as tf from '@tensorflow/tfjs';

/**
 * Building blocks of the transformer, written with ops whose forward and backward kernels exist on
 * every tfjs backend tsalign uses (node, wasm, cpu). The wasm backend has no `UnsortedSegmentSum`,
 * which the built-in gradient of `gather` needs, so `gatherRows` carries its own gradient, and
 * `matMul` carries one that avoids wasm's slow transposed matMul.
 */

/** Whether the active backend has the kernel that tf's own `gather` gradient uses. */
function hasSegmentSum(): boolean {
  return tf.getKernel('UnsortedSegmentSum', tf.getBackend()) !== undefined;
}

/**
 * Returns `table[indices]` (rows), differentiable in `table`. The gradient scatters `dy` back to
 * the rows, summing repeated indices: with `UnsortedSegmentSum` where the backend has it, else
 * with `scatterND`, which sums duplicates too.
 */
export function gatherRows(table: tf.Tensor2D, indices: tf.Tensor1D): tf.Tensor2D {
  const [rows, width] = table.shape;
  const gatherWithGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    save([indices]);
    return {
      value: tf.gather(x, indices),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const savedIndices = saved[0] as tf.Tensor1D;
        if (hasSegmentSum()) return tf.unsortedSegmentSum(dy, savedIndices, rows);
        return tf.scatterND(tf.reshape(savedIndices, [-1, 1]), dy, [rows, width]);
      },
    };
  });
  return gatherWithGrad(table) as tf.Tensor2D;
}

/** Swaps the last two axes of a rank-2, -3 or -4 tensor. */
export function transposeLast<T extends tf.Tensor>(x: T): T {
  const perm = x.shape.map((_, i) => i);
  perm[perm.length - 1] = perm.length - 2;
  perm[perm.length - 2] = perm.length - 1;
  return tf.transpose(x, perm) as T;
}

/**
 * Returns `a @ b` (rank 2, or rank 4 with equal batch axes). Its gradient transposes explicitly
 * and then multiplies without transpose flags, because tf's own matMul gradient uses the flags.
 * On tfjs 4.22's wasm backend, `transposeA` made [2048, 128]^T x [2048, 512] 8 to 15 times slower
 * than a transpose followed by a plain matMul (two runs on a busy 2-core machine).
 */
export function matMul<T extends tf.Tensor>(a: T, b: tf.Tensor): T {
  const matMulWithGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor;
    const y = args[1] as tf.Tensor;
    const save = args[2] as tf.GradSaveFunc;
    save([x, y]);
    return {
      value: tf.matMul(x, y),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        tf.matMul(dy, transposeLast(saved[1]!)),
        tf.matMul(transposeLast(saved[0]!), dy),
      ],
    };
  });
  return matMulWithGrad(a, b) as T;
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
  return tf.add(matMul(x, weight), bias);
}
