import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../util/errors';
import type { LayerCache } from './attention';
import { MASKED } from './attention';
import { encodePair, encodePrompt, padRight } from './encoding';
import {
  type ResolvedTransformerConfig,
  type TransformerConfig,
  TransformerModel,
  causalMask,
  lmHead,
  resolveTransformerConfig,
  transformerForward,
  transformerWeightSpecs,
} from './gpt';
import { gatherRows, matMul, oneHotFloat } from './layers';
import { Random, deriveSeed } from './random';
import { type SamplingOptions, checkSamplingOptions, drawToken } from './sampling';
import type { Tokenizer } from './tokenizer';
import { type WeightSpec, WeightSet } from './weights';

export type PolicyConfig = TransformerConfig;

/** A (prompt, response) pair to score. */
export interface PromptResponse {
  prompt: string;
  response: string;
}

export interface SampleOptions extends SamplingOptions {
  /** Candidates per prompt. */
  k: number;
  /** Maximum number of generated tokens, EOS included. */
  maxTokens: number;
  /** One seed per prompt; candidate j of prompt i draws from a stream derived from (seeds[i], j). */
  seeds: number[];
  /** Decode incrementally with a KV cache (default true); false recomputes the full sequence each step. */
  useCache?: boolean;
}

export interface SampledResponse {
  text: string;
  /** Generated ids, without the closing EOS. */
  tokenIds: number[];
  /** Number of generated ids, without the closing EOS. */
  tokens: number;
  /**
   * Sum of log p(id) at temperature 1 over the generated ids, plus the closing EOS when generation
   * stopped on it. For a response that ended on EOS and whose text re-encodes to `tokenIds`, this
   * equals `responseLogprobs` for the same prompt and text.
   */
  logprob: number;
  /** `eos` when the model ended the response, `length` when `maxTokens` cut it. */
  finishReason: 'eos' | 'length';
}

/** Pairs scored per forward pass in `responseLogprobs`, to bound memory. */
const SCORING_CHUNK = 32;

/**
 * The policy: a decoder-only GPT-2-style transformer over the tokenizer's ids. Every method that
 * returns a tensor leaves no other tensor behind; the caller disposes what it gets.
 */
export class Policy extends TransformerModel {
  /** Creates a policy with fresh weights; the same seed gives the same weights. */
  static create(config: PolicyConfig, tokenizer: Tokenizer, seed: number): Policy {
    const resolved = resolveTransformerConfig(config, tokenizer);
    return new Policy(resolved, tokenizer, WeightSet.initialize(policyWeightSpecs(resolved), seed, 'policy'));
  }

  /** Creates a policy holding the given values, one array per name of `policyWeightSpecs`, in order. */
  static fromWeights(config: PolicyConfig, tokenizer: Tokenizer, arrays: readonly Float32Array[]): Policy {
    const resolved = resolveTransformerConfig(config, tokenizer);
    return new Policy(resolved, tokenizer, WeightSet.fromArrays(policyWeightSpecs(resolved), arrays, 'policy'));
  }

  /** Returns the next-token logits at every position: [batch, time] -> [batch, time, vocab]. Differentiable. */
  logits(ids: tf.Tensor2D): tf.Tensor3D {
    const [batch, time] = ids.shape;
    if (time > this.config.contextLength) {
      throw new UsageError(`Input of ${time} ids exceeds the policy's context length ${this.config.contextLength}.`);
    }
    return tf.tidy(() => {
      const { hidden } = transformerForward(this.config, this.weights, { ids, mask: causalMask(time) });
      return tf.reshape(lmHead(this.config, this.weights, hidden), [batch, time, this.config.vocabSize]) as tf.Tensor3D;
    });
  }

