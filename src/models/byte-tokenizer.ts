import { UsageError } from '../util/errors';
import type { Tokenizer, TokenizerJSON } from './tokenizer';

const BYTE_TOKENIZER_VERSION = 1;

/**
 * Byte-level tokenizer: ids 0-255 are the UTF-8 bytes of the text, then BOS (256), EOS (257) and
 * PAD (258). Any well-formed string round-trips exactly. A JavaScript string with a lone surrogate
 * is not valid Unicode, and `TextEncoder` encodes it as U+FFFD. Decoding an id sequence that is not
 * valid UTF-8 (a model can sample one) yields U+FFFD in place of the invalid bytes.
 */
export class ByteTokenizer implements Tokenizer {
  readonly kind = 'byte' as const;
  readonly vocabSize = 259;
  readonly bosId = 256;
  readonly eosId = 257;
  readonly padId = 258;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });

  static fromJSON(json: TokenizerJSON): ByteTokenizer {
    if (json.version !== BYTE_TOKENIZER_VERSION) {
      throw new UsageError(
        `Unsupported byte tokenizer version ${JSON.stringify(json.version)}: this build reads version ${BYTE_TOKENIZER_VERSION}.`,
      );
    }
    return new ByteTokenizer();
  }

  encode(text: string): number[] {
    return Array.from(this.encoder.encode(text));
  }

  decode(ids: readonly number[]): string {
    const bytes = new Uint8Array(ids.length);
    let length = 0;
    for (const id of ids) {
      if (id >= 0 && id < 256) bytes[length++] = id;
    }
    return this.decoder.decode(bytes.subarray(0, length));
  }

  toJSON(): TokenizerJSON {
    return { kind: 'byte', version: BYTE_TOKENIZER_VERSION };
  }
}
