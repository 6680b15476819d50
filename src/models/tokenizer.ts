import { UsageError } from '../util/errors';
import { ByteTokenizer } from './byte-tokenizer';
import { Gpt2Tokenizer } from './gpt2-tokenizer';

export type TokenizerKind = 'byte' | 'gpt2';

/** The JSON form of a tokenizer, as stored in a checkpoint's `tokenizer.json`. */
export interface TokenizerJSON {
  kind: TokenizerKind;
  [key: string]: unknown;
}

/**
 * Maps text to token ids and back. `encode` never adds BOS or EOS; the models add them. `decode`
 * skips the special ids (BOS, EOS, PAD).
 */
export interface Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  toJSON(): TokenizerJSON;
}

export const TOKENIZER_KINDS: readonly TokenizerKind[] = ['byte', 'gpt2'];

/** Creates a tokenizer by kind: `byte` (the default) or `gpt2` (GPT-2's BPE, r50k_base). */
export function createTokenizer(kind: TokenizerKind = 'byte'): Tokenizer {
  switch (kind) {
    case 'byte':
      return new ByteTokenizer();
    case 'gpt2':
      return new Gpt2Tokenizer();
    default:
      throw new UsageError(
        `Unknown tokenizer kind ${JSON.stringify(kind)}: use one of ${TOKENIZER_KINDS.join(', ')}.`,
      );
  }
}

/** Rebuilds a tokenizer from its `toJSON()` form. */
export function tokenizerFromJSON(json: unknown): Tokenizer {
  if (typeof json !== 'object' || json === null || !('kind' in json)) {
    throw new UsageError(
      `Invalid tokenizer JSON ${JSON.stringify(json)}: expected an object with a "kind" field.`,
    );
  }
  const kind = (json as { kind: unknown }).kind;
  if (kind === 'byte') return ByteTokenizer.fromJSON(json as TokenizerJSON);
  if (kind === 'gpt2') return Gpt2Tokenizer.fromJSON(json as TokenizerJSON);
  throw new UsageError(
    `Unknown tokenizer kind ${JSON.stringify(kind)}: use one of ${TOKENIZER_KINDS.join(', ')}.`,
  );
}
