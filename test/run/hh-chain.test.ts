/**
 * The chain on HH-RLHF prompts, through the command line: a reward-model teacher and a student
 * fitted on the first pairs of the file, a byte-level policy warm-started on their chosen
 * responses, and prompts from a later part of the file fed and run through `worker --role chain`.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { kafkaBrokersOrSkip, uniqueTopicName } from '../helpers/kafka';
import { runCli, tempDir } from '../cli/feed-cli';

const DATA = '/work/shared/data/hh-rlhf-harmless-test.jsonl.gz';
const dataSkip = existsSync(DATA) ? undefined : `${DATA} is absent: the HH-RLHF chain test needs the harmless test split`;
const kafka = kafkaBrokersOrSkip();

/** Prompts fed to the chain: records 2001 to 2016, far from the 64 pairs the models saw. */
const FIRST_PROMPT_RECORD = 2000;
const PROMPTS = 16;
const tiny = ['--layers', '1', '--d-model', '16', '--heads', '2', '--context-length', '64'];
/**
 * The gate: confidence = sigmoid((best - worst) / T) with T 0.01 is at least tau 0.75 when the
 * student's best-minus-worst spread is at least 0.01 * ln 3 = 0.011. This student's spreads on
 * these prompts run from about 0.005 to 0.028, so it decides some prompts and the teacher the
 * others. No audits, so every teacher decision is a TEACHER one.
 */
const chainSettings = ['chain.candidates=4', 'chain.shortlist=2', 'chain.maxTokens=16', 'chain.tau=0.75', 'chain.calibrationT=0.01', 'chain.auditFraction=0'].flatMap((value) => ['--set', value]);

const temp = tempDir('tsalign-hh-chain-');
after(() => temp.remove());

interface Tapped {
  [key: string]: unknown;
}

async function tap(topic: string, flags: string[]): Promise<Tapped[]> {
  const tapped = await runCli(['tap', topic, '--to-end', '--format', 'json', '--log-level', 'warn', ...flags]);
  assert.equal(tapped.code, 0, tapped.stderr);
  return tapped.stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Tapped);
}

