import { createHash } from 'node:crypto';

/**
 * Returns a content hash of the given parts: sha256 over their JSON encoding, hex, truncated to
 * `length` characters. JSON framing keeps ("ab", "c") and ("a", "bc") apart.
 */
export function contentHash(parts: readonly unknown[], length = 32): string {
  const json = JSON.stringify(parts, (_key, value: unknown) =>
    typeof value === 'bigint' ? value.toString() : value,
  );
  return createHash('sha256').update(json).digest('hex').slice(0, length);
}

/** Returns the full sha256 hex digest of a buffer or string. */
export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}
