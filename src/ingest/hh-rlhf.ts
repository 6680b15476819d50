/**
 * Splitting of Anthropic HH-RLHF records into prompt, chosen response and rejected response.
 *
 * Each HH-RLHF record holds two whole dialogues, `chosen` and `rejected`, that share their
 * opening turns and differ in the final assistant reply. The prompt is the longest shared
 * prefix cut just after its last "\n\nAssistant:" marker; the responses are what follows it.
 * This matches the usual split of the data set, which cuts `chosen` after its last marker,
 * and stays correct when the two dialogues diverge earlier than that.
 */

export const ASSISTANT_MARKER = '\n\nAssistant:';

export interface HhSplit {
  prompt: string;
  chosen: string;
  rejected: string;
}

/** Returns the length of the longest common prefix of two strings. */
function commonPrefixLength(a: string, b: string): number {
  const limit = Math.min(a.length, b.length);
  let i = 0;
  while (i < limit && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/**
 * Splits one HH-RLHF record. Throws an Error naming the problem when the dialogues share no
 * assistant turn; the caller adds the line number.
 */
export function splitHhDialogue(chosen: string, rejected: string): HhSplit {
  const shared = chosen.slice(0, commonPrefixLength(chosen, rejected));
  const marker = shared.lastIndexOf(ASSISTANT_MARKER);
  if (marker < 0) {
    throw new Error(
      `the "chosen" and "rejected" dialogues share no "${ASSISTANT_MARKER.trim()}" turn, so no prompt can be cut; ` +
        'each HH-RLHF record must repeat the conversation up to the final assistant reply in both fields',
    );
  }
  const end = marker + ASSISTANT_MARKER.length;
  return {
    prompt: chosen.slice(0, end),
    chosen: chosen.slice(end).trim(),
    rejected: rejected.slice(end).trim(),
  };
}

/** True when a parsed JSON value looks like an HH-RLHF record. */
export function isHhRecord(value: unknown): value is { chosen: string; rejected: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Record<string, unknown>).chosen === 'string' &&
    typeof (value as Record<string, unknown>).rejected === 'string'
  );
}
