/**
 * One round of the chain over a recorded range of the prompts topic: read the round's prompts in
 * offset order, run them through `alignChain`, write what each produced to its topic. `tsalign
 * run` and `tsalign replay` both use it, so a replay processes the prompts exactly as the run did.
 */
import { EMPTY, concatMap, fromEvent, lastValueFrom, map, take, takeUntil, toArray } from 'rxjs';
import type { TsalignConfig } from '../config/schema';
import { type AlignChain, type AlignChainOptions, type ChainStats, type OutcomeRecords, type PromptOutcome, alignChain } from '../operators/chain';
import type { JudgmentCache } from '../operators/teacher';
import type { RankingTeacher, SamplerHandle, ScorerHandle } from '../operators/types';
import { topicSource } from '../streams/source';
import { RecordWriter } from '../streams/sink';
import { topicName } from '../streams/topics';
import type { OffsetRange, Prompt } from '../streams/records';
import type { Transport } from '../streams/transport';
import { chainSeed } from './handles';

/** Prompts per sampler and scorer call. */
export const CHAIN_BATCH_SIZE = 32;
/**
 * Wait for a batch to fill. Batches must not depend on timing, so that a replay batches prompts
 * as the run did: the window is long, and batches close by count or when the round's prompts end.
 */
const BATCH_WINDOW_MS = 600_000;

/** Writers of the chain's output topics. */
export interface ChainWriters {
  candidates: RecordWriter<'CandidateSet'>;
  judgments: RecordWriter<'Judgment'>;
  pairs: RecordWriter<'PreferencePair'>;
  dlq: RecordWriter<'DeadLetter'>;
}

export function chainWriters(transport: Transport, prefix: string): ChainWriters {
  return {
    candidates: new RecordWriter(transport, { topic: topicName('candidates', prefix), recordType: 'CandidateSet', key: (record) => record.promptId }),
    judgments: new RecordWriter(transport, { topic: topicName('judgments', prefix), recordType: 'Judgment', key: (record) => record.id }),
    pairs: new RecordWriter(transport, { topic: topicName('pairs', prefix), recordType: 'PreferencePair', key: (record) => record.id }),
    dlq: new RecordWriter(transport, { topic: topicName('dlq', prefix), recordType: 'DeadLetter', key: (record) => record.key }),
  };
}

/** Parts of the chain's options that differ between a recorded round and the live chain worker. */
export interface ChainParts {
  models: AlignChainOptions['models'];
  teacher: RankingTeacher;
  /** Maximum wait in milliseconds for a sampler or scorer batch to fill. */
  batchWindowMs: number;
  /** Maximum prompts inside the chain at once. */
  maxInFlight: number;
  cache?: JudgmentCache;
}

/**
 * Creates the chain with the settings of `config.chain`, seeds from `config.run.seed` and batches
 * of CHAIN_BATCH_SIZE prompts. `runChainRound` and the chain worker both build their chain here.
 */
export function createChain(config: TsalignConfig, parts: ChainParts): AlignChain {
  return alignChain({
    models: parts.models,
    teacher: parts.teacher,
    k: config.chain.candidates,
    seedFor: (promptId, promptRound) => chainSeed(config.run.seed, promptId, promptRound),
    batchSize: CHAIN_BATCH_SIZE,
    batchWindowMs: parts.batchWindowMs,
    gate: {
      tau: config.chain.tau,
      temperature: config.chain.calibrationT,
      auditFraction: config.chain.auditFraction,
      budget: {
        ...(config.chain.teacherCallsPerMinute > 0 ? { perMinute: config.chain.teacherCallsPerMinute } : {}),
        ...(config.chain.teacherCallsPerRound > 0 ? { perRound: config.chain.teacherCallsPerRound } : {}),
      },
    },
    judge: {
      shortlistSize: config.chain.shortlist,
      concurrency: config.chain.concurrency,
      timeoutMs: config.chain.teacherTimeoutMs,
      retry: { maxRetries: config.chain.teacherRetries, baseDelayMs: 200, maxDelayMs: 10_000, maxRetryAfterMs: 60_000 },
      ...(parts.cache === undefined ? {} : { cache: parts.cache }),
    },
    minMargin: config.chain.minMargin,
    maxInFlight: parts.maxInFlight,
  });
}

/** Writes one prompt's records to their topics and waits for every write to finish. */
export async function writeOutcomeRecords(writers: ChainWriters, records: OutcomeRecords): Promise<void> {
  await Promise.all([
    ...records.candidates.map((record) => writers.candidates.write(record)),
    ...records.judgments.map((record) => writers.judgments.write(record)),
    ...records.pairs.map((record) => writers.pairs.write(record)),
    ...records.dlq.map((record) => writers.dlq.write(record)),
  ]);
}

export interface ChainRoundOptions {
  transport: Transport;
  config: TsalignConfig;
  round: number;
  /** The round's prompts: one range of one partition of the prompts topic. */
  range: OffsetRange;
  models: { policy: () => SamplerHandle; student: () => ScorerHandle };
  teacher: RankingTeacher;
  cache?: JudgmentCache;
  /** Writers of the outcomes; replay passes none and writes nothing. */
  writers?: ChainWriters;
  /** Stops reading prompts when it aborts; `runChainRound` then rejects with an AbortError. */
  signal?: AbortSignal;
  /** Called with each outcome after its records are written, in completion order. */
  onOutcome?: (outcome: PromptOutcome) => void | Promise<void>;
}

export interface ChainRoundResult {
  /** One outcome per prompt, in offset order. */
  outcomes: PromptOutcome[];
  stats: ChainStats;
}

/** Runs the chain over the round's prompts and returns their outcomes in offset order. */
export async function runChainRound(options: ChainRoundOptions): Promise<ChainRoundResult> {
  const { config, range, round } = options;
  const count = Number(range.to - range.from);
  const chain = createChain(config, {
    models: options.models,
    teacher: options.teacher,
    batchWindowMs: BATCH_WINDOW_MS,
    maxInFlight: Math.max(2 * CHAIN_BATCH_SIZE, 64),
    ...(options.cache === undefined ? {} : { cache: options.cache }),
  });
  if (count === 0) return { outcomes: [], stats: chain.stats };

  // Reads only the round's partition from its first offset; the other partitions start at
  // their end, so nothing else is delivered.
  const source = topicSource(options.transport, {
    topic: range.topic,
    recordType: 'Prompt',
    from: { kind: 'offsets', topic: range.topic, offsets: [{ partition: range.partition, offset: Number(range.from) }], fallback: 'latest' },
    maxInFlight: Math.max(2 * CHAIN_BATCH_SIZE, 64),
  });
  const writers = options.writers;
  const outcomes = await lastValueFrom(
    source.pipe(
      take(count),
      takeUntil(options.signal === undefined ? EMPTY : fromEvent(options.signal, 'abort')),
      map((delivered) => {
        delivered.ack();
        return { prompt: delivered.record as Prompt, round, source: delivered.message };
      }),
      chain.operator,
      concatMap(async (outcome) => {
        if (writers !== undefined) await writeOutcomeRecords(writers, outcome.records);
        await options.onOutcome?.(outcome);
        return outcome;
      }),
      toArray(),
    ),
    { defaultValue: [] as PromptOutcome[] },
  );
  await source.closed();
  if (options.signal?.aborted) throw new DOMException(`round ${round} interrupted`, 'AbortError');
  outcomes.sort((a, b) => (a.item.source?.offset ?? 0) - (b.item.source?.offset ?? 0));
  return { outcomes, stats: chain.stats };
}
