import { selectBackend } from '../../src/models/backend';
import { ByteTokenizer } from '../../src/models/byte-tokenizer';
import type { PolicyConfig } from '../../src/models/policy';

/** A policy small enough for tests to run in well under a second per call. */
export const TINY_CONFIG: PolicyConfig = { vocabSize: 259, contextLength: 48, dModel: 16, nHeads: 2, nLayers: 2, dFf: 32 };

export const byteTokenizer = new ByteTokenizer();

/** Activates the wasm backend, the default tsalign runs on. */
export async function useWasm(): Promise<void> {
  await selectBackend({ force: 'wasm' });
}

export function assertClose(actual: readonly number[], expected: readonly number[], tolerance: number, what: string): void {
  if (actual.length !== expected.length) throw new Error(`${what}: ${actual.length} values, expected ${expected.length}`);
  actual.forEach((value, i) => {
    if (!(Math.abs(value - expected[i]!) <= tolerance)) {
      throw new Error(`${what}[${i}] is ${value}, expected ${expected[i]} within ${tolerance}`);
    }
  });
}
