/**
 * Long-running workers over the topics, for deployments that feed prompts continuously:
 *
 * - chain: consumes the prompts topic (consumer group `<prefix>chain`) and runs the chain with
 *   the latest announced models, which it hot-swaps as ModelUpdates arrive. It writes
 *   candidates, judgments, pairs and dead letters, and commits a prompt once all are durable.
 * - trainer: consumes pairs, and judgments joined with their candidate sets and prompts, trains,
 *   publishes ModelUpdates and closes a round after `trainer.roundSize` pairs with a manifest.
 *
 * Both start from the latest ModelUpdates, or from the base models when there are none.
 */
import { join } from 'node:path';
import { Subscription, concatMap, from, fromEvent, lastValueFrom, map, merge, takeWhile } from 'rxjs';
import type { LoadedConfig } from '../config/load';
import { loadPolicy, loadRewardModel } from '../models/checkpoint';
import type { Policy } from '../models/policy';
import type { RewardModel } from '../models/reward-model';
import { alignChain } from '../operators/chain';
import { ModelRegistry } from '../operators/registry';
import type { SamplerHandle, ScorerHandle } from '../operators/types';
import { readTopic } from '../replay/read-topic';
import type { CandidateSet, Judgment, ModelUpdate, OffsetRange, Prompt } from '../streams/records';
import { RecordWriter } from '../streams/sink';
import { type Delivered, topicSource } from '../streams/source';
import { ensureTopics, topicName } from '../streams/topics';
import type { Transport } from '../streams/transport';
import { createTeacher } from '../teachers';
import { comparisonsFromRanking } from '../training/replay-buffer';
import { Trainer, type ModelRef } from '../training/trainer';
import { childLogger } from '../util/logger';
import { prepareBase } from './base';
import { CHAIN_BATCH_SIZE, chainWriters } from './chain-round';
import { chainSeed, policyHandle, studentHandle } from './handles';
import { DirectoryModelStore, readTrainerState } from './model-store';

export const WORKER_ROLES = ['chain', 'trainer', 'all'] as const;
export type WorkerRole = (typeof WORKER_ROLES)[number];

export interface WorkerOptions {
  transport: Transport;
  dataDir: string;
  topicPrefix: string;
  config: LoadedConfig;
  role: WorkerRole;
  /** Stops the worker gracefully when it aborts. */
  signal: AbortSignal;
}

/** Milliseconds a chain batch waits to fill when prompts arrive slowly. */
const LIVE_BATCH_WINDOW_MS = 200;
/** Entries kept in the trainer's join tables (prompts and candidate sets). */
const JOIN_CAPACITY = 100_000;

/** Returns the latest announced policy and student, announcing the base models when there are none. */
async function latestModels(options: WorkerOptions, writer: RecordWriter<'ModelUpdate'>): Promise<{ policy: ModelUpdate; student: ModelUpdate }> {
  const updates = (await readTopic(options.transport, topicName('model-updates', options.topicPrefix), 'ModelUpdate')).map((entry) => entry.record);
  const policy = updates.filter((update) => update.model === 'POLICY').at(-1);
  const student = updates.filter((update) => update.model === 'STUDENT').at(-1);
  if (policy && student) return { policy, student };

  const config = options.config.config;
  const base = await prepareBase({ config, runDir: join(options.dataDir, 'run'), teacher: createTeacher(config.teacher.kind, config.teacher), signal: options.signal });
  const announce = (model: 'POLICY' | 'STUDENT', ref: ModelRef): ModelUpdate => ({ model, version: ref.version, parentVersion: null, round: 0, uri: ref.uri, sha256: ref.sha256, step: 0n, metrics: {} });
  const announced = { policy: announce('POLICY', base.policy), student: announce('STUDENT', base.student) };
  await writer.write(announced.policy);
  await writer.write(announced.student);
  return announced;
}

