import type { Candidate, Prompt } from '../streams/records';
import { gradeResponse, isTaskPrompt } from '../tasks';
import { UsageError } from '../util/errors';
import type { Teacher } from './types';

/**
 * Returns the `verifier` teacher: it grades each shortlisted response against the prompt's
 * reference answer (`meta.answer`) with the task suite's partial-credit grader. It is
 * deterministic and makes no calls. A prompt without a reference answer is a UsageError, since
 * the verifier only judges built-in task prompts.
 */
export function createVerifierTeacher(): Teacher {
  return {
    name: 'verifier',
    async rank(prompt: Prompt, shortlist: readonly Candidate[], signal: AbortSignal): Promise<number[]> {
      signal.throwIfAborted();
      if (!isTaskPrompt(prompt)) {
        throw new UsageError(
          `the verifier teacher cannot judge prompt ${prompt.id} (source "${prompt.source}"): it has no ` +
            'reference answer in meta.task/meta.answer, and the verifier only judges built-in task prompts; ' +
            'use --teacher openai or --teacher reward-model for other prompts',
        );
      }
      return shortlist.map((candidate) => gradeResponse(prompt, candidate.text));
    },
  };
}
