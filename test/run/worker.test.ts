import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { validateConfig, withHash } from '../../src/config';
import { selectBackend } from '../../src/models/backend';
import { readTopic } from '../../src/replay/read-topic';
import { runWorker } from '../../src/run/worker';
import { encodeRecord } from '../../src/streams/avro';
import { createTransport } from '../../src/streams/create-transport';
import { ensureTopics, topicName } from '../../src/streams/topics';
import { generateTaskPrompts } from '../../src/tasks';

const tiny = { layers: 1, heads: 2, embedding: 16, contextLength: 40 };

describe('worker', () => {
  test('role all closes a round', { timeout: 300_000 }, async () => {
    await selectBackend({ force: 'cpu' });
    const dataDir = mkdtempSync(join(tmpdir(), 'tsalign-worker-'));
    const transport = createTransport({ dataDir });
    await transport.connect();
    const config = withHash(
      validateConfig({
        run: { warmupSteps: 30, warmupBatchSize: 8 },
        chain: { candidates: 3, maxTokens: 6, tau: 1 },
        trainer: { batchSize: 2, roundSize: 3, epochs: 1 },
        models: { policy: tiny, student: tiny },
      }),
    );
    const controller = new AbortController();
    try {
      await ensureTopics(transport, 'tsalign.');
      const prompts = generateTaskPrompts({ count: 40, seed: 4, split: 'train' });
      await transport.produce(
        prompts.map((prompt) => {
          const encoded = encodeRecord('Prompt', prompt);
          return { topic: topicName('prompts'), key: prompt.id, value: encoded.value, headers: encoded.headers };
        }),
      );
      // Pairs of the base policy, so the round closes whatever the tiny policy samples.
      const pairs = [1, 2, 3].map((n) => ({
        id: `synthetic-${n}`,
        promptId: prompts[n]!.id,
        prompt: prompts[n]!.text,
        chosen: prompts[n]!.meta.answer!,
        rejected: `${prompts[n]!.meta.answer!}x`,
        chosenId: `chosen-${n}`,
        rejectedId: `rejected-${n}`,
        labeler: 'TEACHER' as const,
        confidence: 0.5,
        margin: 1,
        round: 1,
        policyVersion: 'policy-r0-s0',
        studentVersion: 'student-r0-s0',
      }));
      await transport.produce(
        pairs.map((pair) => {
          const encoded = encodeRecord('PreferencePair', pair);
          return { topic: topicName('pairs'), key: pair.id, value: encoded.value, headers: encoded.headers };
        }),
      );
      const worker = runWorker({ transport, dataDir, topicPrefix: 'tsalign.', config, role: 'all', signal: controller.signal });
      let manifests = await readTopic(transport, topicName('rounds'), 'RoundManifest');
      let failed: unknown = null;
      worker.catch((error: unknown) => (failed = error));
      let candidateSets = 0;
      // Until the round closes and the chain has processed every prompt.
      while ((manifests.length === 0 || candidateSets < prompts.length) && failed === null) {
        await delay(200);
        manifests = await readTopic(transport, topicName('rounds'), 'RoundManifest');
        candidateSets = (await readTopic(transport, topicName('candidates'), 'CandidateSet')).length;
      }
      controller.abort();
      await worker;
      assert.equal(failed, null);
      assert.ok(manifests.length > 0, 'the trainer closed a round');
      const manifest = manifests[0]!.record;
      assert.equal(manifest.round, 1);
      assert.equal(manifest.status, 'CLOSED');
      assert.ok((manifest.summary.pairsTrained ?? 0) >= 3);
      const updates = (await readTopic(transport, topicName('model-updates'), 'ModelUpdate')).map((entry) => entry.record.version);
      assert.ok(updates.includes('policy-r0-s0'));
      assert.ok(updates.includes(manifest.policyOut!));
      assert.equal(candidateSets, prompts.length);
    } finally {
      controller.abort();
      await transport.close();
    }
  });
});
