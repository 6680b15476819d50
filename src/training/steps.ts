/**
 * The training steps of tsalign in one import: DPO/IPO for the policy, Bradley-Terry for the
 * student reward model, and SFT warm-up.
 */
export { DpoTrainer, type DpoOptions, type DpoPair, type DpoStepResult, type LogprobModel, type PromptResponse } from './dpo-step';
export { RewardTrainer, type Comparison, type RewardStepResult, type RewardTrainerOptions, type ScoringModel } from './bt-step';
export { SftTrainer, buildSftBatch, type LanguageModel, type SftBatch, type SftOptions, type SftStepResult } from './sft-step';
