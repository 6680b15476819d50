import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { importGpt2 } from '../../src/models/gpt2-import';
import { Random } from '../../src/models/random';
import { encodeSafetensors, halfToFloat, parseSafetensors } from '../../src/models/safetensors';
import { assertClose, byteTokenizer, useWasm } from './fixtures';

const V = 259;
const C = 12;
const D = 16;
const H = 2;
const F = 24;
const LAYERS = 2;

type Weights = Record<string, { shape: number[]; data: Float32Array }>;

function randomWeights(seed: number): Weights {
  const random = new Random(seed);
  const make = (shape: number[], scale = 0.3, offset = 0) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = offset + random.nextNormal() * scale;
    return { shape, data };
  };
  const weights: Weights = { 'wte.weight': make([V, D]), 'wpe.weight': make([C, D]) };
  for (let i = 0; i < LAYERS; i++) {
    Object.assign(weights, {
      [`h.${i}.ln_1.weight`]: make([D], 0.1, 1),
      [`h.${i}.ln_1.bias`]: make([D], 0.1),
      [`h.${i}.attn.c_attn.weight`]: make([D, 3 * D]),
      [`h.${i}.attn.c_attn.bias`]: make([3 * D], 0.1),
      [`h.${i}.attn.c_proj.weight`]: make([D, D]),
      [`h.${i}.attn.c_proj.bias`]: make([D], 0.1),
      [`h.${i}.ln_2.weight`]: make([D], 0.1, 1),
      [`h.${i}.ln_2.bias`]: make([D], 0.1),
      [`h.${i}.mlp.c_fc.weight`]: make([D, F]),
      [`h.${i}.mlp.c_fc.bias`]: make([F], 0.1),
      [`h.${i}.mlp.c_proj.weight`]: make([F, D]),
      [`h.${i}.mlp.c_proj.bias`]: make([D], 0.1),
      // The causal-mask buffer that some GPT-2 exports carry; the import must skip it.
      [`h.${i}.attn.bias`]: make([1, 1, C, C]),
    });
  }
  weights['ln_f.weight'] = make([D], 0.1, 1);
  weights['ln_f.bias'] = make([D], 0.1);
  return weights;
}

/** GPT-2's forward pass written out in plain loops, independent of the tfjs code. Returns [T][V] logits. */
function referenceLogits(w: Weights, ids: number[]): number[][] {
  const get = (name: string) => w[name]!.data;
  const T = ids.length;
  const matVec = (x: number[], weight: Float32Array, bias: Float32Array, inDim: number, outDim: number) => {
    const out = Array.from(bias);
    for (let i = 0; i < inDim; i++) for (let j = 0; j < outDim; j++) out[j]! += x[i]! * weight[i * outDim + j]!;
    return out;
  };
  const norm = (x: number[], gain: Float32Array, bias: Float32Array) => {
    const mean = x.reduce((a, b) => a + b, 0) / x.length;
    const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
    return x.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-5)) * gain[i]! + bias[i]!);
  };
  const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

  let x = ids.map((id, t) => Array.from({ length: D }, (_, j) => get('wte.weight')[id * D + j]! + get('wpe.weight')[t * D + j]!));
  for (let l = 0; l < LAYERS; l++) {
    const p = `h.${l}.`;
    const qkv = x.map((row) => matVec(norm(row, get(p + 'ln_1.weight'), get(p + 'ln_1.bias')), get(p + 'attn.c_attn.weight'), get(p + 'attn.c_attn.bias'), D, 3 * D));
    const hs = D / H;
    const attended = x.map(() => new Array<number>(D).fill(0));
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const scores: number[] = [];
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let j = 0; j < hs; j++) dot += qkv[t]![h * hs + j]! * qkv[s]![D + h * hs + j]!;
          scores.push(dot / Math.sqrt(hs));
        }
        const max = Math.max(...scores);
        const exps = scores.map((v) => Math.exp(v - max));
        const total = exps.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++) {
          for (let j = 0; j < hs; j++) attended[t]![h * hs + j]! += (exps[s]! / total) * qkv[s]![2 * D + h * hs + j]!;
        }
      }
    }
    x = x.map((row, t) => matVec(attended[t]!, get(p + 'attn.c_proj.weight'), get(p + 'attn.c_proj.bias'), D, D).map((v, j) => v + row[j]!));
    x = x.map((row) => {
      const hidden = matVec(norm(row, get(p + 'ln_2.weight'), get(p + 'ln_2.bias')), get(p + 'mlp.c_fc.weight'), get(p + 'mlp.c_fc.bias'), D, F).map(gelu);
      return matVec(hidden, get(p + 'mlp.c_proj.weight'), get(p + 'mlp.c_proj.bias'), F, D).map((v, j) => v + row[j]!);
    });
  }
  const wte = get('wte.weight');
  return x.map((row) => {
    const h = norm(row, get('ln_f.weight'), get('ln_f.bias'));
    return Array.from({ length: V }, (_, v) => h.reduce((sum, value, j) => sum + value * wte[v * D + j]!, 0));
  });
}