  /**
   * Returns, per pair, the differentiable sum of log p(response ids | prompt) over the response ids
   * and the closing EOS ([batch]). Prompt and padding positions are masked out, and long pairs are
   * cut by `encodePair`'s rule. Padding sits on the right, so under the causal mask it cannot change
   * any scored position.
   */
  sequenceLogprobs(batch: PromptResponse[]): tf.Tensor1D {
    if (batch.length === 0) return tf.tensor1d([]);
    const pairs = batch.map((item) => encodePair(this.tokenizer, item.prompt, item.response, this.config.contextLength));
    const time = Math.max(...pairs.map((pair) => pair.ids.length)) - 1;

    // Each scored id t of row b is predicted from the hidden state at (b, t - 1).
    const rows: number[] = [];
    const targets: number[] = [];
    const owner: number[] = [];
    pairs.forEach((pair, b) => {
      for (let t = pair.responseStart; t < pair.ids.length; t++) {
        rows.push(b * time + t - 1);
        targets.push(pair.ids[t]!);
        owner.push(b);
      }
    });

    return tf.tidy(() => {
      const inputs = padRight(pairs.map((pair) => pair.ids.slice(0, -1)), this.tokenizer.padId, time);
      const { hidden } = transformerForward(this.config, this.weights, { ids: inputs, mask: causalMask(time) });
      // Only the scored positions go through the LM head. [scored, dModel]
      const scoredHidden = gatherRows(hidden, tf.tensor1d(rows, 'int32'));
      const logProbs = tf.logSoftmax(lmHead(this.config, this.weights, scoredHidden)); // [scored, vocab]
      const targetMask = oneHotFloat(tf.tensor1d(targets, 'int32'), this.config.vocabSize); // [scored, vocab]
      const tokenLogprobs = tf.sum(tf.mul(logProbs, targetMask), 1, true); // [scored, 1]
      // Sum each pair's scored ids with a [batch, scored] 0/1 matrix (no segment ops, which wasm lacks).
      const assignment = new Float32Array(batch.length * rows.length);
      owner.forEach((b, i) => (assignment[b * rows.length + i] = 1));
      const sums = matMul(tf.tensor2d(assignment, [batch.length, rows.length]), tokenLogprobs); // [batch, 1]
      return tf.reshape(sums, [batch.length]) as tf.Tensor1D;
    });
  }

  /** Returns, per pair, the number of ids that `sequenceLogprobs` sums: the kept response ids plus EOS. */
  responseTokenCounts(batch: PromptResponse[]): number[] {
    return batch.map((item) => {
      const pair = encodePair(this.tokenizer, item.prompt, item.response, this.config.contextLength);
      return pair.ids.length - pair.responseStart;
    });
  }

  /** Returns `sequenceLogprobs` as numbers, without recording gradients, in chunks. */
  async responseLogprobs(batch: PromptResponse[]): Promise<number[]> {
    const result: number[] = [];
    for (let start = 0; start < batch.length; start += SCORING_CHUNK) {
      const chunk = batch.slice(start, start + SCORING_CHUNK);
      const logprobs = tf.tidy(() => this.sequenceLogprobs(chunk));
      result.push(...(await logprobs.data()));
      logprobs.dispose();
    }
    return result;
  }

  /**
   * Samples `k` responses per prompt, all prompts times k in one batch. The prompt keeps BOS and its
   * last `contextLength - maxTokens - 1` ids. Generation stops per row at EOS or after `maxTokens`
   * ids. BOS, PAD and ids beyond the tokenizer's vocabulary are never drawn. Each draw uses a seeded
   * PRNG in JavaScript on the probabilities read back, so the same seeds on the same backend give
   * the same responses. Returns `result[prompt][candidate]`.
   */
  async sample(prompts: string[], options: SampleOptions): Promise<SampledResponse[][]> {
    checkSampleOptions(prompts, options, this.config.contextLength);
    if (prompts.length === 0) return [];
    const { k, maxTokens } = options;
    const useCache = options.useCache ?? true;

    const promptIds = prompts.map((prompt) => encodePrompt(this.tokenizer, prompt, this.config.contextLength - maxTokens));
    const promptLength = Math.max(...promptIds.map((ids) => ids.length));
    // Row r = prompt * k + candidate. Prompts are left-padded to one length, so every row's next id
    // goes to the same column; each row's positions start at 0 after its padding.
    const rowCount = prompts.length * k;
    const rowPrompt = Array.from({ length: rowCount }, (_, r) => Math.floor(r / k));
    const padding = promptIds.map((ids) => promptLength - ids.length);
    const randoms = rowPrompt.map((p, r) => new Random(deriveSeed(options.seeds[p]!, r % k)));
    const allowed = this.sampleableIds();

    const generated: number[][] = rowPrompt.map(() => []);
    const logprobs = new Float64Array(rowCount);
    const finished: ('eos' | 'length' | null)[] = rowPrompt.map(() => null);

    const decoder = useCache
      ? new CachedDecoder(this, promptIds, promptLength, padding, rowPrompt)
      : new FullDecoder(this, promptIds, padding, rowPrompt);
    try {
      for (let step = 0; step < maxTokens; step++) {
        const logits = await decoder.nextLogits(); // [rows * vocab]
        const vocab = this.config.vocabSize;
        const chosen: number[] = [];
        for (let r = 0; r < rowCount; r++) {
          if (finished[r] !== null) {
            chosen.push(this.tokenizer.padId);
            continue;
          }
          const draw = drawToken(logits.subarray(r * vocab, (r + 1) * vocab), allowed, options, randoms[r]!);
          logprobs[r]! += draw.logprob;
          chosen.push(draw.id);
          if (draw.id === this.tokenizer.eosId) finished[r] = 'eos';
          else {
            generated[r]!.push(draw.id);
            if (generated[r]!.length === maxTokens) finished[r] = 'length';
          }
        }
        if (finished.every((reason) => reason !== null)) break;
        decoder.append(chosen);
      }
    } finally {
      decoder.dispose();
    }

    return prompts.map((_, p) =>
      Array.from({ length: k }, (_, candidate) => {
        const r = p * k + candidate;
        const tokenIds = generated[r]!;
        return {
          text: this.tokenizer.decode(tokenIds),
          tokenIds,
          tokens: tokenIds.length,
          logprob: logprobs[r]!,
          finishReason: finished[r] ?? 'length',
        };
      }),
    );
  }

