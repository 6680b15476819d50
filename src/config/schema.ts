/**
 * The run configuration of tsalign: every setting of the chain, the trainer, the main job, the
 * models and the teacher, with its default and its valid values.
 *
 * `CONFIG_SCHEMA` is the single source of defaults and ranges. `validateConfig` (validate.ts)
 * checks a JSON document against it and names the dotted key of every invalid value.
 */

export const TEACHER_KINDS = ['verifier', 'openai', 'reward-model'] as const;
export type TeacherKind = (typeof TEACHER_KINDS)[number];

export const STALE_PAIR_POLICIES = ['skip', 'train'] as const;
export type StalePairPolicy = (typeof STALE_PAIR_POLICIES)[number];

export const TOKENIZER_KINDS = ['byte', 'gpt2'] as const;
export type TokenizerKind = (typeof TOKENIZER_KINDS)[number];

/** Settings of the operator chain: sample, score, gate, teacher, pairs. */
export interface ChainConfig {
  /** K: responses sampled per prompt. */
  candidates: number;
  temperature: number;
  /** Top-k filter for sampling; 0 disables it. */
  topK: number;
  topP: number;
  /** Maximum response tokens per candidate. */
  maxTokens: number;
  /** Confidence threshold: at or above it the student decides the pair. */
  tau: number;
  /** Calibration temperature T of confidence = sigmoid((best - worst) / T). */
  calibrationT: number;
  /** Share of confident student decisions sent to the teacher anyway, to audit the student. */
  auditFraction: number;
  /** m: the teacher ranks the student's top m and bottom m candidates. */
  shortlist: number;
  /** Minimum score margin between chosen and rejected for a pair to be emitted. */
  minMargin: number;
  /** Maximum teacher calls in flight. */
  concurrency: number;
  teacherTimeoutMs: number;
  teacherRetries: number;
  /** Teacher calls per minute; 0 means unlimited. */
  teacherCallsPerMinute: number;
  /** Teacher calls per round; 0 means unlimited. */
  teacherCallsPerRound: number;
}

/** Settings of the trainer consumer. */
export interface TrainerConfig {
  /** DPO inverse temperature beta. */
  beta: number;
  /** Weight of the chosen response's per-token NLL added to the DPO loss (RPO); 0 is plain DPO. */
  nllWeight: number;
  /** Learning rate of the policy (Adam). */
  lr: number;
  /** Learning rate of the student reward model (Adam). */
  studentLr: number;
  /** Pairs per DPO optimizer step. */
  batchSize: number;
  /** Comparisons per student optimizer step. */
  studentBatchSize: number;
  /** Optimizer steps between published checkpoints; 0 publishes only when a round closes. */
  publishEvery: number;
  /** Pairs after which a worker trainer closes a round. `tsalign run` closes a round when its prompts are done. */
  roundSize: number;
  /** Passes over the round's pairs and comparisons; in continuous mode the first is the streaming pass. */
  epochs: number;
  /** Earlier teacher comparisons kept to mix into each student step, so the student does not forget. */
  replayBufferSize: number;
  /** Replayed comparisons per student step. */
  replayPerStep: number;
  /** Policy for pairs sampled by a policy older than the round's reference. */
  stalePairs: StalePairPolicy;
}

/** Size of a transformer. */
export interface ModelSizeConfig {
  layers: number;
  heads: number;
  embedding: number;
  /** Maximum sequence length in tokens (prompt and response). */
  contextLength: number;
}

export interface ModelsConfig {
  tokenizer: TokenizerKind;
  policy: ModelSizeConfig;
  student: ModelSizeConfig;
}

