import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig, withHash } from '../../src/config';
import { selectBackend } from '../../src/models/backend';
import { replayRound } from '../../src/replay/replay';
import { readTopic } from '../../src/replay/read-topic';
import { loadPolicy } from '../../src/models/checkpoint';
import { respond } from '../../src/run/evaluate';
import { heldOutPrompts, prepareEvaluation, runJob } from '../../src/run/job';
import { readRunState } from '../../src/run/state';
import { gradeResponse } from '../../src/tasks';
import { createTransport } from '../../src/streams/create-transport';
import { topicName } from '../../src/streams/topics';
import type { Prompt } from '../../src/streams/records';
import type { Transport } from '../../src/streams/transport';
import type { Teacher } from '../../src/teachers/types';
import { UsageError } from '../../src/util/errors';
import { kafkaBrokersOrSkip, uniqueTopicName } from '../helpers/kafka';

const tiny = { layers: 1, heads: 2, embedding: 16, contextLength: 40 };

function smallConfig(rounds: number, overrides: Record<string, unknown> = {}) {
  return withHash(
    validateConfig({
      run: { rounds, promptsPerRound: 8, evalPrompts: 6, agreementPrompts: 4, warmupSteps: 4, warmupBatchSize: 8 },
      chain: { candidates: 3, maxTokens: 6 },
      trainer: { batchSize: 4, studentBatchSize: 8, epochs: 1 },
      models: { policy: tiny, student: tiny },
      ...overrides,
    }),
  );
}

async function embedded(dataDir: string): Promise<Transport> {
  const transport = createTransport({ dataDir });
  await transport.connect();
  return transport;
}

async function runAndReplay(transport: Transport, dataDir: string, topicPrefix: string) {
  const result = await runJob({ transport, dataDir, topicPrefix, config: smallConfig(2) });
  assert.equal(result.interrupted, false);
  assert.deepEqual(result.rounds.map((row) => row.round), [0, 1, 2]);
  for (const row of result.rounds.slice(1)) {
    assert.equal(row.prompts, 8);
    assert.ok(row.winRateLow <= row.winRate, `round ${row.round} win rate at or above its interval's low end`);
    assert.ok(row.winRate <= row.winRateHigh, `round ${row.round} win rate at or below its interval's high end`);
    assert.ok(row.gateRate >= 0, `round ${row.round} gate rate not negative`);
    assert.ok(row.gateRate <= 1, `round ${row.round} gate rate at most 1`);
  }
  assert.ok(existsSync(result.report.html));
  const report = JSON.parse(readFileSync(result.report.json, 'utf8')) as { rounds: unknown[] };
  assert.equal(report.rounds.length, 3);

  const manifests = await readTopic(transport, topicName('rounds', topicPrefix), 'RoundManifest');
  assert.deepEqual(manifests.map((entry) => entry.record.round), [1, 2]);
  const prompts = await readTopic(transport, topicName('prompts', topicPrefix), 'Prompt');
  assert.equal(prompts.length, 16);

  const replay = await replayRound({ transport, topicPrefix, dataDir, round: 2, retrain: true });
  assert.equal(replay.different, 0);
  assert.equal(replay.missing, 0);
  assert.equal(replay.extra, 0);
  assert.equal(replay.missingVerdicts, 0);
  assert.equal(replay.retrain?.matched, true);
  assert.equal(replay.ok, true);
  return result;
}

describe('prepareEvaluation', () => {
  test('base responses graded for round 0', async () => {
    const config = smallConfig(1).config;
    // Answers with one digit (the prompt's length mod 5), then one more x per sample index.
    const sampler = {
      async sample(prompts: string[], options: { k: number }) {
        return prompts.map((text) => Array.from({ length: options.k }, (_, j) => ({ text: `${text.length % 5}${'x'.repeat(j)}`, tokens: 1, logprob: 0 })));
      },
    };
    // Scores a response by its length.
    const teacher: Teacher = { name: 'length', rank: async (_prompt: Prompt, shortlist) => shortlist.map((candidate) => candidate.text.length) };
    const evaluation = await prepareEvaluation(config, sampler, teacher);
    assert.equal(evaluation.baseResponses.length, config.run.evalPrompts);
    assert.equal(evaluation.baseMeanScore, 1);
  });
});