  /** Returns a deep copy (new variables, same values), e.g. the frozen DPO reference. */
  clone(): Policy {
    return new Policy(this.config, this.tokenizer, this.weights.clone('policy'));
  }

  /** @internal Runs the trunk and LM head on the last position of each row; used by the decoders. */
  forwardLast(
    ids: tf.Tensor2D,
    positions: tf.Tensor2D,
    mask: tf.Tensor,
    past?: LayerCache[],
  ): { logits: tf.Tensor2D; presents: LayerCache[] } {
    const [batch, time] = ids.shape;
    const { hidden, presents } = transformerForward(this.config, this.weights, { ids, positions, mask, past });
    const lastRows = tf.range(time - 1, batch * time, time, 'int32');
    return { logits: lmHead(this.config, this.weights, tf.gather(hidden, lastRows)), presents };
  }

  private sampleableIds(): Uint8Array {
    const allowed = new Uint8Array(this.config.vocabSize);
    allowed.fill(1, 0, this.tokenizer.vocabSize);
    allowed[this.tokenizer.bosId] = 0;
    allowed[this.tokenizer.padId] = 0;
    // GPT-2 shares one id for BOS, EOS and PAD: EOS must stay drawable.
    allowed[this.tokenizer.eosId] = 1;
    return allowed;
  }
}

/** Lists the policy's weights: the transformer trunk plus an LM head unless tied. */
export function policyWeightSpecs(config: ResolvedTransformerConfig): WeightSpec[] {
  return transformerWeightSpecs(config, true);
}

function checkSampleOptions(prompts: string[], options: SampleOptions, contextLength: number): void {
  checkSamplingOptions(options);
  if (!Number.isInteger(options.k) || options.k < 1) {
    throw new UsageError(`Invalid k ${options.k}: expected an integer >= 1 candidates per prompt.`);
  }
  if (!Number.isInteger(options.maxTokens) || options.maxTokens < 1 || options.maxTokens > contextLength - 2) {
    throw new UsageError(
      `Invalid maxTokens ${options.maxTokens}: expected an integer from 1 to ${contextLength - 2} (context length ${contextLength} minus room for BOS and one prompt id).`,
    );
  }
  if (options.seeds.length !== prompts.length || !options.seeds.every((seed) => Number.isSafeInteger(seed))) {
    throw new UsageError(
      `Invalid seeds: expected one integer seed per prompt (${prompts.length}), got ${JSON.stringify(options.seeds)}.`,
    );
  }
}

/** Additive key mask for left-padded rows: [rows, 1, 1, keys], MASKED on each row's padding. */
function paddingMask(padding: readonly number[], rowPrompt: readonly number[], keys: number): tf.Tensor4D {
  const values = new Float32Array(rowPrompt.length * keys);
  rowPrompt.forEach((p, r) => values.fill(MASKED, r * keys, r * keys + padding[p]!));
  return tf.tensor4d(values, [rowPrompt.length, 1, 1, keys]);
}

/** The next-token logits of every sampling row, step by step. */
interface Decoder {
  /** Returns the logits of each row's next id, [rows * vocab]. */
  nextLogits(): Promise<Float32Array>;
  /** Appends one id per row. */
  append(ids: number[]): void;
  dispose(): void;
}

/**
 * Incremental decoding: runs each distinct prompt once, copies its keys and values to its k rows,
 * then feeds one id per row per step, appending to the per-layer cache.
 */
