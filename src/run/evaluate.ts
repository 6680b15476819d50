/**
 * Evaluation of a run: win rate of a policy against the base policy, student agreement with the
 * teacher on held-out comparisons, and audited precision of the student's confident decisions.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Candidate, Prompt } from '../streams/records';
import type { Teacher } from '../teachers/types';
import { deriveSeed } from '../models/random';
import { contentHash } from '../util/hash';
import { wilsonInterval } from '../training/stats';
import { type TeacherComparison, comparisonsFromRanking } from '../training/replay-buffer';

/** The part of `Policy` that evaluation uses. */
export interface ResponseSampler {
  sample(
    prompts: string[],
    options: { k: number; maxTokens: number; seeds: number[]; temperature: number; topK?: number; topP?: number },
  ): Promise<Array<Array<{ text: string; tokens: number; logprob: number }>>>;
}

/** Scores (prompt, response) items with the student; one reward per item, higher is chosen. */
export type StudentScoreFn = (items: Array<{ prompt: string; response: string }>) => Promise<number[]>;

export interface EvalSamplingOptions {
  /** Root seed; each prompt's seed is derived from it and the prompt id. */
  seed: number;
  /** 0 is greedy decoding. */
  temperature: number;
  maxTokens: number;
  /** Prompts per sampler call. */
  batchSize?: number;
}

/** Returns the sampling seed of one evaluation prompt. */
export function evalSeed(seed: number, promptId: string): number {
  return deriveSeed('tsalign.eval', seed, promptId);
}

/**
 * Draws one response per prompt, in the prompts' order. Each prompt's seed depends only on the
 * root seed and its id, so two policies answer with comparable randomness.
 */
export async function respond(policy: ResponseSampler, prompts: readonly Prompt[], options: EvalSamplingOptions, signal?: AbortSignal): Promise<string[]> {
  const batchSize = options.batchSize ?? 32;
  const responses: string[] = [];
  for (let start = 0; start < prompts.length; start += batchSize) {
    // Sampling runs synchronously inside its promise: yield so a shutdown handler can abort.
    await yieldToEventLoop();
    signal?.throwIfAborted();
    const batch = prompts.slice(start, start + batchSize);
    const sampled = await policy.sample(
      batch.map((prompt) => prompt.text),
      { k: 1, maxTokens: options.maxTokens, temperature: options.temperature, seeds: batch.map((prompt) => evalSeed(options.seed, prompt.id)) },
    );
    for (const row of sampled) responses.push(row[0]!.text);
  }
  return responses;
}

export interface WinRate {
  n: number;
  wins: number;
  losses: number;
  ties: number;
  /** (wins + ties / 2) / n. */
  winRate: number;
  /** 95% Wilson interval of `winRate`. */
  low: number;
  high: number;
  /** Mean teacher score of the evaluated policy's responses. */
  meanScore: number;
  /** Mean teacher score of the base policy's responses. */
  baseMeanScore: number;
}

function candidate(promptId: string, text: string): Candidate {
  return { id: contentHash([promptId, text]), text, tokens: 0, logprob: 0 };
}

/**
 * Judges the policy's response against the base policy's on each prompt with the teacher: a win
 * when the teacher scores the policy's strictly higher, a tie when equal (identical texts are
 * ties without a call). Ties count half. The interval is Wilson's at 95% on the half-counted
 * proportion, which slightly overstates its width when there are many ties.
 */
export async function winRate(
  teacher: Teacher,
  prompts: readonly Prompt[],
  policyResponses: readonly string[],
  baseResponses: readonly string[],
  signal: AbortSignal = new AbortController().signal,
): Promise<WinRate> {
  let wins = 0;
  let losses = 0;
  let ties = 0;
  let scoreSum = 0;
  let baseScoreSum = 0;
  for (let i = 0; i < prompts.length; i++) {
    await yieldToEventLoop();
    signal.throwIfAborted();
    const prompt = prompts[i]!;
    const [scoreA, scoreB] = await teacher.rank(prompt, [candidate(prompt.id, policyResponses[i]!), candidate(prompt.id, baseResponses[i]!)], signal);
    scoreSum += scoreA!;
    baseScoreSum += scoreB!;
    if (policyResponses[i] === baseResponses[i] || scoreA === scoreB) ties++;
    else if (scoreA! > scoreB!) wins++;
    else losses++;
  }
  const n = prompts.length;
  const rate = n === 0 ? 0.5 : (wins + ties / 2) / n;
  return {
    n,
    wins,
    losses,
    ties,
    winRate: rate,
    ...wilsonInterval(rate, n),
    meanScore: n === 0 ? 0 : scoreSum / n,
    baseMeanScore: n === 0 ? 0 : baseScoreSum / n,
  };
}

