import type { Candidate, Prompt } from '../streams/records';

/**
 * A teacher ranks the student's shortlist of one prompt.
 *
 * `rank` returns one score per shortlisted candidate, in the shortlist's order; higher is
 * better and equal scores are ties. It rejects with `RetriableError` (from util/errors) for
 * failures a retry may fix (429, 5xx, timeouts, connection resets), and with any other error
 * for failures that a retry cannot fix (a truncated or unparseable verdict, a bad request).
 * It must stop work and reject when `signal` aborts.
 */
export interface Teacher {
  /** Stable name, part of the cache key and recorded in every Judgment. */
  readonly name: string;
  rank(prompt: Prompt, shortlist: readonly Candidate[], signal: AbortSignal): Promise<number[]>;
}
