/**
 * `tsalign replay --round N`: reproduces a round from what was recorded. It re-reads the round's
 * prompts from the manifest's offsets, loads the recorded model versions, takes every teacher
 * verdict from the judgments topic (no teacher is called), re-runs the chain and compares each
 * pair with the recorded one. With `retrain` it also re-runs the round's training from the
 * recorded pairs and comparisons and compares the resulting checkpoint hashes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseRecordedConfig } from '../config/load';
import { loadPolicy, loadRewardModel } from '../models/checkpoint';
import type { Policy } from '../models/policy';
import type { RewardModel } from '../models/reward-model';
import { ModelRegistry } from '../operators/registry';
import { judgmentKey } from '../operators/teacher';
import type { RankingTeacher } from '../operators/types';
import type { Candidate, CandidateSet, Judgment, ModelUpdate, PreferencePair, Prompt, RoundManifest } from '../streams/records';
import { topicName } from '../streams/topics';
import type { Transport } from '../streams/transport';
import { Trainer } from '../training/trainer';
import { comparisonsFromRanking, type TeacherComparison } from '../training/replay-buffer';
import { UsageError } from '../util/errors';
import { runChainRound } from '../run/chain-round';
import { policyHandle, studentHandle } from '../run/handles';
import { DirectoryModelStore, readTrainerState, roundStartFile } from '../run/model-store';
import { readTopic } from './read-topic';

export interface ReplayOptions {
  transport: Transport;
  topicPrefix: string;
  /** The data directory whose `run/trainer` contains the round-start trainer states (for retrain). */
  dataDir: string;
  round: number;
  retrain?: boolean;
  /** Most differences listed in the result. */
  maxDifferences?: number;
}

export type DifferenceKind = 'different' | 'missing' | 'extra';

/** One pair that did not reproduce. */
export interface PairDifference {
  kind: DifferenceKind;
  promptId: string;
  recorded: PreferencePair | null;
  replayed: PreferencePair | null;
}

export interface RetrainResult {
  policyVersion: string;
  expectedPolicySha256: string;
  policySha256: string;
  studentVersion: string;
  expectedStudentSha256: string;
  studentSha256: string;
  matched: boolean;
}

export interface ReplayResult {
  round: number;
  prompts: number;
  matched: number;
  different: number;
  missing: number;
  extra: number;
  /** Teacher verdicts the chain asked for that the judgments topic does not hold. */
  missingVerdicts: number;
  differences: PairDifference[];
  retrain: RetrainResult | null;
  /** True when every pair matched, no verdict was missing, and a retrain (if any) matched. */
  ok: boolean;
}

/** Returns the closed manifest of a round, the last one written; throws UsageError when there is none. */
export function findManifest(manifests: readonly RoundManifest[], round: number): RoundManifest {
  const matching = manifests.filter((manifest) => manifest.round === round && manifest.status === 'CLOSED');
  if (matching.length === 0) {
    const recorded = [...new Set(manifests.map((manifest) => manifest.round))].sort((a, b) => a - b);
    throw new UsageError(
      `no manifest for round ${round} in the rounds topic; ${recorded.length === 0 ? 'no round has been recorded yet' : `recorded rounds: ${recorded.join(', ')}`}`,
    );
  }
  return matching[matching.length - 1]!;
}

/** A teacher that returns recorded verdicts and fails for any shortlist without one. */
export class RecordedTeacher implements RankingTeacher {
  private readonly verdicts = new Map<string, number[]>();
  missing = 0;

  constructor(
    readonly name: string,
    judgments: readonly Judgment[],
  ) {
    for (const judgment of judgments) {
      if (judgment.error === null && judgment.scores.length > 0) this.verdicts.set(judgment.id, judgment.scores);
    }
  }

  async rank(prompt: Prompt, shortlist: readonly Candidate[]): Promise<number[]> {
    const key = judgmentKey(this.name, prompt.text, shortlist.map((candidate) => candidate.text));
    const scores = this.verdicts.get(key);
    if (scores === undefined) {
      this.missing++;
      throw new Error(`no recorded verdict of teacher ${this.name} for prompt ${prompt.id} and this shortlist (judgment ${key})`);
    }
    return [...scores];
  }
}