/**
 * Returns the mean teacher score of one response per prompt, each graded alone (the verifier
 * teacher's score is absolute, so this is the same figure `winRate` reports as `meanScore`).
 */
export async function meanScore(
  teacher: Teacher,
  prompts: readonly Prompt[],
  responses: readonly string[],
  signal: AbortSignal = new AbortController().signal,
): Promise<number> {
  if (prompts.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < prompts.length; i++) {
    await yieldToEventLoop();
    signal.throwIfAborted();
    const prompt = prompts[i]!;
    const [score] = await teacher.rank(prompt, [candidate(prompt.id, responses[i]!)], signal);
    sum += score!;
  }
  return sum / prompts.length;
}

/**
 * Builds the held-out comparisons for student agreement: `k` responses per prompt sampled from
 * the policy (seeded), ranked by the teacher, and every ordered pair with different scores.
 */
export async function heldOutComparisons(
  policy: ResponseSampler,
  teacher: Teacher,
  prompts: readonly Prompt[],
  options: EvalSamplingOptions & { k: number },
  signal: AbortSignal = new AbortController().signal,
): Promise<TeacherComparison[]> {
  const batchSize = options.batchSize ?? 16;
  const comparisons: TeacherComparison[] = [];
  for (let start = 0; start < prompts.length; start += batchSize) {
    await yieldToEventLoop();
    signal.throwIfAborted();
    const batch = prompts.slice(start, start + batchSize);
    const sampled = await policy.sample(
      batch.map((prompt) => prompt.text),
      {
        k: options.k,
        maxTokens: options.maxTokens,
        temperature: options.temperature,
        seeds: batch.map((prompt) => deriveSeed('tsalign.eval.agreement', options.seed, prompt.id)),
      },
    );
    for (let i = 0; i < batch.length; i++) {
      const prompt = batch[i]!;
      const texts = [...new Set(sampled[i]!.map((response) => response.text))];
      if (texts.length < 2) continue;
      const scores = await teacher.rank(prompt, texts.map((text) => candidate(prompt.id, text)), signal);
      comparisons.push(...comparisonsFromRanking(prompt.text, texts.map((text, j) => ({ text, score: scores[j]! }))));
    }
  }
  return comparisons;
}

/**
 * Share of held-out comparisons the student orders like the teacher, with every prompt counting
 * equally: the share is taken within each prompt (comparisons grouped by prompt text, ties
 * counting half), then averaged over the prompts. A prompt whose K responses the teacher scored
 * in many ways brings up to K(K-1)/2 comparisons; counted one by one, a few such prompts would
 * decide the figure. Returns 0 without comparisons.
 */
export async function studentAgreement(score: StudentScoreFn, comparisons: readonly TeacherComparison[]): Promise<number> {
  if (comparisons.length === 0) return 0;
  const items = comparisons.flatMap((comparison) => [
    { prompt: comparison.prompt, response: comparison.chosen },
    { prompt: comparison.prompt, response: comparison.rejected },
  ]);
  const scores = await score(items);
  // Per prompt text: [agreed, comparisons].
  const byPrompt = new Map<string, [number, number]>();
  for (let i = 0; i < comparisons.length; i++) {
    const chosen = scores[2 * i]!;
    const rejected = scores[2 * i + 1]!;
    // A tie in the student's scores counts half.
    let agreed = 0;
    if (chosen > rejected) agreed = 1;
    else if (chosen === rejected) agreed = 0.5;
    const tally = byPrompt.get(comparisons[i]!.prompt) ?? [0, 0];
    tally[0] += agreed;
    tally[1] += 1;
    byPrompt.set(comparisons[i]!.prompt, tally);
  }
  let sum = 0;
  for (const [agreed, count] of byPrompt.values()) sum += agreed / count;
  return sum / byPrompt.size;
}

/** Share of audited decisions the teacher agreed with; null when there were none. */
export function auditedPrecision(audits: readonly boolean[]): number | null {
  if (audits.length === 0) return null;
  return audits.filter(Boolean).length / audits.length;
}
