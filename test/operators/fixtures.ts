/** Shared builders for the operator specs: prompts, items at each stage, stand-in models. */
import assert from 'node:assert/strict';
import { type Observable, map, timer } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import type { Candidate, Decision, Prompt } from '../../src/streams/records';
import { contentHash } from '../../src/util/hash';
import { candidateSeed } from '../../src/operators/sample';
import { gateConfidence } from '../../src/operators/gate';
import type {
  ChainItem,
  GatedItem,
  SampledItem,
  SampledText,
  SamplerHandle,
  ScoredItem,
  ScorerHandle,
} from '../../src/operators/types';

export function newTestScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => assert.deepStrictEqual(actual, expected));
}

export function makePrompt(id: string, text = `question ${id}`): Prompt {
  return { id, text, source: 'test', tags: [], meta: {}, createdAt: 0n };
}

export function chainItem(id: string, round = 1): ChainItem {
  return { prompt: makePrompt(id), round };
}

/** Returns the K responses the stand-in policy draws for a prompt: `${prompt.text} #${i}`. */
export function standInTexts(prompt: Prompt, k: number): SampledText[] {
  return Array.from({ length: k }, (_unused, index) => ({ text: `${prompt.text} #${index}`, tokens: 3, logprob: -index }));
}

export function candidatesOf(promptId: string, texts: readonly string[]): Candidate[] {
  return texts.map((text, index) => ({ id: contentHash([promptId, text]), text, tokens: 3, logprob: -index }));
}

/** Returns a sampler that responds after `delayMs` of scheduler time and records each call. */
export function standInPolicy(
  version: string,
  delayMs = 0,
  calls: { version: string; promptIds: string[]; seeds: bigint[]; signal: AbortSignal }[] = [],
): SamplerHandle {
  return {
    version,
    sample: (prompts, seeds, k, signal): Observable<SampledText[][]> => {
      calls.push({ version, promptIds: prompts.map((prompt) => prompt.id), seeds: [...seeds], signal });
      return timer(delayMs).pipe(map(() => prompts.map((prompt) => standInTexts(prompt, k))));
    },
  };
}

/** Returns a student that scores candidate i with `scoresFor(promptId)[i]` after `delayMs`. */
export function standInStudent(
  version: string,
  scoresFor: (promptId: string, count: number) => number[],
  delayMs = 0,
  calls: { promptIds: string[]; signal: AbortSignal }[] = [],
): ScorerHandle {
  return {
    version,
    score: (batch, signal): Observable<number[][]> => {
      calls.push({ promptIds: batch.map((entry) => entry.prompt.id), signal });
      return timer(delayMs).pipe(map(() => batch.map((entry) => scoresFor(entry.prompt.id, entry.candidates.length))));
    },
  };
}

export function sampledItem(id: string, texts: readonly string[], round = 1): SampledItem {
  return {
    ...chainItem(id, round),
    policyVersion: 'p1',
    seed: candidateSeed(id, round),
    candidates: candidatesOf(id, texts),
  };
}

export function scoredItem(id: string, scores: readonly number[], round = 1): ScoredItem {
  const texts = scores.map((_score, index) => `answer ${index} to ${id}`);
  return { ...sampledItem(id, texts, round), studentVersion: 's1', studentScores: [...scores] };
}

export function gatedItem(id: string, scores: readonly number[], decision: Decision, round = 1): GatedItem {
  const item = scoredItem(id, scores, round);
  return {
    ...item,
    candidateSet: {
      promptId: id,
      round,
      policyVersion: item.policyVersion,
      studentVersion: item.studentVersion,
      seed: item.seed,
      candidates: item.candidates,
      studentScores: item.studentScores,
      confidence: gateConfidence(item.studentScores, 1),
      decision,
      overBudget: false,
    },
  };
}
