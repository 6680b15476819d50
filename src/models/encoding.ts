import * as tf from '@tensorflow/tfjs';
import type { Tokenizer } from './tokenizer';

/** A (prompt, response) pair as one id sequence: `[BOS, ...prompt, ...response, EOS]`. */
export interface EncodedPair {
  ids: number[];
  /** Index in `ids` of the first response token (the EOS when the response is empty). */
  responseStart: number;
}

/**
 * Encodes a (prompt, response) pair to fit `contextLength` ids. The rule for long inputs: the
 * response (with its closing EOS) is kept from its start and is cut only where it alone exceeds
 * `contextLength - 2` ids; the prompt then keeps BOS and its last ids, as many as still fit. So the
 * response always fits, and the prompt loses its beginning first.
 */
export function encodePair(
  tokenizer: Tokenizer,
  prompt: string,
  response: string,
  contextLength: number,
): EncodedPair {
  const responseIds = [...tokenizer.encode(response), tokenizer.eosId].slice(0, contextLength - 2);
  const promptIds = encodePrompt(tokenizer, prompt, contextLength - responseIds.length);
  return { ids: [...promptIds, ...responseIds], responseStart: promptIds.length };
}

/**
 * Encodes a prompt as `[BOS, ...prompt]` in at most `budget` ids (budget >= 1), dropping prompt ids
 * from the left (the start of the prompt) when it is too long. BOS always stays.
 */
export function encodePrompt(tokenizer: Tokenizer, prompt: string, budget: number): number[] {
  const ids = tokenizer.encode(prompt);
  const kept = budget > 1 ? ids.slice(Math.max(0, ids.length - (budget - 1))) : [];
  return [tokenizer.bosId, ...kept];
}

/** Right-pads id rows with `padId` to one length; returns the [batch, time] int32 tensor. */
export function padRight(rows: readonly number[][], padId: number, length: number): tf.Tensor2D {
  const values = new Int32Array(rows.length * length).fill(padId);
  rows.forEach((row, b) => values.set(row.slice(0, length), b * length));
  return tf.tensor2d(values, [rows.length, length], 'int32');
}
