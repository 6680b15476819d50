/** Construction of Prompt records from parsed input. */
import type { Prompt } from '../streams/records';
import { contentHash } from '../util/hash';
import type { PromptInput } from './formats';

export interface PromptDefaults {
  /** Source name: `--source`, else the input file's name. */
  source: string;
  tags: string[];
  /** Creation time in milliseconds since the Unix epoch. */
  now: () => bigint;
}

/**
 * Returns the id of a prompt without an explicit id: a content hash of its text, so the same
 * text fed twice gets the same id and consumers can tell the repeat.
 */
export function promptIdOf(text: string): string {
  return contentHash(['prompt', text]);
}

/** Builds the Prompt record of one parsed input. */
export function toPrompt(input: PromptInput, defaults: PromptDefaults): Prompt {
  return {
    id: input.id ?? promptIdOf(input.text),
    text: input.text,
    source: defaults.source,
    tags: [...defaults.tags],
    meta: { ...input.meta },
    createdAt: defaults.now(),
  };
}