function resolveModel(updates: Map<string, ModelUpdate>, version: string, what: string): ModelUpdate {
  const update = updates.get(version);
  if (update === undefined) {
    throw new Error(`the ${what} version ${version} has no ModelUpdate in the model-updates topic, so its checkpoint cannot be found`);
  }
  return update;
}

/** Compares recorded and replayed pairs prompt by prompt. */
export function comparePairs(promptIds: readonly string[], recorded: readonly PreferencePair[], replayed: readonly PreferencePair[]) {
  const recordedByPrompt = new Map(recorded.map((pair) => [pair.promptId, pair]));
  const replayedByPrompt = new Map(replayed.map((pair) => [pair.promptId, pair]));
  let matched = 0;
  const differences: PairDifference[] = [];
  for (const promptId of promptIds) {
    const a = recordedByPrompt.get(promptId) ?? null;
    const b = replayedByPrompt.get(promptId) ?? null;
    if (a === null && b === null) continue;
    if (a !== null && b !== null && a.id === b.id && a.labeler === b.labeler && a.policyVersion === b.policyVersion && a.studentVersion === b.studentVersion) {
      matched++;
      continue;
    }
    let kind: DifferenceKind = 'different';
    if (a === null) kind = 'extra';
    else if (b === null) kind = 'missing';
    differences.push({ kind, promptId, recorded: a, replayed: b });
  }
  return { matched, differences };
}

/** Replays a round; see the file comment. */
export async function replayRound(options: ReplayOptions): Promise<ReplayResult> {
  const { transport, topicPrefix, round } = options;
  const manifests = (await readTopic(transport, topicName('rounds', topicPrefix), 'RoundManifest')).map((entry) => entry.record);
  const manifest = findManifest(manifests, round);
  const loaded = parseRecordedConfig(manifest.config);
  if (loaded.hash !== manifest.configHash) {
    throw new Error(`the manifest of round ${round} records config hash ${manifest.configHash}, but its config hashes to ${loaded.hash}; the manifest is corrupted`);
  }
  const config = loaded.config;

  const updates = new Map((await readTopic(transport, topicName('model-updates', topicPrefix), 'ModelUpdate')).map((entry) => [entry.record.version, entry.record]));
  const policyIn = resolveModel(updates, manifest.policyIn, 'policy');
  const studentIn = resolveModel(updates, manifest.studentIn, 'student');
  if (policyIn.sha256 !== manifest.referenceSha256) {
    throw new Error(`the reference ${manifest.referenceVersion} of round ${round} has sha256 ${manifest.referenceSha256} in the manifest but ${policyIn.sha256} in its ModelUpdate`);
  }

  const judgments = (await readTopic(transport, topicName('judgments', topicPrefix), 'Judgment')).map((entry) => entry.record).filter((judgment) => judgment.round === round);
  const candidateSets = (await readTopic(transport, topicName('candidates', topicPrefix), 'CandidateSet')).map((entry) => entry.record).filter((set) => set.round === round);
  const recordedPairs = dedupe((await readTopic(transport, topicName('pairs', topicPrefix), 'PreferencePair')).map((entry) => entry.record).filter((pair) => pair.round === round));
  const teacher = new RecordedTeacher(judgments[0]?.teacher ?? config.teacher.kind, judgments);

  // NOTE: the chain uses the round's input versions throughout. A round trained with
  // publishEvery > 0 swapped models mid-round, so its later pairs are reported as different.
  const models: Array<Policy | RewardModel> = [];
  let prompts: Prompt[] = [];
  let replayedPairs: PreferencePair[] = [];
  let promptIds: string[] = [];
  try {
    const policy = await loadPolicy(policyIn.uri, { expectedSha256: policyIn.sha256 });
    models.push(policy);
    const student = await loadRewardModel(studentIn.uri, { expectedSha256: studentIn.sha256 });
    models.push(student);
    const registry = new ModelRegistry({ policy: policyHandle(policy, policyIn.version, config.chain), student: studentHandle(student, studentIn.version) });
    for (const range of manifest.promptOffsets) {
      const result = await runChainRound({ transport, config, round, range, models: registry, teacher, cache: new Map() });
      for (const outcome of result.outcomes) {
        prompts.push(outcome.item.prompt);
        replayedPairs.push(...outcome.records.pairs);
      }
    }
    registry.close();
    promptIds = prompts.map((prompt) => prompt.id);
  } finally {
    for (const model of models) model.dispose();
  }

  const { matched, differences } = comparePairs(promptIds, recordedPairs, replayedPairs);
  const count = (kind: DifferenceKind): number => differences.filter((difference) => difference.kind === kind).length;
  const retrain = options.retrain ? await retrainRound(options, manifest, loaded, updates, recordedPairs, candidateSets, judgments, prompts) : null;
  return {
    round,
    prompts: promptIds.length,
    matched,
    different: count('different'),
    missing: count('missing'),
    extra: count('extra'),
    missingVerdicts: teacher.missing,
    differences: differences.slice(0, options.maxDifferences ?? 10),
    retrain,
    ok: differences.length === 0 && teacher.missing === 0 && (retrain === null || retrain.matched),
  };
}

