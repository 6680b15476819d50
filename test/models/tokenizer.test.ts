import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteTokenizer } from '../../src/models/byte-tokenizer';
import { Gpt2Tokenizer } from '../../src/models/gpt2-tokenizer';
import { Random } from '../../src/models/random';
import { createTokenizer, tokenizerFromJSON } from '../../src/models/tokenizer';

/** Returns a random well-formed string mixing ASCII, accented Latin, CJK, emoji and controls. */
function randomUnicode(random: Random, length: number): string {
  const ranges: [number, number][] = [
    [0x00, 0x7f],
    [0xa0, 0x24f],
    [0x4e00, 0x9fff],
    [0x1f300, 0x1faff],
    [0x10000, 0x10ffff],
  ];
  let text = '';
  for (let i = 0; i < length; i++) {
    const [low, high] = ranges[Math.floor(random.nextFloat() * ranges.length)]!;
    let codePoint = low + Math.floor(random.nextFloat() * (high - low + 1));
    if (codePoint >= 0xd800 && codePoint <= 0xdfff) codePoint = 0x41; // surrogates are not characters
    text += String.fromCodePoint(codePoint);
  }
  return text;
}

test('byte tokenizer round-trips random unicode', () => {
  const tokenizer = new ByteTokenizer();
  const random = new Random(11);
  for (let i = 0; i < 200; i++) {
    const text = randomUnicode(random, 1 + Math.floor(random.nextFloat() * 40));
    const ids = tokenizer.encode(text);
    assert.ok(ids.every((id) => id >= 0 && id < 256), 'encode emits byte ids only');
    assert.equal(tokenizer.decode(ids), text);
  }
});

test('byte tokenizer decode skips special ids', () => {
  const tokenizer = new ByteTokenizer();
  const ids = [tokenizer.bosId, ...tokenizer.encode('héllo'), tokenizer.eosId, tokenizer.padId];
  assert.equal(tokenizer.decode(ids), 'héllo');
  assert.deepEqual([tokenizer.bosId, tokenizer.eosId, tokenizer.padId, tokenizer.vocabSize], [256, 257, 258, 259]);
});

test('gpt2 tokenizer round-trips text', () => {
  const tokenizer = new Gpt2Tokenizer();
  const random = new Random(12);
  const samples = ['Hello, world!', '  leading spaces\n\ttabs', 'naïve café 東京 🚀', 'a <|endoftext|> b'];
  for (let i = 0; i < 30; i++) samples.push(randomUnicode(random, 20));
  for (const text of samples) assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
});

test('gpt2 tokenizer matches GPT-2 ids', () => {
  const tokenizer = new Gpt2Tokenizer();
  // GPT-2's BPE ids of "Hello world": "Hello" = 15496, " world" = 995.
  assert.deepEqual(tokenizer.encode('Hello world'), [15496, 995]);
  assert.equal(tokenizer.vocabSize, 50257);
  assert.equal(tokenizer.eosId, 50256);
});

test('gpt2 tokenizer encodes endoftext text as plain text', () => {
  const tokenizer = new Gpt2Tokenizer();
  assert.ok(!tokenizer.encode('x<|endoftext|>y').includes(tokenizer.eosId));
});

test('tokenizer JSON round trip', () => {
  for (const kind of ['byte', 'gpt2'] as const) {
    const tokenizer = createTokenizer(kind);
    const restored = tokenizerFromJSON(JSON.parse(JSON.stringify(tokenizer.toJSON())));
    assert.equal(restored.kind, kind);
    assert.deepEqual(restored.encode('round trip'), tokenizer.encode('round trip'));
  }
});

test('tokenizerFromJSON rejects unknown kinds', () => {
  assert.throws(() => tokenizerFromJSON({ kind: 'sentencepiece' }), /Unknown tokenizer kind "sentencepiece": use one of byte, gpt2/);
  assert.throws(() => tokenizerFromJSON(null), /expected an object with a "kind" field/);
});
