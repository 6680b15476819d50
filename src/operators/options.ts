import { UsageError } from '../util/errors';

/** Throws one UsageError that lists every problem with an operator's options. */
export function assertValidOptions(operator: string, problems: readonly string[]): void {
  if (problems.length > 0) {
    throw new UsageError(`invalid ${operator} options: ${problems.join('; ')}`);
  }
}

export function isPositiveInteger(value: number): boolean {
  return Number.isInteger(value) && value >= 1;
}

export function isNonNegative(value: number): boolean {
  return Number.isFinite(value) && value >= 0;
}
