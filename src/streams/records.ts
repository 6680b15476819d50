/**
 * TypeScript shapes of the records that travel on tsalign's topics.
 *
 * Each interface mirrors one Avro schema in `schemas/` (namespace `tsalign.v1`). Avro `long`
 * fields are `bigint` here so that values up to 2^63-1 round-trip exactly; `int` and `double`
 * fields are `number`. Optional fields are Avro unions `["null", T]` with default `null`, and
 * they are never wrapped: the value is `T` or `null`.
 */

/** A prompt to align on. Task prompts keep the grader's reference answer in `meta`. */
export interface Prompt {
  id: string;
  text: string;
  source: string;
  tags: string[];
  meta: Record<string, string>;
  /** Milliseconds since the Unix epoch. */
  createdAt: bigint;
}

/** One response sampled from the policy. */
export interface Candidate {
  /** Content hash of (promptId, text). */
  id: string;
  text: string;
  /** Number of response tokens. */
  tokens: number;
  /** Sum of the response tokens' log-probabilities under the sampling policy. */
  logprob: number;
}

export type Decision = 'STUDENT' | 'TEACHER' | 'AUDIT';
export const DECISIONS: readonly Decision[] = ['STUDENT', 'TEACHER', 'AUDIT'];

/** The K candidates of one prompt with the student's scores and the gate's decision. */
export interface CandidateSet {
  promptId: string;
  round: number;
  policyVersion: string;
  studentVersion: string;
  /** Sampling seed derived from the prompt id and the round. */
  seed: bigint;
  candidates: Candidate[];
  /** Student reward per candidate, in the order of `candidates`. */
  studentScores: number[];
  /** sigmoid((best - worst) / T) over the student scores. */
  confidence: number;
  decision: Decision;
  /** True when the teacher was wanted but its budget was spent, so the student decided. */
  overBudget: boolean;
}

/** One teacher call: the shortlist it ranked and the scores it gave. */
export interface Judgment {
  /** Content hash of (teacher, prompt, shortlist texts): the cache key. */
  id: string;
  promptId: string;
  round: number;
  teacher: string;
  candidateIds: string[];
  /** Teacher score per candidate, in the order of `candidateIds`; higher is better. */
  scores: number[];
  latencyMs: number;
  /** True when the verdict came from the cache rather than a call. */
  cached: boolean;
  /** Reason no judgment could be made, or `null` on success. */
  error: string | null;
}

export type Labeler = 'TEACHER' | 'STUDENT';
export const LABELERS: readonly Labeler[] = ['TEACHER', 'STUDENT'];

/** A preference pair for DPO. */
export interface PreferencePair {
  /** Content hash of (promptId, chosenId, rejectedId). */
  id: string;
  promptId: string;
  prompt: string;
  chosen: string;
  rejected: string;
  chosenId: string;
  rejectedId: string;
  labeler: Labeler;
  confidence: number;
  /** Score of chosen minus score of rejected, under the labeler. */
  margin: number;
  round: number;
  policyVersion: string;
  studentVersion: string;
}

export type ModelKind = 'POLICY' | 'STUDENT';
export const MODEL_KINDS: readonly ModelKind[] = ['POLICY', 'STUDENT'];

/** Announces a new checkpoint of the policy or the student. */
export interface ModelUpdate {
  model: ModelKind;
  version: string;
  parentVersion: string | null;
  round: number;
  /** Checkpoint location: a directory path or a file: URI. */
  uri: string;
  sha256: string;
  step: bigint;
  metrics: Record<string, number>;
}

export type RoundStatus = 'OPEN' | 'CLOSED';
export const ROUND_STATUSES: readonly RoundStatus[] = ['OPEN', 'CLOSED'];

/** A half-open offset range [from, to) of one partition. */
export interface OffsetRange {
  topic: string;
  partition: number;
  from: bigint;
  to: bigint;
}

/** Record of what a round consumed and produced, which replay reads back. */
export interface RoundManifest {
  round: number;
  status: RoundStatus;
  policyIn: string;
  policyOut: string | null;
  studentIn: string;
  studentOut: string | null;
  referenceVersion: string;
  referenceSha256: string;
  promptOffsets: OffsetRange[];
  seeds: Record<string, bigint>;
  /** The full run configuration as canonical JSON. */
  config: string;
  configHash: string;
  summary: Record<string, number>;
}

/** A measurement: rates, timings and counters. */
export interface Metric {
  name: string;
  value: number;
  labels: Record<string, string>;
  /** Milliseconds since the Unix epoch. */
  at: bigint;
}

/** A message that could not be processed, kept byte for byte with the reason. */
export interface DeadLetter {
  topic: string;
  partition: number;
  offset: bigint;
  key: string | null;
  value: Buffer;
  error: string;
  /** Milliseconds since the Unix epoch. */
  at: bigint;
}

/** Record type name for each topic, without the topic prefix. */
export const TOPIC_RECORDS = {
  prompts: 'Prompt',
  candidates: 'CandidateSet',
  judgments: 'Judgment',
  pairs: 'PreferencePair',
  'model-updates': 'ModelUpdate',
  rounds: 'RoundManifest',
  metrics: 'Metric',
  dlq: 'DeadLetter',
} as const;

export type TopicName = keyof typeof TOPIC_RECORDS;
export type RecordTypeName = (typeof TOPIC_RECORDS)[TopicName];

export interface RecordTypes {
  Prompt: Prompt;
  CandidateSet: CandidateSet;
  Judgment: Judgment;
  PreferencePair: PreferencePair;
  ModelUpdate: ModelUpdate;
  RoundManifest: RoundManifest;
  Metric: Metric;
  DeadLetter: DeadLetter;
}

export const TOPIC_NAMES = Object.keys(TOPIC_RECORDS) as TopicName[];
