/** The built-in verifiable task suite: seeded prompt generation, grading and warm-up demonstrations. */
export {
  DEFAULT_DIFFICULTY,
  TASK_FAMILIES,
  TASK_FAMILY_NAMES,
  type TaskDifficulty,
  type TaskFamily,
  type TaskInstance,
} from './families';
export {
  HELDOUT_PERCENT,
  TASK_CREATED_AT,
  TASK_SOURCE,
  TASK_SPLITS,
  TaskPromptsExhaustedError,
  generateTaskPrompts,
  resolveDifficulty,
  taskSplitOf,
  type TaskPromptOptions,
  type TaskSplit,
} from './generate';
export { gradeResponse, isTaskPrompt, normalizeResponse, taskOf } from './grade';
export { noisyDemonstrations, type Demonstration, type DemonstrationOptions } from './demonstrations';
