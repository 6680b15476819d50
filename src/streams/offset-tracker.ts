import type { RecordPosition } from './transport';

/** Delivered offsets of one partition, in delivery order, and which of them are acknowledged. */
interface PartitionState {
  /** Offsets in delivery order; entries before `head` are acknowledged and dropped. */
  offsets: number[];
  head: number;
  /** Acknowledged offsets at or after `head`, waiting for the ones before them. */
  acked: Set<number>;
  /** Next-to-read offset once everything delivered so far is acknowledged. */
  nextOffset: number;
  /** The offset last returned by `committable()`, -1 before the first. */
  committed: number;
}

/**
 * Tracks delivered and acknowledged offsets per partition, and computes the offsets that are
 * safe to commit for at-least-once delivery.
 *
 * The safe offset of a partition is its lowest un-acknowledged offset, or one past the last
 * delivered offset when all are acknowledged, because committing further would skip a record
 * that is still being processed. Offsets of one partition must be tracked in increasing order,
 * as consumers receive them; gaps (compacted or transactional offsets) are fine.
 */
export class OffsetTracker {
  private readonly partitions = new Map<string, PartitionState>();
  private pending = 0;
  /** The partition looked up last: consumers track and ack runs of one partition, so this saves a key string per call. */
  private lastLookup: { topic: string; partition: number; state: PartitionState } | undefined;

  /** Number of tracked offsets not yet acknowledged, over all partitions. */
  get inFlight(): number {
    return this.pending;
  }

  /** Records a delivered offset. Throws when it is not above the partition's previous one. */
  track(position: RecordPosition): void {
    const last = this.lastTracked(position.topic, position.partition);
    const state = this.stateOf(position.topic, position.partition, true);
    if (position.offset <= last) {
      throw new Error(
        `offset ${position.offset} of ${position.topic}/${position.partition} was tracked after offset ${last}; ` +
          'offsets of a partition must be tracked in increasing order',
      );
    }
    state.offsets.push(position.offset);
    this.pending++;
  }

  /**
   * Marks a tracked offset as acknowledged. Returns false, and changes nothing, when the offset
   * is not tracked or was acknowledged before.
   */
  ack(position: RecordPosition): boolean {
    const state = this.stateOf(position.topic, position.partition, false);
    if (state === undefined) return false;
    if (state.head < state.offsets.length && state.offsets[state.head] === position.offset) {
      // In-order ack of the lowest pending offset, the common case: no set entry is needed.
      this.pending--;
      state.nextOffset = position.offset + 1;
      state.head++;
      this.dropAcknowledgedPrefix(state);
      return true;
    }
    if (state.acked.has(position.offset)) return false;
    if (!this.isPending(state, position.offset)) return false;
    state.acked.add(position.offset);
    this.pending--;
    this.dropAcknowledgedPrefix(state);
    return true;
  }

  /** Drops the acknowledged prefix so the lowest pending offset is always at `head`. */
  private dropAcknowledgedPrefix(state: PartitionState): void {
    while (state.head < state.offsets.length && state.acked.has(state.offsets[state.head])) {
      const offset = state.offsets[state.head];
      state.acked.delete(offset);
      state.nextOffset = offset + 1;
      state.head++;
    }
    if (state.head === state.offsets.length) {
      state.offsets = [];
      state.head = 0;
    } else if (state.head > 1024 && state.head * 2 > state.offsets.length) {
      state.offsets = state.offsets.slice(state.head);
      state.head = 0;
    }
  }

  /**
   * Forgets a partition's pending offsets, for a consumer that reads the partition again from
   * an earlier offset (after a rebalance). Later acks of forgotten offsets are ignored unless
   * the offset is tracked again.
   */
  reset(topic: string, partition: number): void {
    const state = this.stateOf(topic, partition, false);
    if (state === undefined) return;
    this.pending -= state.offsets.length - state.head - state.acked.size;
    this.partitions.delete(`${partition}:${topic}`);
    this.lastLookup = undefined;
  }

  /** Returns the last offset tracked for a partition, or -1 when none is. */
  lastTracked(topic: string, partition: number): number {
    const state = this.stateOf(topic, partition, false);
    if (state === undefined) return -1;
    return state.offsets.length > state.head ? state.offsets[state.offsets.length - 1] : state.nextOffset - 1;
  }

  /**
   * Returns the next-to-read offsets that moved since the last call, one per partition, and
   * remembers them as committed. Returns an empty array when nothing moved.
   */
  committable(): RecordPosition[] {
    const positions: RecordPosition[] = [];
    for (const [id, state] of this.partitions) {
      const safe = state.head < state.offsets.length ? state.offsets[state.head] : state.nextOffset;
      if (safe > state.committed && safe > 0) {
        const [topic, partition] = splitPartitionId(id);
        positions.push({ topic, partition, offset: safe });
        state.committed = safe;
      }
    }
    return positions;
  }

  private isPending(state: PartitionState, offset: number): boolean {
    // Offsets after `head` are increasing, so a binary search finds the entry.
    let low = state.head;
    let high = state.offsets.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const value = state.offsets[middle];
      if (value === offset) return true;
      if (value < offset) low = middle + 1;
      else high = middle - 1;
    }
    return false;
  }

  private stateOf(topic: string, partition: number, create: true): PartitionState;
  private stateOf(topic: string, partition: number, create: false): PartitionState | undefined;
  private stateOf(topic: string, partition: number, create: boolean): PartitionState | undefined {
    const last = this.lastLookup;
    if (last !== undefined && last.partition === partition && last.topic === topic) return last.state;
    const id = `${partition}:${topic}`;
    let state = this.partitions.get(id);
    if (state === undefined && create) {
      state = { offsets: [], head: 0, acked: new Set(), nextOffset: 0, committed: -1 };
      this.partitions.set(id, state);
    }
    if (state !== undefined) this.lastLookup = { topic, partition, state };
    return state;
  }
}

function splitPartitionId(id: string): [string, number] {
  const colon = id.indexOf(':');
  return [id.slice(colon + 1), Number(id.slice(0, colon))];
}