/** Returns the round the chain labels new prompts with: one past the last closed round. */
async function currentRound(options: WorkerOptions): Promise<number> {
  const manifests = await readTopic(options.transport, topicName('rounds', options.topicPrefix), 'RoundManifest');
  return Math.max(0, ...manifests.map((entry) => entry.record.round)) + 1;
}

/** Runs the workers of the role until the signal aborts. */
export async function runWorker(options: WorkerOptions): Promise<void> {
  await ensureTopics(options.transport, options.topicPrefix);
  const updatesWriter = new RecordWriter(options.transport, { topic: topicName('model-updates', options.topicPrefix), recordType: 'ModelUpdate', key: (record) => record.version });
  const latest = await latestModels(options, updatesWriter);
  const tasks: Array<Promise<void>> = [];
  if (options.role === 'chain' || options.role === 'all') tasks.push(runChainWorker(options, latest));
  if (options.role === 'trainer' || options.role === 'all') tasks.push(runTrainerWorker(options, latest, updatesWriter));
  await Promise.all(tasks);
  await updatesWriter.flush();
}

async function runChainWorker(options: WorkerOptions, latest: { policy: ModelUpdate; student: ModelUpdate }): Promise<void> {
  const { transport, topicPrefix, signal } = options;
  const config = options.config.config;
  const log = childLogger('chain-worker');
  const loaded: Array<Policy | RewardModel> = [];
  const load = async (update: ModelUpdate): Promise<SamplerHandle | ScorerHandle> => {
    if (update.model === 'POLICY') {
      const policy = await loadPolicy(update.uri, { expectedSha256: update.sha256 });
      loaded.push(policy);
      return policyHandle(policy, update.version, config.chain);
    }
    const student = await loadRewardModel(update.uri, { expectedSha256: update.sha256 });
    loaded.push(student);
    return studentHandle(student, update.version);
  };
  const registry = new ModelRegistry({ policy: (await load(latest.policy)) as SamplerHandle, student: (await load(latest.student)) as ScorerHandle });
  let round = await currentRound(options);

  // Model updates and round closes after the ones read at start.
  const updates = topicSource(transport, { topic: topicName('model-updates', topicPrefix), recordType: 'ModelUpdate', from: { kind: 'latest' }, maxInFlight: 16 });
  const rounds = topicSource(transport, { topic: topicName('rounds', topicPrefix), recordType: 'RoundManifest', from: { kind: 'latest' }, maxInFlight: 16 });
  const control = new Subscription();
  control.add(updates.pipe(concatMap(async ({ record, ack }) => {
    await registry.swap(record, load);
    ack();
  })).subscribe({ error: (error: unknown) => log.error({ err: error }, 'model-updates subscription failed') }));
  control.add(rounds.subscribe({
    next: ({ record, ack }) => {
      round = Math.max(round, record.round + 1);
      ack();
    },
    error: (error: unknown) => log.error({ err: error }, 'rounds subscription failed'),
  }));

  const chain = alignChain({
    models: registry,
    teacher: createTeacher(config.teacher.kind, config.teacher),
    k: config.chain.candidates,
    seedFor: (promptId, promptRound) => chainSeed(config.run.seed, promptId, promptRound),
    batchSize: CHAIN_BATCH_SIZE,
    batchWindowMs: LIVE_BATCH_WINDOW_MS,
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
      cache: new Map(),
    },
    minMargin: config.chain.minMargin,
    maxInFlight: 2 * CHAIN_BATCH_SIZE,
  });
  const writers = chainWriters(transport, topicPrefix);
  const prompts = topicSource(transport, {
    topic: topicName('prompts', topicPrefix),
    recordType: 'Prompt',
    groupId: `${topicPrefix}chain`,
    from: { kind: 'committed', fallback: 'earliest' },
    maxInFlight: 4 * CHAIN_BATCH_SIZE,
    dlq: topicName('dlq', topicPrefix),
  });
  const stop = (): void => void prompts.stop();
  signal.addEventListener('abort', stop, { once: true });
  try {
    await lastValueFrom(
      prompts.pipe(
        concatMap(async (delivered: Delivered<Prompt>) => ({ prompt: delivered.record, round, source: delivered.message, ack: () => delivered.ack() })),
        chain.operator,
        concatMap(async (outcome) => {
          const { records } = outcome;
          await Promise.all([
            ...records.candidates.map((record) => writers.candidates.write(record)),
            ...records.judgments.map((record) => writers.judgments.write(record)),
            ...records.pairs.map((record) => writers.pairs.write(record)),
            ...records.dlq.map((record) => writers.dlq.write(record)),
          ]);
          await outcome.item.ack?.();
        }),
      ),
      { defaultValue: undefined },
    );
  } finally {
    signal.removeEventListener('abort', stop);
    control.unsubscribe();
    await Promise.all([prompts.closed(), updates.closed(), rounds.closed()]);
    registry.close();
    for (const model of loaded) model.dispose();
  }
}