describe('run job', () => {
  before(async () => {
    await selectBackend({ force: 'cpu' });
  });

  test('embedded run replays exactly', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tsalign-run-'));
    const transport = await embedded(dataDir);
    try {
      const first = await runAndReplay(transport, dataDir, 'tsalign.');

      // Round 0 reports the base policy's mean verifier score on the win-rate prompts.
      const config = smallConfig(2).config;
      const state = readRunState(join(dataDir, 'run'), config)!;
      const base = await loadPolicy(state.base.policy.uri, { expectedSha256: state.base.policy.sha256 });
      const prompts = heldOutPrompts(config).evaluation;
      const responses = await respond(base, prompts, { seed: config.run.seed, temperature: config.run.evalTemperature, maxTokens: config.chain.maxTokens });
      base.dispose();
      const expected = prompts.reduce((sum, prompt, i) => sum + gradeResponse(prompt, responses[i]!), 0) / prompts.length;
      assert.equal(first.rounds[0]!.evalScore, expected);

      // A second run with one more round continues after round 2 and keeps the earlier rows.
      const second = await runJob({ transport, dataDir, topicPrefix: 'tsalign.', config: smallConfig(3) });
      assert.deepEqual(second.rounds.map((row) => row.round), [0, 1, 2, 3]);
      assert.deepEqual(second.rounds.slice(0, 3), first.rounds);

      await assert.rejects(replayRound({ transport, topicPrefix: 'tsalign.', dataDir, round: 9 }), (error: unknown) => error instanceof UsageError && /no manifest for round 9/.test(error.message));
      await assert.rejects(
        runJob({ transport, dataDir, topicPrefix: 'tsalign.', config: smallConfig(3, { chain: { candidates: 4, maxTokens: 6 } }) }),
        (error: unknown) => error instanceof UsageError && /another configuration/.test(error.message),
      );
    } finally {
      await transport.close();
    }
  });

  test('warm-up abort stops between steps', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tsalign-run-abort-'));
    const transport = await embedded(dataDir);
    const controller = new AbortController();
    const steps: string[] = [];
    try {
      const result = await runJob({
        transport,
        dataDir,
        topicPrefix: 'tsalign.',
        config: smallConfig(1, { run: { rounds: 1, promptsPerRound: 8, evalPrompts: 6, agreementPrompts: 4, warmupSteps: 200, warmupBatchSize: 8 } }),
        signal: controller.signal,
        onProgress: (text) => {
          if (!text.startsWith('warm-up step')) return;
          steps.push(text);
          // Aborts from a later macrotask, as a SIGINT handler would.
          if (steps.length === 1) setImmediate(() => controller.abort());
        },
      });
      assert.equal(result.interrupted, true);
      assert.deepEqual(result.rounds, []);
      assert.ok(steps.length <= 3, `the warm-up went on for ${steps.length} steps after the abort`);
    } finally {
      await transport.close();
    }
  });

  test('too many prompts fail before warm-up', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tsalign-run-counts-'));
    const transport = await embedded(dataDir);
    const progress: string[] = [];
    const run = { promptsPerRound: 8, evalPrompts: 6, agreementPrompts: 4, warmupSteps: 4, warmupBatchSize: 8 };
    try {
      await assert.rejects(
        runJob({ transport, dataDir, topicPrefix: 'tsalign.', config: smallConfig(3, { run: { ...run, rounds: 3, promptsPerRound: 2000 } }), onProgress: (text) => progress.push(text) }),
        (error: unknown) =>
          error instanceof UsageError &&
          /run\.promptsPerRound=2000 over run\.rounds=3 needs 6000 distinct train-split task prompts, but the task suite ran out after \d+; lower run\.promptsPerRound to at most \d+/.test(error.message),
      );
      await assert.rejects(
        runJob({ transport, dataDir, topicPrefix: 'tsalign.', config: smallConfig(1, { run: { ...run, rounds: 1, evalPrompts: 400, agreementPrompts: 400 } }), onProgress: (text) => progress.push(text) }),
        (error: unknown) =>
          error instanceof UsageError && /run\.evalPrompts=400 plus run\.agreementPrompts=400 needs 800 distinct held-out task prompts, but the task suite ran out after \d+/.test(error.message),
      );
      assert.deepEqual(progress, []);
    } finally {
      await transport.close();
    }
  });

  const kafka = kafkaBrokersOrSkip();
  test('kafka run replays exactly', { skip: kafka.skip }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tsalign-run-kafka-'));
    const transport = createTransport({ brokers: kafka.brokers, dataDir });
    await transport.connect();
    try {
      await runAndReplay(transport, dataDir, `${uniqueTopicName('run')}.`);
    } finally {
      await transport.close();
    }
  });
});
