import { TEACHER_KINDS, type TeacherKind } from '../config/schema';
import { UsageError } from '../util/errors';
import { createOpenAiTeacher, type OpenAiTeacherConfig } from './openai';
import { createRewardModelTeacher, type RewardModelTeacherConfig } from './reward-model';
import type { Teacher } from './types';
import { createVerifierTeacher } from './verifier';

export type { Teacher } from './types';
export { NoJudgmentError } from './openai-errors';
export { OpenAiTeacher, createOpenAiTeacher, type OpenAiTeacherConfig } from './openai';
export { RewardModelTeacher, createRewardModelTeacher, type RewardModelTeacherConfig } from './reward-model';
export { createVerifierTeacher } from './verifier';
export { TEACHER_KINDS, type TeacherKind };

/**
 * The `teacher` section of the run configuration, less its `kind`. The run configuration's
 * `TeacherConfig` fits; programmatic callers may add the optional settings of each teacher.
 */
export interface TeacherSettings {
  openai?: OpenAiTeacherConfig;
  rewardModel?: RewardModelTeacherConfig;
}

/**
 * Creates the teacher of the given kind from its section of the settings. Throws UsageError for
 * an unknown kind (listing the allowed ones) and for a missing or invalid setting (naming its
 * key, e.g. `teacher.openai.model`). `env` supplies the openai API key and base URL.
 */
export function createTeacher(
  kind: string,
  settings: TeacherSettings = {},
  env: NodeJS.ProcessEnv = process.env,
): Teacher {
  switch (kind as TeacherKind) {
    case 'verifier':
      return createVerifierTeacher();
    case 'openai':
      return createOpenAiTeacher(settings.openai ?? {}, env);
    case 'reward-model':
      return createRewardModelTeacher(settings.rewardModel ?? {});
    default:
      throw new UsageError(`unknown teacher kind ${JSON.stringify(kind)}: expected one of ${TEACHER_KINDS.join(', ')}`);
  }
}