async function runTrainerWorker(options: WorkerOptions, latest: { policy: ModelUpdate; student: ModelUpdate }, updatesWriter: RecordWriter<'ModelUpdate'>): Promise<void> {
  const { transport, topicPrefix, signal } = options;
  const { config, json, hash } = options.config;
  const log = childLogger('trainer-worker');
  const stateDir = join(options.dataDir, 'worker', 'trainer');
  const store = new DirectoryModelStore(join(options.dataDir, 'worker', 'checkpoints'), stateDir);
  const trainerOptions = { config, configJson: json, configHash: hash, store, publish: async (update: ModelUpdate) => void (await updatesWriter.write(update)) };
  const saved = readTrainerState(stateDir);
  const ref = (update: ModelUpdate): ModelRef => ({ version: update.version, uri: update.uri, sha256: update.sha256 });
  const trainer = saved !== null ? await Trainer.resume(trainerOptions, saved) : await Trainer.start(trainerOptions, await currentRound(options), ref(latest.policy), ref(latest.student));
  const roundsWriter = new RecordWriter(transport, { topic: topicName('rounds', topicPrefix), recordType: 'RoundManifest', key: (record) => String(record.round) });

  // Join tables: prompt texts by id and candidate texts by id, for the student's comparisons.
  const promptTexts = new Map<string, string>();
  const candidateTexts = new Map<string, string>();
  const waiting: Array<Delivered<Judgment>> = [];
  // Delivered records not yet covered by a saved trainer state, acknowledged after the next save.
  let unsaved: Array<{ ack(): void }> = [];
  // Prompt offsets seen in the open round, per partition, for its manifest.
  let promptRanges = new Map<number, { from: number; to: number }>();

  const remember = (table: Map<string, string>, key: string, text: string): void => {
    table.set(key, text);
    if (table.size > JOIN_CAPACITY) table.delete(table.keys().next().value as string);
  };
  const joinJudgments = async (): Promise<void> => {
    for (let i = 0; i < waiting.length; ) {
      const delivered = waiting[i]!;
      const judgment = delivered.record;
      if (judgment.round !== trainer.round) {
        // A verdict of another round: its comparisons belong to a round already trained.
        waiting.splice(i, 1);
        unsaved.push(delivered);
        continue;
      }
      const prompt = promptTexts.get(judgment.promptId);
      const texts = judgment.candidateIds.map((id) => candidateTexts.get(id));
      if (judgment.error !== null || (prompt !== undefined && texts.every((text) => text !== undefined))) {
        waiting.splice(i, 1);
        if (judgment.error === null) {
          await trainer.addComparisons(comparisonsFromRanking(prompt!, texts.map((text, j) => ({ text: text!, score: judgment.scores[j]! }))));
        }
        unsaved.push(delivered);
      } else {
        i++;
      }
    }
  };
  const saveAndAck = async (): Promise<void> => {
    await trainer.persistReceived();
    for (const delivered of unsaved) delivered.ack();
    unsaved = [];
  };

  const group = `${topicPrefix}trainer`;
  const source = <K extends 'Prompt' | 'CandidateSet' | 'Judgment' | 'PreferencePair'>(name: 'prompts' | 'candidates' | 'judgments' | 'pairs', recordType: K) =>
    topicSource(transport, { topic: topicName(name, topicPrefix), recordType, groupId: group, from: { kind: 'committed', fallback: 'earliest' }, maxInFlight: 4096, dlq: topicName('dlq', topicPrefix) });
  const prompts = source('prompts', 'Prompt');
  const candidates = source('candidates', 'CandidateSet');
  const judgments = source('judgments', 'Judgment');
  const pairs = source('pairs', 'PreferencePair');
  // A stop is an event in the stream, so it is handled after the records before it: the state
  // is saved, everything it covers is acknowledged, and the sources are then unsubscribed.
  // Judgments still waiting for their prompt or candidates stay unacknowledged and come back.
  const stopEvent = signal.aborted ? from([{ kind: 'stop' as const }]) : fromEvent(signal, 'abort').pipe(map(() => ({ kind: 'stop' as const })));

  try {
    await lastValueFrom(
      merge(
        prompts.pipe(concatMap(async (delivered) => ({ kind: 'prompt' as const, delivered }))),
        candidates.pipe(concatMap(async (delivered) => ({ kind: 'candidates' as const, delivered }))),
        judgments.pipe(concatMap(async (delivered) => ({ kind: 'judgment' as const, delivered }))),
        pairs.pipe(concatMap(async (delivered) => ({ kind: 'pair' as const, delivered }))),
        stopEvent,
      ).pipe(
        concatMap((event) =>
          from(
            (async () => {
              if (event.kind === 'stop') {
                await saveAndAck();
                return event.kind;
              }
              switch (event.kind) {
                case 'prompt': {
                  const { record, message } = event.delivered;
                  remember(promptTexts, record.id, record.text);
                  const range = promptRanges.get(message.partition) ?? { from: message.offset, to: message.offset + 1 };
                  range.from = Math.min(range.from, message.offset);
                  range.to = Math.max(range.to, message.offset + 1);
                  promptRanges.set(message.partition, range);
                  event.delivered.ack();
                  break;
                }
                case 'candidates': {
                  const set: CandidateSet = event.delivered.record;
                  for (const candidate of set.candidates) remember(candidateTexts, candidate.id, candidate.text);
                  event.delivered.ack();
                  break;
                }
                case 'judgment':
                  waiting.push(event.delivered);
                  break;
                case 'pair':
                  await trainer.addPairs([event.delivered.record]);
                  unsaved.push(event.delivered);
                  break;
              }
              await joinJudgments();
              if (trainer.roundPairCount >= config.trainer.roundSize) {
                const promptOffsets: OffsetRange[] = [...promptRanges].map(([partition, range]) => ({
                  topic: topicName('prompts', topicPrefix),
                  partition,
                  from: BigInt(range.from),
                  to: BigInt(range.to),
                }));
                // NOTE: the ranges are the prompts this worker read during the round, which
                // approximates, but need not equal, the prompts whose pairs the round trained on.
                const manifest = await trainer.closeRound({ promptOffsets });
                await roundsWriter.write(manifest);
                promptRanges = new Map();
                for (const delivered of unsaved) delivered.ack();
                unsaved = [];
                log.info({ round: manifest.round, policyOut: manifest.policyOut }, 'round closed');
              } else if (unsaved.length >= config.trainer.batchSize) {
                await saveAndAck();
              }
              return event.kind;
            })(),
          ),
        ),
        takeWhile((kind) => kind !== 'stop'),
      ),
      { defaultValue: undefined },
    );
  } finally {
    await Promise.all([prompts.closed(), candidates.closed(), judgments.closed(), pairs.closed()]);
    await roundsWriter.flush();
    trainer.dispose();
  }
}