/** Settings of the main job (`tsalign run`). */
export interface RunConfig {
  rounds: number;
  promptsPerRound: number;
  /** Held-out prompts for the win rate. */
  evalPrompts: number;
  /** Held-out prompts whose teacher rankings measure student agreement. */
  agreementPrompts: number;
  /** Root of every derived seed. */
  seed: number;
  /** SFT steps that warm up the base policy on noisy demonstrations. */
  warmupSteps: number;
  warmupLr: number;
  warmupBatchSize: number;
  /** Share of demonstrations corrupted during warm-up, so the base policy has room to improve. */
  warmupNoise: number;
  /** Teacher-labelled prompts the student is trained on before round 1; 0 starts it untrained. */
  studentSeedPrompts: number;
  /** Sampling temperature of evaluation; 0 is greedy. */
  evalTemperature: number;
}

export interface OpenAiTeacherConfig {
  baseUrl: string;
  model: string;
  /** Name of the environment variable that holds the API key (the key itself never goes in a config). */
  apiKeyEnv: string;
}

export interface RewardModelTeacherConfig {
  /** Checkpoint directory of the reward model. */
  checkpoint: string;
}

export interface TeacherConfig {
  kind: TeacherKind;
  openai: OpenAiTeacherConfig;
  rewardModel: RewardModelTeacherConfig;
}

export interface TsalignConfig {
  chain: ChainConfig;
  trainer: TrainerConfig;
  run: RunConfig;
  models: ModelsConfig;
  teacher: TeacherConfig;
}

/** One setting: its type, valid values and default. */
export type FieldSpec =
  | { kind: 'int'; min: number; max: number; default: number; doc: string }
  | { kind: 'number'; min: number; max: number; minExclusive?: boolean; default: number; doc: string }
  | { kind: 'enum'; values: readonly string[]; default: string; doc: string }
  | { kind: 'string'; default: string; doc: string };

/** A section of settings: keys to fields or nested sections. */
export interface SectionSpec {
  [key: string]: FieldSpec | SectionSpec;
}

export function isFieldSpec(spec: FieldSpec | SectionSpec): spec is FieldSpec {
  return typeof (spec as FieldSpec).kind === 'string' && typeof (spec as FieldSpec).doc === 'string';
}

const int = (min: number, max: number, value: number, doc: string): FieldSpec => ({ kind: 'int', min, max, default: value, doc });
const num = (min: number, max: number, value: number, doc: string, minExclusive = false): FieldSpec => ({
  kind: 'number',
  min,
  max,
  minExclusive,
  default: value,
  doc,
});

function modelSize(layers: number, heads: number, embedding: number, contextLength: number): SectionSpec {
  return {
    layers: int(1, 48, layers, 'transformer blocks'),
    heads: int(1, 64, heads, 'attention heads per block; must divide embedding'),
    embedding: int(8, 4096, embedding, 'embedding width'),
    contextLength: int(16, 4096, contextLength, 'maximum tokens of prompt plus response'),
  };
}

/**
 * Every setting with its default and range. The defaults are the `tsalign run` main job: a tiny
 * byte-level policy on the built-in tasks with the verifier teacher, three rounds.
 */
