import { decode, encode, vocabularySize } from 'gpt-tokenizer/encoding/r50k_base';
import { UsageError } from '../util/errors';
import type { Tokenizer, TokenizerJSON } from './tokenizer';

const GPT2_ENCODING = 'r50k_base';
/** GPT-2's `<|endoftext|>`, which GPT-2 uses as BOS and EOS. */
const END_OF_TEXT_ID = 50256;
/** Treats `<|endoftext|>` in input text as plain text, so user text cannot inject a special id. */
const PLAIN_TEXT_OPTIONS = { allowedSpecial: new Set<string>(), disallowedSpecial: new Set<string>() };

/**
 * GPT-2's byte-level BPE (the r50k_base encoding of `gpt-tokenizer`), 50,257 ids. GPT-2 has one
 * special token, `<|endoftext|>`, so BOS, EOS and PAD are all id 50256. The models mask padding by
 * position, never by id, so the shared id is safe.
 */
export class Gpt2Tokenizer implements Tokenizer {
  readonly kind = 'gpt2' as const;
  readonly vocabSize = vocabularySize;
  readonly bosId = END_OF_TEXT_ID;
  readonly eosId = END_OF_TEXT_ID;
  readonly padId = END_OF_TEXT_ID;

  static fromJSON(json: TokenizerJSON): Gpt2Tokenizer {
    if (json.encoding !== GPT2_ENCODING) {
      throw new UsageError(
        `Unsupported GPT-2 tokenizer encoding ${JSON.stringify(json.encoding)}: this build reads ${GPT2_ENCODING}.`,
      );
    }
    return new Gpt2Tokenizer();
  }

  encode(text: string): number[] {
    return encode(text, PLAIN_TEXT_OPTIONS);
  }

  decode(ids: readonly number[]): string {
    return decode(ids.filter((id) => id !== END_OF_TEXT_ID));
  }

  toJSON(): TokenizerJSON {
    return { kind: 'gpt2', encoding: GPT2_ENCODING };
  }
}
