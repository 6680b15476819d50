import type { Prompt } from '../streams/records';
import { UsageError } from '../util/errors';
import { TASK_FAMILIES, TASK_FAMILY_NAMES, type TaskFamily } from './families';

/**
 * Cuts a sampled response down to the answer it gives: leading whitespace goes, then everything
 * from the first line break or NUL byte (a byte-level policy may keep writing after its answer
 * or emit NUL padding), then trailing whitespace.
 */
export function normalizeResponse(response: string): string {
  const start = response.trimStart();
  const end = start.search(/[\r\n\0]/);
  return (end < 0 ? start : start.slice(0, end)).trimEnd();
}

/** True when the prompt is a built-in task prompt with a reference answer. */
export function isTaskPrompt(prompt: Prompt): boolean {
  return TASK_FAMILIES.has(prompt.meta.task ?? '') && typeof prompt.meta.answer === 'string';
}

/** Returns the prompt's family and reference answer, or throws UsageError naming what is missing. */
export function taskOf(prompt: Prompt): { family: TaskFamily; answer: string } {
  const name = prompt.meta.task;
  const answer = prompt.meta.answer;
  if (name === undefined || answer === undefined) {
    throw new UsageError(
      `prompt ${prompt.id} has no ${name === undefined ? 'meta.task' : 'meta.answer'}: ` +
        'only built-in task prompts (tsalign run, source "tasks") can be graded',
    );
  }
  const family = TASK_FAMILIES.get(name);
  if (!family) {
    throw new UsageError(
      `prompt ${prompt.id} has unknown task family "${name}": expected one of ${TASK_FAMILY_NAMES.join(', ')}`,
    );
  }
  return { family, answer };
}

/**
 * Grades a response to a task prompt in [0, 1]: 1 for the exact answer, partial credit for a
 * near miss as its family defines (see families.ts), after `normalizeResponse`. Deterministic.
 * Throws UsageError when the prompt is not a task prompt.
 */
export function gradeResponse(prompt: Prompt, response: string): number {
  const { family, answer } = taskOf(prompt);
  return family.grade(normalizeResponse(response), answer);
}
