/**
 * Key-to-partition mapping shared by both transports, so a key lands on the same partition
 * number whether it travels through Kafka or the embedded log.
 *
 * It is the Java client's default for keyed records: `toPositive(murmur2(utf8(key))) % partitions`,
 * with Kafka's murmur2 variant (seed 0x9747b28c) from `org.apache.kafka.common.utils.Utils`.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const R = 24;

/** Kafka's murmur2 hash of the bytes, as the signed 32-bit int the Java client returns. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = (SEED ^ length) | 0;

  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }

  // The tail bytes fall through from the highest to the lowest, as in the Java switch.
  const rest = length & 3;
  if (rest === 3) h ^= data[whole + 2] << 16;
  if (rest >= 2) h ^= data[whole + 1] << 8;
  if (rest >= 1) {
    h ^= data[whole];
    h = Math.imul(h, M);
  }

  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Returns the partition of a key among `partitions`: `(murmur2(utf8(key)) & 0x7fffffff) % partitions`. */
export function partitionForKey(key: string | Uint8Array, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new RangeError(`invalid partition count ${partitions}: expected an integer >= 1`);
  }
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  return (murmur2(bytes) & 0x7fffffff) % partitions;
}

/**
 * Picks partitions for records without a key or explicit partition: round robin per topic.
 * Kafka's Java client uses a sticky partitioner instead; either spreads unkeyed records.
 */
export class RoundRobinPartitioner {
  /** Next partition per topic. */
  private readonly next = new Map<string, number>();

  partition(topic: string, partitions: number): number {
    const current = this.next.get(topic) ?? 0;
    this.next.set(topic, (current + 1) % partitions);
    return current % partitions;
  }
}
