import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Random } from '../../src/models/random';

const repository = join(__dirname, '..', '..');
const hhData = '/work/shared/data/hh-rlhf-harmless-test.jsonl.gz';
const directory = mkdtempSync(join(tmpdir(), 'tsalign-rm-'));
after(() => rmSync(directory, { recursive: true, force: true }));

/** Options that keep the model tiny so each fit takes seconds. */
const tinyModel = ['--layers', '1', '--d-model', '16', '--heads', '2', '--context-length', '24'];

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `tsalign` from the TypeScript sources and collects its output. */
function runCli(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repository, 'bin', 'tsalign.js'), ...args], {
      cwd: repository,
      env: { ...process.env, TSALIGN_FROM_SOURCE: '1', TSALIGN_LOG_LEVEL: 'warn' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Writes separable pairs: chosen responses start with "+", rejected ones with "-". */
function writeSeparablePairs(name: string, count: number): string {
  const random = new Random(5);
  const letters = () => Array.from({ length: 3 }, () => String.fromCharCode(97 + Math.floor(random.nextFloat() * 26))).join('');
  const lines = Array.from({ length: count }, () => JSON.stringify({ prompt: letters(), chosen: `+${letters()}`, rejected: `-${letters()}` }));
  const path = join(directory, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

describe('rm fit and eval', () => {
  test('learn a separable synthetic set', async () => {
    const pairs = writeSeparablePairs('separable.jsonl', 160);
    const out = join(directory, 'separable-model');
    const fit = await runCli(['rm', 'fit', pairs, '--out', out, '--limit', '120', '--epochs', '4', '--lr', '3e-3', '--json', ...tinyModel]);
    assert.equal(fit.code, 0, fit.stderr);
    const fitReport = JSON.parse(fit.stdout) as { pairs: { train: number; validation: number }; steps: number; checkpoint: { sha256: string } };
    assert.deepEqual(fitReport.pairs, { train: 108, validation: 12 });
    assert.equal(fitReport.steps, 4 * Math.ceil(108 / 16));
    assert.match(fitReport.checkpoint.sha256, /^[0-9a-f]{64}$/);
    assert.match(fit.stderr, /rm fit: step \d+\/28, epoch 4, .*validation accuracy/);

    const evaluation = await runCli(['rm', 'eval', pairs, '--model', out, '--skip', '120', '--json']);
    assert.equal(evaluation.code, 0, evaluation.stderr);
    const report = JSON.parse(evaluation.stdout) as { n: number; accuracy: number; low: number; high: number; ties: number; model: { sha256: string } };
    assert.equal(report.n, 40);
    assert.ok(report.accuracy > 0.9, `held-out accuracy ${report.accuracy}`);
    assert.ok(report.low < report.accuracy, `interval ${report.low}-${report.high}`);
    assert.ok(report.accuracy <= report.high, `interval ${report.low}-${report.high}`);
    assert.equal(report.model.sha256, fitReport.checkpoint.sha256);

    const text = await runCli(['rm', 'eval', pairs, '--model', out, '--skip', '120']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /accuracy +\d\.\d{4} \(95% Wilson interval \d\.\d{4}-\d\.\d{4}\), n 40, \d+ right, \d+ wrong, \d+ ties counted as half/);
  });

  test('run on 200 HH-RLHF records', { skip: existsSync(hhData) ? false : `${hhData} is absent` }, async () => {
    const out = join(directory, 'hh-model');
    const fit = await runCli(['rm', 'fit', hhData, '--out', out, '--limit', '150', '--holdout', '0', '--json', ...tinyModel]);
    assert.equal(fit.code, 0, fit.stderr);
    const fitReport = JSON.parse(fit.stdout) as { pairs: { train: number; validation: number }; loss: number };
    assert.deepEqual(fitReport.pairs, { train: 150, validation: 0 });
    assert.ok(Number.isFinite(fitReport.loss), `loss ${fitReport.loss}`);

    const evaluation = await runCli(['rm', 'eval', hhData, '--model', out, '--skip', '150', '--limit', '50', '--json']);
    assert.equal(evaluation.code, 0, evaluation.stderr);
    const report = JSON.parse(evaluation.stdout) as { n: number; wins: number; losses: number; ties: number };
    assert.equal(report.n, 50);
    assert.equal(report.wins + report.losses + report.ties, 50);
  });
});

describe('rm input errors', () => {
  test('malformed line exits 2 with its number', async () => {
    const path = join(directory, 'malformed.jsonl');
    writeFileSync(path, `${JSON.stringify({ prompt: 'p', chosen: 'c', rejected: 'r' })}\n{"prompt": "p", "chosen":\n`);
    const result = await runCli(['rm', 'fit', path, '--out', join(directory, 'never-written'), ...tinyModel]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /malformed\.jsonl:2: invalid JSON/);
    assert.equal(existsSync(join(directory, 'never-written')), false);
  });

  test('missing field exits 2 with its line', async () => {
    const path = join(directory, 'missing-field.jsonl');
    writeFileSync(path, `\n${JSON.stringify({ prompt: 'p', rejected: 'r' })}\n`);
    const result = await runCli(['rm', 'eval', path, '--model', directory]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /missing-field\.jsonl:2: missing string field "chosen"/);
  });

  test('unknown model directory exits 2', async () => {
    const pairs = writeSeparablePairs('few.jsonl', 3);
    const absent = await runCli(['rm', 'eval', pairs, '--model', join(directory, 'no-such-model')]);
    assert.equal(absent.code, 2);
    assert.match(absent.stderr, /model directory not found: .*no-such-model/);
    const empty = join(directory, 'empty-model');
    mkdirSync(empty);
    const notCheckpoint = await runCli(['rm', 'eval', pairs, '--model', empty]);
    assert.equal(notCheckpoint.code, 2);
    assert.match(notCheckpoint.stderr, /cannot load reward model from .*empty-model: .*missing checkpoint\.json/);
  });

  test('existing output directory exits 2', async () => {
    const pairs = writeSeparablePairs('few-more.jsonl', 3);
    const out = join(directory, 'taken');
    mkdirSync(out);
    writeFileSync(join(out, 'file.txt'), 'x');
    const result = await runCli(['rm', 'fit', pairs, '--out', out, ...tinyModel]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--out .*taken already exists/);
  });
});