export const CONFIG_SCHEMA: SectionSpec = {
  chain: {
    candidates: int(2, 64, 16, 'K, responses sampled per prompt'),
    temperature: num(0, 5, 1, 'sampling temperature', true),
    topK: int(0, 100_000, 0, 'top-k filter; 0 disables it'),
    topP: num(0, 1, 1, 'nucleus sampling mass', true),
    maxTokens: int(1, 2048, 8, 'maximum response tokens'),
    tau: num(0.5, 1, 0.9, 'confidence at or above which the student decides'),
    calibrationT: num(0, 100, 4, 'T of sigmoid((best - worst) / T)', true),
    auditFraction: num(0, 1, 0.15, 'share of confident decisions audited by the teacher'),
    shortlist: int(1, 32, 8, 'm, top and bottom candidates the teacher ranks'),
    minMargin: num(0, 1e9, 0, 'minimum chosen-minus-rejected score for a pair'),
    concurrency: int(1, 256, 4, 'teacher calls in flight'),
    teacherTimeoutMs: int(100, 600_000, 30_000, 'timeout of one teacher call, ms'),
    teacherRetries: int(0, 20, 3, 'retries of a retryable teacher error'),
    teacherCallsPerMinute: int(0, 1_000_000, 0, 'teacher calls per minute; 0 is unlimited'),
    teacherCallsPerRound: int(0, 100_000_000, 0, 'teacher calls per round; 0 is unlimited'),
  },
  trainer: {
    beta: num(0, 100, 0.5, 'DPO beta', true),
    nllWeight: num(0, 10, 0, 'weight of the chosen response NLL per token added to the DPO loss (RPO); 0 is plain DPO'),
    lr: num(0, 1, 3e-4, 'policy learning rate', true),
    studentLr: num(0, 1, 1e-3, 'student learning rate', true),
    batchSize: int(1, 4096, 8, 'pairs per DPO step'),
    studentBatchSize: int(1, 4096, 16, 'comparisons per student step'),
    publishEvery: int(0, 1_000_000, 0, 'optimizer steps between checkpoints; 0 publishes at round close'),
    roundSize: int(1, 10_000_000, 64, 'pairs per round of a worker trainer'),
    epochs: int(1, 100, 2, 'passes over the round pairs'),
    replayBufferSize: int(0, 10_000_000, 2048, 'earlier teacher comparisons kept for the student'),
    replayPerStep: int(0, 4096, 16, 'replayed comparisons per student step'),
    stalePairs: { kind: 'enum', values: STALE_PAIR_POLICIES, default: 'skip', doc: 'pairs from a policy older than the reference' },
  },
  run: {
    rounds: int(1, 1000, 3, 'rounds of the main job'),
    promptsPerRound: int(1, 10_000_000, 512, 'prompts fed per round'),
    evalPrompts: int(1, 100_000, 256, 'held-out prompts for the win rate'),
    agreementPrompts: int(1, 100_000, 128, 'held-out prompts for student agreement'),
    seed: int(0, 2 ** 31 - 1, 1, 'root seed'),
    warmupSteps: int(0, 1_000_000, 3000, 'SFT warm-up steps of the base policy'),
    warmupLr: num(0, 1, 5e-3, 'SFT learning rate', true),
    warmupBatchSize: int(1, 4096, 32, 'demonstrations per SFT step'),
    warmupNoise: num(0, 1, 0.3, 'share of corrupted demonstrations'),
    studentSeedPrompts: int(0, 100_000, 0, 'teacher-labelled prompts to pre-train the student on'),
    evalTemperature: num(0, 5, 1, 'evaluation temperature; 0 is greedy'),
  },
  models: {
    tokenizer: { kind: 'enum', values: TOKENIZER_KINDS, default: 'byte', doc: 'tokenizer of policy and student' },
    policy: modelSize(2, 2, 64, 40),
    student: modelSize(2, 2, 64, 40),
  },
  teacher: {
    kind: { kind: 'enum', values: TEACHER_KINDS, default: 'verifier', doc: 'teacher that ranks shortlists' },
    openai: {
      baseUrl: { kind: 'string', default: 'https://api.openai.com/v1', doc: 'OpenAI-compatible endpoint' },
      model: { kind: 'string', default: 'gpt-4o-mini', doc: 'judge model name' },
      apiKeyEnv: { kind: 'string', default: 'OPENAI_API_KEY', doc: 'environment variable holding the API key' },
    },
    rewardModel: {
      checkpoint: { kind: 'string', default: '', doc: 'reward model checkpoint directory' },
    },
  },
};

/** Builds the default configuration from the schema. */
export function defaultConfig(): TsalignConfig {
  return defaultsOf(CONFIG_SCHEMA) as unknown as TsalignConfig;
}

function defaultsOf(section: SectionSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(section)) {
    out[key] = isFieldSpec(spec) ? spec.default : defaultsOf(spec);
  }
  return out;
}
