import { createHash } from 'node:crypto';

/** A seeded pseudo-random source. The same seed always gives the same sequence. */
export interface Random {
  /** Returns a float in [0, 1). */
  next(): number;
  /** Returns an integer in [min, max], both inclusive. */
  int(min: number, max: number): number;
  /** Returns one element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
}

/**
 * Returns a mulberry32 generator: fast, one 32-bit word of state, and good enough to draw task
 * instances. It is not for cryptography.
 */
export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)]!,
  };
}

/** Derives a 32-bit seed from any parts (sha256 of their JSON), so related streams stay independent. */
export function deriveSeed(...parts: Array<string | number>): number {
  return createHash('sha256').update(JSON.stringify(parts)).digest().readUInt32BE(0);
}
