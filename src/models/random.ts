/**
 * Seeded pseudo-random numbers for weight init and sampling. They run in plain JavaScript, so a
 * seed gives the same numbers on every backend and every machine.
 */

/** Mixes a 32-bit value (the finalizer of MurmurHash3), so nearby seeds give unrelated streams. */
function mix32(value: number): number {
  let h = value | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Derives one 32-bit seed from several integers and strings, order-sensitive. */
export function deriveSeed(...parts: (number | string)[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    if (typeof part === 'number') {
      // Split into two 32-bit halves so seeds above 2^32 still differ.
      h = mix32(h ^ mix32(part >>> 0));
      h = mix32(h ^ mix32(Math.floor(part / 0x100000000) >>> 0));
    } else {
      for (let i = 0; i < part.length; i++) h = mix32(h ^ part.charCodeAt(i));
      h = mix32(h ^ part.length);
    }
  }
  return h;
}

/** A sfc32 generator: four 32-bit words of state, period about 2^128, uniform floats in [0, 1). */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  /** Second normal value of the last Box-Muller pair, not yet returned. */
  private spareNormal: number | null = null;

  constructor(seed: number) {
    this.a = mix32(seed ^ 0x243f6a88);
    this.b = mix32(seed ^ 0x85a308d3);
    this.c = mix32(seed ^ 0x13198a2e);
    this.d = 1;
    // Discard the first outputs, which are still correlated with the seed.
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Returns a uniform float in [0, 1) with 32 random bits. */
  nextFloat(): number {
    return this.nextUint32() / 0x100000000;
  }

  /** Returns a standard normal value (Box-Muller). */
  nextNormal(): number {
    if (this.spareNormal !== null) {
      const spare = this.spareNormal;
      this.spareNormal = null;
      return spare;
    }
    let u = 0;
    while (u === 0) u = this.nextFloat();
    const v = this.nextFloat();
    const radius = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  }
}
