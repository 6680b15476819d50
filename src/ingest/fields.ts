/** Field lookup by dotted path in parsed JSON, as `--text-field` and `--id-field` take it. */
import { UsageError } from '../util/errors';

/**
 * Returns the value at a dotted path such as `messages.0.content`, or undefined where a step is
 * missing. A step into an array must be a decimal index; a key that itself contains a dot
 * cannot be reached.
 */
export function readPath(value: unknown, path: string): unknown {
  let current = value;
  for (const step of path.split('.')) {
    if (Array.isArray(current)) {
      if (!/^(0|[1-9][0-9]*)$/.test(step)) return undefined;
      current = current[Number(step)];
    } else if (typeof current === 'object' && current !== null) {
      if (!Object.prototype.hasOwnProperty.call(current, step)) return undefined;
      current = (current as Record<string, unknown>)[step];
    } else {
      return undefined;
    }
  }
  return current;
}

/** Throws UsageError when a dotted path has an empty step, as in `a..b` or `.a`. */
export function checkPath(path: string, flag: string): void {
  if (path.split('.').some((step) => step === '')) {
    throw new UsageError(`${flag} ${JSON.stringify(path)} has an empty step; write fields separated by single dots, as in messages.0.content`);
  }
}

/** Names a JSON value's type for messages: string, number, boolean, null, array or object. */
export function jsonTypeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}
