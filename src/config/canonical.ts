/**
 * Canonical JSON of a configuration, and its hash. Keys are sorted at every level so that two
 * equal configurations always hash the same, whatever order their files listed the keys in.
 */
import { sha256Hex } from '../util/hash';

/** Returns JSON with object keys sorted recursively and no whitespace. Bigints are written as strings. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === 'object' && value !== null) {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) sorted[key] = sortKeys((value as Record<string, unknown>)[key]);
    return sorted;
  }
  return value;
}

/** Returns the sha256 (hex) of the canonical JSON of a configuration. */
export function configHash(config: unknown): string {
  return sha256Hex(canonicalJson(config));
}
