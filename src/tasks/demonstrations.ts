import type { Prompt } from '../streams/records';
import { UsageError } from '../util/errors';
import { taskOf } from './grade';
import { createRandom, deriveSeed } from './random';

export interface Demonstration {
  prompt: string;
  response: string;
}

export interface DemonstrationOptions {
  seed: number;
  /** Fraction in [0, 1] of demonstrations whose answer is plausibly wrong. */
  noise: number;
}

/**
 * Returns one demonstration per task prompt for the supervised warm-up. A fraction `noise` of
 * them carry a plausibly wrong answer (a digit off by one, two letters swapped, a letter left in
 * lower case), so the warmed-up policy learns the format and is only sometimes right.
 *
 * Each prompt's draw depends on the seed and the prompt id alone, so the result does not
 * change with the order or number of prompts. Throws UsageError on a prompt that is not a task
 * prompt, or on a noise outside [0, 1].
 */
export function noisyDemonstrations(prompts: readonly Prompt[], options: DemonstrationOptions): Demonstration[] {
  const { seed, noise } = options;
  if (!Number.isInteger(seed)) {
    throw new UsageError(`invalid demonstration seed ${seed}: expected an integer`);
  }
  if (!(noise >= 0 && noise <= 1)) {
    throw new UsageError(`invalid demonstration noise ${noise}: expected a fraction in [0, 1]`);
  }
  return prompts.map((prompt) => {
    const { family, answer } = taskOf(prompt);
    const random = createRandom(deriveSeed('tsalign.tasks.demonstrations', seed, prompt.id));
    const response = random.next() < noise ? family.corrupt(answer, random) : answer;
    return { prompt: prompt.text, response };
  });
}
