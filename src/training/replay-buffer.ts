/**
 * Teacher comparisons for the student, and the replay buffer that keeps earlier ones so the
 * student does not forget them while it learns from new rounds.
 */
import { contentHash } from '../util/hash';
import { Random, deriveSeed } from '../models/random';

/** One teacher-ordered comparison: under the teacher, `chosen` scored strictly above `rejected`. */
export interface TeacherComparison {
  /** Content hash of (prompt, chosen, rejected). */
  id: string;
  prompt: string;
  chosen: string;
  rejected: string;
}

/** A candidate a teacher scored, with its text. */
export interface ScoredText {
  text: string;
  score: number;
}

/**
 * Returns every comparison a teacher ranking implies: each ordered pair of shortlisted
 * candidates with different scores, chosen first, in a fixed order (by the shortlist's index of
 * the chosen, then of the rejected candidate). Identical texts and equal scores give none.
 */
export function comparisonsFromRanking(prompt: string, ranked: readonly ScoredText[]): TeacherComparison[] {
  const comparisons: TeacherComparison[] = [];
  for (let i = 0; i < ranked.length; i++) {
    for (let j = 0; j < ranked.length; j++) {
      const a = ranked[i]!;
      const b = ranked[j]!;
      if (!(a.score > b.score) || a.text === b.text) continue;
      comparisons.push({ id: contentHash([prompt, a.text, b.text]), prompt, chosen: a.text, rejected: b.text });
    }
  }
  return comparisons;
}

/** State of a replay buffer as saved with a checkpoint. */
export interface ReplayBufferState {
  capacity: number;
  seed: number;
  /** Comparisons offered so far, kept or not. */
  seen: number;
  items: TeacherComparison[];
}

/**
 * A fixed-capacity reservoir of comparisons (reservoir sampling, Vitter's algorithm R), so it
 * keeps a uniform sample of everything offered. Every random choice is derived from the seed
 * and a counter (comparisons seen, or the caller's draw number), so the same calls give the same
 * contents and draws, also after a save and restore.
 */
export class ReplayBuffer {
  private items: TeacherComparison[] = [];
  private ids = new Set<string>();
  private seen = 0;

  constructor(
    readonly capacity: number,
    private readonly seed: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`replay buffer capacity must be an integer >= 0, got ${capacity}`);
  }

  get size(): number {
    return this.items.length;
  }

  /** Offers comparisons; ones already held (same id) are ignored. */
  add(comparisons: readonly TeacherComparison[]): void {
    for (const comparison of comparisons) {
      if (this.capacity === 0 || this.ids.has(comparison.id)) continue;
      this.seen += 1;
      if (this.items.length < this.capacity) {
        this.items.push(comparison);
        this.ids.add(comparison.id);
        continue;
      }
      const random = new Random(deriveSeed('tsalign.replay-buffer.add', this.seed, this.seen));
      const slot = Math.floor(random.nextFloat() * this.seen);
      if (slot < this.capacity) {
        this.ids.delete(this.items[slot]!.id);
        this.items[slot] = comparison;
        this.ids.add(comparison.id);
      }
    }
  }

  /**
   * Draws up to `count` distinct held comparisons, uniformly, excluding the given ids. `draw`
   * (e.g. the optimizer step) selects the random stream, so equal draws give equal samples.
   */
  sample(count: number, draw: number, exclude: ReadonlySet<string> = new Set()): TeacherComparison[] {
    const random = new Random(deriveSeed('tsalign.replay-buffer.sample', this.seed, draw));
    const eligible = this.items.filter((item) => !exclude.has(item.id));
    const drawn: TeacherComparison[] = [];
    // A partial Fisher-Yates shuffle of the eligible items.
    for (let i = 0; i < Math.min(count, eligible.length); i++) {
      const j = i + Math.floor(random.nextFloat() * (eligible.length - i));
      [eligible[i], eligible[j]] = [eligible[j]!, eligible[i]!];
      drawn.push(eligible[i]!);
    }
    return drawn;
  }

  toJSON(): ReplayBufferState {
    return { capacity: this.capacity, seed: this.seed, seen: this.seen, items: [...this.items] };
  }

  /** Restores a saved buffer; it continues exactly as the saved one would have. */
  static fromJSON(state: ReplayBufferState): ReplayBuffer {
    const buffer = new ReplayBuffer(state.capacity, state.seed);
    buffer.items = state.items.slice(0, state.capacity);
    buffer.ids = new Set(buffer.items.map((item) => item.id));
    buffer.seen = state.seen;
    return buffer;
  }
}
