/**
 * Returns candidate indices from best to worst score; equal scores keep index order. The
 * shortlist, the student's own choice and the pairs all use this one order, so "best" is
 * always the first entry and "worst" the last.
 */
export function rankIndices(scores: readonly number[]): number[] {
  return scores
    .map((_score, index) => index)
    .sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
}

/**
 * Returns the indices the teacher ranks: the student's top `m` and bottom `m` distinct
 * candidates, best first. Repeated candidate ids are dropped before picking, so identical
 * samples never crowd distinct ones out of the shortlist. When there are at most 2m distinct
 * candidates that is all of them; m = 1 is best versus worst.
 */
export function shortlistIndices(scores: readonly number[], ids: readonly string[], m: number): number[] {
  const seen = new Set<string>();
  const distinct = rankIndices(scores).filter((index) => {
    const id = ids[index] as string;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
  return distinct.length <= 2 * m ? distinct : [...distinct.slice(0, m), ...distinct.slice(distinct.length - m)];
}