function dedupe(pairs: readonly PreferencePair[]): PreferencePair[] {
  return [...new Map(pairs.map((pair) => [pair.id, pair])).values()];
}

/** Rebuilds the teacher comparisons of a round from its recorded judgments and candidate sets. */
export function recordedComparisons(prompts: readonly Prompt[], candidateSets: readonly CandidateSet[], judgments: readonly Judgment[]): TeacherComparison[] {
  const promptText = new Map(prompts.map((prompt) => [prompt.id, prompt.text]));
  const texts = new Map<string, string>();
  for (const set of candidateSets) for (const candidate of set.candidates) texts.set(candidate.id, candidate.text);
  const comparisons: TeacherComparison[] = [];
  for (const judgment of dedupeJudgments(judgments)) {
    const prompt = promptText.get(judgment.promptId);
    if (prompt === undefined || judgment.error !== null) continue;
    const ranked = judgment.candidateIds.flatMap((id, i) => (texts.has(id) ? [{ text: texts.get(id)!, score: judgment.scores[i]! }] : []));
    comparisons.push(...comparisonsFromRanking(prompt, ranked));
  }
  return comparisons;
}

function dedupeJudgments(judgments: readonly Judgment[]): Judgment[] {
  const seen = new Set<string>();
  return judgments.filter((judgment) => {
    const key = `${judgment.promptId}\u0000${judgment.id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Re-runs the round's training in a scratch directory from the trainer state saved at the
 * round's start, and compares the checkpoint hashes with the recorded ones.
 */
async function retrainRound(
  options: ReplayOptions,
  manifest: RoundManifest,
  loaded: ReturnType<typeof parseRecordedConfig>,
  updates: Map<string, ModelUpdate>,
  pairs: readonly PreferencePair[],
  candidateSets: readonly CandidateSet[],
  judgments: readonly Judgment[],
  prompts: readonly Prompt[],
): Promise<RetrainResult> {
  const stateDir = join(options.dataDir, 'run', 'trainer');
  const start = readTrainerState(stateDir, roundStartFile(manifest.round));
  if (start === null) {
    throw new UsageError(`--retrain needs the trainer state at the start of round ${manifest.round} (${join(stateDir, roundStartFile(manifest.round))}), which is missing; retrain in the data directory of the run that trained the round`);
  }
  const scratch = mkdtempSync(join(options.dataDir, 'replay-retrain-'));
  try {
    const trainer = await Trainer.resume(
      { config: loaded.config, configJson: loaded.json, configHash: loaded.hash, store: new DirectoryModelStore(scratch, null) },
      start,
    );
    try {
      await trainer.addComparisons(recordedComparisons(prompts, candidateSets, judgments));
      await trainer.addPairs(pairs);
      const retrained = await trainer.closeRound({ promptOffsets: manifest.promptOffsets });
      const expectedPolicy = resolveModel(updates, manifest.policyOut ?? '', 'output policy');
      const expectedStudent = resolveModel(updates, manifest.studentOut ?? '', 'output student');
      // After the close, the trainer's current models are the round's outputs.
      const policySha256 = trainer.policyRef.sha256;
      const studentSha256 = trainer.studentRef.sha256;
      return {
        policyVersion: retrained.policyOut ?? '',
        expectedPolicySha256: expectedPolicy.sha256,
        policySha256,
        studentVersion: retrained.studentOut ?? '',
        expectedStudentSha256: expectedStudent.sha256,
        studentSha256,
        matched: policySha256 === expectedPolicy.sha256 && studentSha256 === expectedStudent.sha256,
      };
    } finally {
      trainer.dispose();
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