class CachedDecoder implements Decoder {
  private cache: LayerCache[] = [];
  private logits: tf.Tensor2D;
  /** Number of ids fed so far per row (prompt padding included). */
  private length: number;
  private readonly rowPositions: number[];

  constructor(
    private readonly policy: Policy,
    promptIds: number[][],
    promptLength: number,
    private readonly padding: number[],
    private readonly rowPrompt: number[],
  ) {
    this.length = promptLength;
    this.rowPositions = rowPrompt.map((p) => promptIds[p]!.length);
    const prefill = tf.tidy(() => {
      const promptCount = promptIds.length;
      const ids = leftPad(promptIds, padding, promptLength, policy.tokenizer.padId);
      const positions = leftPadPositions(padding, promptLength);
      const mask = tf.add(causalMask(promptLength), paddingMask(padding, promptIds.map((_, p) => p), promptLength));
      const { logits, presents } = policy.forwardLast(ids, positions, mask);
      // Copy each prompt's state to its k rows. [rows, ...]
      const rowSource = tf.tensor1d(rowPrompt, 'int32');
      const expand = <T extends tf.Tensor>(t: T): T => (promptCount === rowPrompt.length ? t : (tf.gather(t, rowSource) as T));
      return {
        logits: expand(logits),
        cache: presents.map((layer) => ({ keys: expand(layer.keys), values: expand(layer.values) })),
      };
    });
    this.logits = prefill.logits;
    this.cache = prefill.cache;
  }

  async nextLogits(): Promise<Float32Array> {
    return (await this.logits.data()) as Float32Array;
  }

  append(ids: number[]): void {
    const keys = this.length + 1;
    const next = tf.tidy(() => {
      const idTensor = tf.tensor2d(ids, [ids.length, 1], 'int32');
      const positions = tf.tensor2d(this.rowPositions, [ids.length, 1], 'int32');
      const mask = paddingMask(this.padding, this.rowPrompt, keys);
      return this.policy.forwardLast(idTensor, positions, mask, this.cache);
    });
    this.disposeState();
    this.logits = next.logits;
    this.cache = next.presents as LayerCache[];
    this.length = keys;
    for (let r = 0; r < this.rowPositions.length; r++) this.rowPositions[r]! += 1;
  }

  dispose(): void {
    this.disposeState();
  }

  private disposeState(): void {
    this.logits.dispose();
    for (const layer of this.cache) {
      layer.keys.dispose();
      layer.values.dispose();
    }
    this.cache = [];
  }
}

/** Reference decoding without a cache: recomputes every row's whole sequence at each step. */
class FullDecoder implements Decoder {
  private readonly rows: number[][];

  constructor(
    private readonly policy: Policy,
    promptIds: number[][],
    private readonly padding: number[],
    private readonly rowPrompt: number[],
  ) {
    this.rows = rowPrompt.map((p) => [...new Array<number>(padding[p]!).fill(policy.tokenizer.padId), ...promptIds[p]!]);
  }

  async nextLogits(): Promise<Float32Array> {
    const time = this.rows[0]!.length;
    const logits = tf.tidy(() => {
      const ids = tf.tensor2d(this.rows, [this.rows.length, time], 'int32');
      const rowPadding = this.rowPrompt.map((p) => this.padding[p]!);
      const positions = leftPadPositions(rowPadding, time);
      const mask = tf.add(causalMask(time), paddingMask(this.padding, this.rowPrompt, time));
      return this.policy.forwardLast(ids, positions, mask).logits;
    });
    const values = (await logits.data()) as Float32Array;
    logits.dispose();
    return values;
  }

  append(ids: number[]): void {
    ids.forEach((id, r) => this.rows[r]!.push(id));
  }

  dispose(): void {}
}

function leftPad(rows: number[][], padding: number[], length: number, padId: number): tf.Tensor2D {
  const values = new Int32Array(rows.length * length).fill(padId);
  rows.forEach((row, b) => values.set(row, b * length + padding[b]!));
  return tf.tensor2d(values, [rows.length, length], 'int32');
}

/** Positions [rows, length] of left-padded rows: 0 on padding, then 0, 1, 2, ... */
function leftPadPositions(padding: readonly number[], length: number): tf.Tensor2D {
  const values = new Int32Array(padding.length * length);
  padding.forEach((pad, r) => {
    for (let t = pad; t < length; t++) values[r * length + t] = t - pad;
  });
  return tf.tensor2d(values, [padding.length, length], 'int32');
}
