import type { Prompt } from '../streams/records';
import { UsageError } from '../util/errors';
import { contentHash } from '../util/hash';
import {
  DEFAULT_DIFFICULTY,
  DIFFICULTY_LIMITS,
  TASK_FAMILIES,
  TASK_FAMILY_NAMES,
  type TaskDifficulty,
  type TaskFamily,
} from './families';
import { createRandom, deriveSeed } from './random';

export type TaskSplit = 'train' | 'heldout';
export const TASK_SPLITS: readonly TaskSplit[] = ['train', 'heldout'];

/** `source` of every generated prompt. */
export const TASK_SOURCE = 'tasks';

/**
 * `createdAt` of every generated prompt. It is fixed (the Unix epoch) so that the same options
 * always give byte-identical records and ids.
 */
export const TASK_CREATED_AT = 0n;

/** Percentage of problem instances that belong to the held-out split. */
export const HELDOUT_PERCENT = 20;

/** Draws per requested prompt before generation gives up on a family whose instances ran out. */
const MAX_DRAWS_PER_PROMPT = 200;

/** Thrown when a family has run out of distinct prompts of a split before `count` was reached. */
export class TaskPromptsExhaustedError extends UsageError {
  override name = 'TaskPromptsExhaustedError';
  constructor(
    message: string,
    /** Distinct prompts drawn (all families) before the family ran out: about what the split holds. */
    readonly drawn: number,
    /** The count that was requested. */
    readonly requested: number,
  ) {
    super(message);
  }
}

export interface TaskPromptOptions {
  count: number;
  seed: number;
  split: TaskSplit;
  /** Families to cycle through, in this order. Defaults to all of them. */
  families?: readonly string[];
  difficulty?: Partial<TaskDifficulty>;
}

/**
 * Returns the split a problem instance belongs to. The split is a function of the prompt text
 * alone (a hash of it), so no text can ever appear in both splits, whatever the seed or count.
 */
export function taskSplitOf(text: string): TaskSplit {
  const bucket = parseInt(contentHash(['tsalign.tasks.split', text], 8), 16) % 100;
  return bucket < HELDOUT_PERCENT ? 'heldout' : 'train';
}

/**
 * Generates `count` distinct task prompts of one split, cycling through the families in order.
 * The same options always return the same prompts. Each prompt carries
 * `meta: { task, answer, split }`, and only teachers may read `answer`.
 *
 * Throws UsageError for invalid options, and TaskPromptsExhaustedError (a UsageError) when a
 * family has too few distinct instances in the split for the count (raise the difficulty or
 * lower the count).
 */
export function generateTaskPrompts(options: TaskPromptOptions): Prompt[] {
  const { count, seed, split } = options;
  if (!Number.isInteger(count) || count < 0) {
    throw new UsageError(`invalid task prompt count ${count}: expected a non-negative integer`);
  }
  if (!Number.isInteger(seed)) {
    throw new UsageError(`invalid task seed ${seed}: expected an integer`);
  }
  if (!TASK_SPLITS.includes(split)) {
    throw new UsageError(`invalid task split "${split}": expected one of ${TASK_SPLITS.join(', ')}`);
  }
  const families = resolveFamilies(options.families ?? TASK_FAMILY_NAMES);
  const difficulty = resolveDifficulty(options.difficulty ?? {});

  const random = createRandom(deriveSeed('tsalign.tasks', seed, split));
  const seen = new Set<string>();
  const prompts: Prompt[] = [];
  for (let i = 0; i < count; i++) {
    const family = families[i % families.length]!;
    prompts.push(drawPrompt(family, split, difficulty, random, seen, count));
  }
  return prompts;
}

/** Draws instances of one family until one is new and in the split. */
function drawPrompt(
  family: TaskFamily,
  split: TaskSplit,
  difficulty: TaskDifficulty,
  random: ReturnType<typeof createRandom>,
  seen: Set<string>,
  count: number,
): Prompt {
  for (let draw = 0; draw < MAX_DRAWS_PER_PROMPT; draw++) {
    const { text, answer } = family.generate(random, difficulty);
    if (seen.has(text) || taskSplitOf(text) !== split) continue;
    seen.add(text);
    return {
      id: contentHash([TASK_SOURCE, text]),
      text,
      source: TASK_SOURCE,
      tags: [family.name],
      meta: { task: family.name, answer, split },
      createdAt: TASK_CREATED_AT,
    };
  }
  // NOTE: a family's instance space is small at the default difficulty (add has 21 * 21 = 441
  // instances, about 350 of them in train), so requests of thousands of prompts end here.
  throw new TaskPromptsExhaustedError(
    `task family "${family.name}" has run out of distinct ${split} prompts: ${MAX_DRAWS_PER_PROMPT} draws ` +
      `found no new one after ${seen.size} prompts of ${count} requested; request fewer prompts or raise ` +
      'the difficulty (maxOperand, maxWordLength, maxDigits)',
    seen.size,
    count,
  );
}

function resolveFamilies(names: readonly string[]): TaskFamily[] {
  if (names.length === 0) {
    throw new UsageError(`no task families given: expected some of ${TASK_FAMILY_NAMES.join(', ')}`);
  }
  return names.map((name) => {
    const family = TASK_FAMILIES.get(name);
    if (!family) {
      throw new UsageError(`unknown task family "${name}": expected one of ${TASK_FAMILY_NAMES.join(', ')}`);
    }
    return family;
  });
}

/** Fills in the defaults and checks every parameter against its limits and its partner. */
export function resolveDifficulty(overrides: Partial<TaskDifficulty>): TaskDifficulty {
  const difficulty: TaskDifficulty = { ...DEFAULT_DIFFICULTY, ...overrides };
  for (const [key, [min, max]] of Object.entries(DIFFICULTY_LIMITS)) {
    const value = difficulty[key as keyof TaskDifficulty];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new UsageError(`invalid task difficulty ${key}=${value}: expected an integer in [${min}, ${max}]`);
    }
  }
  if (difficulty.minWordLength > difficulty.maxWordLength) {
    throw new UsageError(
      `invalid task difficulty: minWordLength=${difficulty.minWordLength} exceeds maxWordLength=${difficulty.maxWordLength}`,
    );
  }
  if (difficulty.minDigits > difficulty.maxDigits) {
    throw new UsageError(
      `invalid task difficulty: minDigits=${difficulty.minDigits} exceeds maxDigits=${difficulty.maxDigits}`,
    );
  }
  return difficulty;
}