before(useWasm);

test('imported GPT-2 logits match a reference', async () => {
  const weights = randomWeights(1);
  const prefixed = Object.fromEntries(Object.entries(weights).map(([name, value]) => [`transformer.${name}`, value]));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tsalign-gpt2-'));
  const file = path.join(dir, 'model.safetensors');
  await writeFile(file, encodeSafetensors(prefixed, { format: 'pt' }));

  const policy = await importGpt2(file, { nHeads: H, tokenizer: byteTokenizer });
  assert.deepEqual(
    { ...policy.config },
    { vocabSize: V, contextLength: C, dModel: D, nHeads: H, nLayers: LAYERS, dFf: F, tieEmbeddings: true, layerNormEpsilon: 1e-5 },
  );
  const ids = [256, 72, 105, 33, 7, 200, 1];
  const logits = tf.tidy(() => policy.logits(tf.tensor2d([ids], [1, ids.length], 'int32')));
  const actual = ((await logits.array()) as number[][][])[0]!;
  logits.dispose();
  const expected = referenceLogits(weights, ids);
  expected.forEach((row, t) => assertClose(actual[t]!, row, 1e-3, `logits[${t}]`));
  policy.dispose();
  await rm(dir, { recursive: true, force: true });
});

test('import reads an untied LM head', async () => {
  const weights = randomWeights(2);
  const random = new Random(3);
  const head = new Float32Array(V * D).map(() => random.nextNormal());
  weights['lm_head.weight'] = { shape: [V, D], data: head };
  const policy = await importGpt2(encodeSafetensors(weights), { nHeads: H, tokenizer: byteTokenizer });
  assert.equal(policy.config.tieEmbeddings, false);
  const index = policy.variableNames.indexOf('lm_head.weight');
  assert.deepEqual(await policy.variables[index]!.data(), head);
  policy.dispose();
});

test('import rejects a missing weight', async () => {
  const weights = randomWeights(4);
  delete weights['h.1.mlp.c_fc.bias'];
  await assert.rejects(importGpt2(encodeSafetensors(weights), { nHeads: H, tokenizer: byteTokenizer }), /lacks the GPT-2 weight h\.1\.mlp\.c_fc\.bias/);
});

test('safetensors converts F16 and BF16', () => {
  // 1.5 in F16 is 0x3e00; -2 is 0xc000. 1.5 in BF16 is 0x3fc0; -2 is 0xc000.
  const data = Buffer.from([0x00, 0x3e, 0x00, 0xc0, 0xc0, 0x3f, 0x00, 0xc0]);
  const header = JSON.stringify({
    half: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
    brain: { dtype: 'BF16', shape: [2], data_offsets: [4, 8] },
  });
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  const file = parseSafetensors(Buffer.concat([length, Buffer.from(header), data]));
  assert.deepEqual(Array.from(file.tensors.get('half')!.toFloat32()), [1.5, -2]);
  assert.deepEqual(Array.from(file.tensors.get('brain')!.toFloat32()), [1.5, -2]);
  assert.equal(halfToFloat(0x0001), 2 ** -24);
});

test('safetensors rejects a truncated file', () => {
  const bytes = encodeSafetensors({ a: { shape: [4], data: new Float32Array(4) } });
  assert.throws(() => parseSafetensors(bytes.subarray(0, bytes.length - 4)), /outside the file/);
  assert.throws(() => parseSafetensors(bytes.subarray(0, 12)), /declares a \d+-byte header but has only 4 bytes/);
});
