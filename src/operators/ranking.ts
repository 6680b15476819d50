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
 * Returns the indices the teacher ranks: the student's top `m` and bottom `m` candidates,
 * best first, without repeating a candidate id. When K <= 2m that is every distinct
 * candidate; m = 1 is best versus worst.
 */
export function shortlistIndices(scores: readonly number[], ids: readonly string[], m: number): number[] {
  const ranked = rankIndices(scores);
  const picked = ranked.length <= 2 * m ? ranked : [...ranked.slice(0, m), ...ranked.slice(ranked.length - m)];
  const seen = new Set<string>();
  return picked.filter((index) => {
    const id = ids[index] as string;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
