/**
 * Long-running workers over the topics, for deployments that feed prompts continuously:
 *
 * - chain: consumes the prompts topic (consumer group `<prefix>chain`) and runs the chain with
 *   the latest announced models, which it hot-swaps as ModelUpdates arrive. It writes
 *   candidates, judgments, pairs and dead letters, and commits a prompt once all are durable.
 * - trainer: consumes pairs, and judgments joined with their candidate sets and prompts, trains,
 *   publishes ModelUpdates and closes a round after `trainer.roundSize` pairs with a manifest.
 *
 * Both start from the latest ModelUpdates, or from the base models when there are none. Given
 * checkpoints (`policy`, `student`) take precedence: each is verified against its sha256 and
 * announced on model-updates, unless it is already the latest announced version.
 */
import { join, resolve } from 'node:path';
import { Subscription, concatMap, from, fromEvent, lastValueFrom, map, merge, takeWhile } from 'rxjs';
import type { LoadedConfig } from '../config/load';
import { CheckpointError, type CheckpointKind, loadPolicy, loadRewardModel, readCheckpointInfo } from '../models/checkpoint';
import type { Policy } from '../models/policy';
import type { RewardModel } from '../models/reward-model';
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
import { UsageError } from '../util/errors';
import { childLogger } from '../util/logger';
import { prepareBase } from './base';
import { CHAIN_BATCH_SIZE, chainWriters, createChain, writeOutcomeRecords } from './chain-round';
import { policyHandle, studentHandle } from './handles';
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
  /** Policy checkpoint directory to start from instead of the latest announced policy. */
  policy?: string;
  /** Student reward-model checkpoint directory to start from instead of the latest announced student. */
  student?: string;
  /** The chain stops the worker (both roles of `all`) once it has processed this many prompts. */
  maxPrompts?: number;
}

/** Milliseconds a chain batch waits to fill when prompts arrive slowly. */
const LIVE_BATCH_WINDOW_MS = 200;
/** Entries kept in the trainer's join tables (prompts and candidate sets). */
const JOIN_CAPACITY = 100_000;

/** Returns the latest announced policy and student, announcing the base models when there are none. */
async function latestModels(options: WorkerOptions, writer: RecordWriter<'ModelUpdate'>): Promise<{ policy: ModelUpdate; student: ModelUpdate }> {
  const updates = (await readTopic(options.transport, topicName('model-updates', options.topicPrefix), 'ModelUpdate')).map((entry) => entry.record);
  let policy = updates.filter((update) => update.model === 'POLICY').at(-1);
  let student = updates.filter((update) => update.model === 'STUDENT').at(-1);
  if (options.policy !== undefined) policy = await announceCheckpoint('POLICY', options.policy, policy, writer);
  if (options.student !== undefined) student = await announceCheckpoint('STUDENT', options.student, student, writer);
  if (policy && student) return { policy, student };

  const config = options.config.config;
  const base = await prepareBase({ config, runDir: join(options.dataDir, 'run'), teacher: createTeacher(config.teacher.kind, config.teacher), signal: options.signal });
  const announce = (model: 'POLICY' | 'STUDENT', ref: ModelRef): ModelUpdate => ({ model, version: ref.version, parentVersion: null, round: 0, uri: ref.uri, sha256: ref.sha256, step: 0n, metrics: {} });
  const announced = { policy: policy ?? announce('POLICY', base.policy), student: student ?? announce('STUDENT', base.student) };
  if (policy === undefined) await writer.write(announced.policy);
  if (student === undefined) await writer.write(announced.student);
  return announced;
}

/**
 * Verifies a given checkpoint (every file against its recorded sha256) and returns the
 * ModelUpdate that announces it, written to model-updates unless `latest` already names the
 * same sha256. Its version is `policy-` or `student-` and the first 16 hex digits of the sha256.
 */
async function announceCheckpoint(model: 'POLICY' | 'STUDENT', dir: string, latest: ModelUpdate | undefined, writer: RecordWriter<'ModelUpdate'>): Promise<ModelUpdate> {
  const flag = model === 'POLICY' ? '--policy' : '--student';
  const kind: CheckpointKind = model === 'POLICY' ? 'policy' : 'reward-model';
  try {
    const info = await readCheckpointInfo(dir);
    if (info.kind !== kind) throw new CheckpointError(`it contains a ${info.kind}, not a ${kind}`);
    const loaded = model === 'POLICY' ? await loadPolicy(dir, { expectedSha256: info.sha256 }) : await loadRewardModel(dir, { expectedSha256: info.sha256 });
    loaded.dispose();
    if (latest !== undefined && latest.sha256 === info.sha256) return latest;
    const update: ModelUpdate = {
      model,
      version: `${model === 'POLICY' ? 'policy' : 'student'}-${info.sha256.slice(0, 16)}`,
      parentVersion: latest?.version ?? null,
      round: 0,
      uri: resolve(dir),
      sha256: info.sha256,
      step: 0n,
      metrics: {},
    };
    await writer.write(update);
    childLogger('worker').info({ model, version: update.version, uri: update.uri, sha256: update.sha256 }, 'checkpoint announced');
    return update;
  } catch (error) {
    if (error instanceof CheckpointError) {
      const source = model === 'POLICY' ? 'tsalign policy sft' : 'tsalign rm fit';
      throw new UsageError(`invalid ${flag} ${dir}: ${error.message}; pass a ${kind} checkpoint directory, e.g. from ${source} --out`, { cause: error });
    }
    throw error;
  }
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
  if (options.maxPrompts !== undefined && options.role === 'trainer') {
    throw new UsageError('--max-prompts counts the prompts the chain processes, so it needs --role chain or all');
  }
  const latest = await latestModels(options, updatesWriter);
  // Aborted by the caller's signal, or by the chain once it has processed maxPrompts prompts.
  const stopping = new AbortController();
  const stop = (): void => stopping.abort();
  if (options.signal.aborted) stop();
  options.signal.addEventListener('abort', stop, { once: true });
  const inner = { ...options, signal: stopping.signal };
  const tasks: Array<Promise<void>> = [];
  try {
    if (options.role === 'chain' || options.role === 'all') tasks.push(runChainWorker(inner, latest, stop));
    if (options.role === 'trainer' || options.role === 'all') tasks.push(runTrainerWorker(inner, latest, updatesWriter));
    await Promise.all(tasks);
  } finally {
    options.signal.removeEventListener('abort', stop);
  }
  await updatesWriter.flush();
}

async function runChainWorker(options: WorkerOptions, latest: { policy: ModelUpdate; student: ModelUpdate }, stopWorker: () => void): Promise<void> {
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

  const chain = createChain(config, {
    models: registry,
    teacher: createTeacher(config.teacher.kind, config.teacher),
    batchWindowMs: LIVE_BATCH_WINDOW_MS,
    maxInFlight: 2 * CHAIN_BATCH_SIZE,
    cache: new Map(),
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
  let processed = 0;
  try {
    await lastValueFrom(
      prompts.pipe(
        concatMap(async (delivered: Delivered<Prompt>) => ({ prompt: delivered.record, round, source: delivered.message, ack: () => delivered.ack() })),
        chain.operator,
        concatMap(async (outcome) => {
          await writeOutcomeRecords(writers, outcome.records);
          await outcome.item.ack?.();
          processed++;
          if (options.maxPrompts !== undefined && processed === options.maxPrompts) {
            log.info({ processed }, 'max prompts processed, stopping');
            stopWorker();
          }
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