describe('the chain on HH-RLHF prompts', { skip: dataSkip }, () => {
  const models = { teacher: join(temp.dir, 'teacher'), student: join(temp.dir, 'student'), policy: join(temp.dir, 'policy') };
  let promptLines = '';
  let policySha = '';

  before(async () => {
    const teacher = await runCli(['rm', 'fit', DATA, '--out', models.teacher, '--limit', '64', '--holdout', '0', ...tiny]);
    assert.equal(teacher.code, 0, teacher.stderr);
    const student = await runCli(['rm', 'fit', DATA, '--out', models.student, '--limit', '32', '--holdout', '0', '--seed', '2', '--epochs', '4', '--lr', '1e-2', '--batch-size', '8', ...tiny]);
    assert.equal(student.code, 0, student.stderr);
    const policy = await runCli(['policy', 'sft', DATA, '--out', models.policy, '--limit', '64', '--steps', '10', '--batch-size', '8', '--json', ...tiny]);
    assert.equal(policy.code, 0, policy.stderr);
    const report = JSON.parse(policy.stdout) as { checkpoint: { sha256: string }; pairs: number; steps: number; lastLoss: number; firstLoss: number };
    assert.equal(report.pairs, 64);
    assert.equal(report.steps, 10);
    assert.ok(report.lastLoss < report.firstLoss, `SFT loss went from ${report.firstLoss} to ${report.lastLoss}`);
    policySha = report.checkpoint.sha256;
    promptLines = gunzipSync(readFileSync(DATA)).toString('utf8').split('\n').slice(FIRST_PROMPT_RECORD, FIRST_PROMPT_RECORD + PROMPTS).join('\n');
  });

  const transports = [
    { name: 'embedded', skip: undefined, flags: () => ['--data-dir', join(temp.dir, 'data')] },
    { name: 'kafka', skip: kafka.skip, flags: () => ['--brokers', kafka.brokers ?? '', '--topic-prefix', `${uniqueTopicName('hhchain')}.`] },
  ];
  for (const transport of transports) {
    test(`HH chain on ${transport.name}`, { skip: transport.skip, timeout: 300_000 }, async () => {
      const flags = transport.flags();
      const fed = await runCli(['feed', '-', '--format', 'hh-rlhf', ...flags], { input: promptLines });
      assert.equal(fed.code, 0, fed.stderr);
      assert.match(fed.stderr, new RegExp(`${PROMPTS} accepted`));

      const worker = await runCli([
        'worker', '--role', 'chain', '--policy', models.policy, '--student', models.student,
        '--teacher', 'reward-model', '--set', `teacher.rewardModel.checkpoint=${models.teacher}`, ...chainSettings,
        '--max-prompts', String(PROMPTS), ...flags,
      ]);
      assert.equal(worker.code, 0, worker.stderr);

      const prompts = await tap('prompts', flags);
      assert.equal(prompts.length, PROMPTS);
      assert.ok(prompts.every((prompt) => typeof (prompt.meta as Record<string, string>)['hh.chosen'] === 'string'));
      const promptIds = prompts.map((prompt) => prompt.id as string).sort();

      const updates = await tap('model-updates', flags);
      const policyUpdate = updates.find((update) => update.model === 'POLICY');
      assert.equal(policyUpdate?.sha256, policySha);
      assert.equal(policyUpdate?.version, `policy-${policySha.slice(0, 16)}`);

      const sets = await tap('candidates', flags);
      assert.deepEqual(sets.map((set) => set.promptId as string).sort(), promptIds);
      assert.ok(sets.every((set) => set.policyVersion === policyUpdate?.version));
      assert.ok(sets.every((set) => (set.candidates as unknown[]).length === 4));
      const decisions = new Set(sets.map((set) => set.decision));
      assert.ok(decisions.has('STUDENT'), `no student decision among ${sets.map((set) => set.confidence).join(', ')}`);
      assert.ok(decisions.has('TEACHER'), `no teacher decision among ${sets.map((set) => set.confidence).join(', ')}`);

      const judgments = await tap('judgments', flags);
      assert.equal(judgments.length, sets.filter((set) => set.decision === 'TEACHER').length);
      assert.ok(judgments.every((judgment) => judgment.error === null));
      assert.ok(judgments.every((judgment) => String(judgment.teacher).startsWith('reward-model:')));

      const pairs = await tap('pairs', flags);
      assert.ok(pairs.length > 0, 'no pairs on the pairs topic');
      assert.ok(pairs.every((pair) => promptIds.includes(pair.promptId as string)));
      assert.ok(pairs.every((pair) => pair.chosen !== pair.rejected));
      assert.deepEqual(new Set(pairs.map((pair) => pair.labeler)), new Set(['STUDENT', 'TEACHER']));
    });
  }

  test('worker --policy rejects a reward model', { timeout: 120_000 }, async () => {
    const worker = await runCli(['worker', '--role', 'chain', '--policy', models.student, '--student', models.student, '--max-prompts', '1', '--data-dir', join(temp.dir, 'refused')]);
    assert.equal(worker.code, 2, worker.stderr);
    assert.match(worker.stderr, /invalid --policy .*student: .*contains a reward-model, not a policy/);
  });
});

test('policy sft bad line exits 2', async () => {
  const file = join(temp.dir, 'bad.jsonl');
  writeFileSync(file, '{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": 3}\n');
  const sft = await runCli(['policy', 'sft', file, '--out', join(temp.dir, 'never'), '--steps', '1']);
  assert.equal(sft.code, 2);
  assert.match(sft.stderr, /bad\.jsonl:2: missing string field "chosen"/);
  assert.equal(existsSync(join(temp.dir, 'never')), false);
});
