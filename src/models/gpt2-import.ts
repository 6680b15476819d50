import { readFile } from 'node:fs/promises';
import { UsageError } from '../util/errors';
import { resolveTransformerConfig } from './gpt';
import { Gpt2Tokenizer } from './gpt2-tokenizer';
import { Policy, policyWeightSpecs } from './policy';
import { type SafetensorsEntry, parseSafetensors } from './safetensors';
import type { Tokenizer } from './tokenizer';

export interface Gpt2ImportOptions {
  /** Attention heads; shapes do not reveal it. Default dModel / 64, which fits every GPT-2 size. */
  nHeads?: number;
  /** Tokenizer of the model; default GPT-2's BPE. */
  tokenizer?: Tokenizer;
}

/** Buffers some exporters store beside the weights (the causal mask); they hold no parameters. */
const IGNORED_SUFFIXES = ['.attn.bias', '.attn.masked_bias'];

/**
 * Loads GPT-2-family weights from a safetensors file (a path or its bytes) into a Policy. Names
 * may carry a `transformer.` prefix (Hugging Face's GPT2LMHeadModel) or not (GPT2Model). The
 * config is inferred from shapes: vocabulary and context from `wte`/`wpe`, layers from `h.{i}`,
 * dFf from `mlp.c_fc`. The LM head is tied unless the file has an `lm_head.weight` that differs
 * from `wte.weight`.
 */
export async function importGpt2(source: string | Buffer, options: Gpt2ImportOptions = {}): Promise<Policy> {
  const label = typeof source === 'string' ? source : 'GPT-2 safetensors input';
  const bytes = typeof source === 'string' ? await readFile(source) : source;
  const file = parseSafetensors(bytes, label);

  const weights = new Map<string, SafetensorsEntry>();
  for (const [rawName, entry] of file.tensors) {
    const name = rawName.startsWith('transformer.') ? rawName.slice('transformer.'.length) : rawName;
    if (IGNORED_SUFFIXES.some((suffix) => name.endsWith(suffix))) continue;
    weights.set(name, entry);
  }
  const required = (name: string): SafetensorsEntry => {
    const entry = weights.get(name);
    if (entry === undefined) throw new UsageError(`${label} lacks the GPT-2 weight ${name} (with or without a "transformer." prefix).`);
    return entry;
  };

  const [vocabSize, dModel] = required('wte.weight').shape as [number, number];
  const contextLength = required('wpe.weight').shape[0]!;
  let nLayers = 0;
  while (weights.has(`h.${nLayers}.ln_1.weight`)) nLayers++;
  if (nLayers === 0) throw new UsageError(`${label} has no transformer blocks (no h.0.ln_1.weight).`);
  const dFf = required('h.0.mlp.c_fc.weight').shape[1]!;
  const nHeads = options.nHeads ?? dModel / 64;
  if (!Number.isInteger(nHeads)) {
    throw new UsageError(`${label}: dModel ${dModel} is not a multiple of 64, so the number of heads cannot be guessed; pass nHeads.`);
  }

  const wte = required('wte.weight').toFloat32();
  const lmHead = weights.get('lm_head.weight')?.toFloat32();
  const tieEmbeddings = lmHead === undefined || lmHead.every((value, i) => value === wte[i]);
  const tokenizer = options.tokenizer ?? new Gpt2Tokenizer();
  const config = resolveTransformerConfig({ vocabSize, contextLength, dModel, nHeads, nLayers, dFf, tieEmbeddings }, tokenizer);

  const arrays = policyWeightSpecs(config).map((spec) => {
    const entry = required(spec.name);
    if (entry.shape.join(',') !== spec.shape.join(',')) {
      throw new UsageError(
        `${label}: ${spec.name} has shape [${entry.shape.join(', ')}], but a GPT-2 with the inferred config needs [${spec.shape.join(', ')}].`,
      );
    }
    return spec.name === 'wte.weight' ? wte : spec.name === 'lm_head.weight' ? lmHead! : entry.toFloat32();
  });
  return Policy.fromWeights(config, tokenizer, arrays);
}
