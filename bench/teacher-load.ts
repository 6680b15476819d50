/**
 * Teacher-load curve on the built-in tasks: the share of prompts that the confidence gate
 * sends to the teacher against the accuracy of the emitted pairs, for several tau, beside two
 * references. The first reference is the teacher ranking the student's best and worst on every
 * prompt, and the second is the teacher ranking all K candidates on every prompt.
 *
 * Method:
 * 1. Models. With BENCH_RUN_DIR set to the data directory of a finished `tsalign run`, the
 *    bench reads its configuration from `report.json` and its final policy and student from
 *    `run/state.json` (the base models when no round has completed). Otherwise it runs a short
 *    main job (the defaults with `SHORT_RUN` applied) on the embedded transport in a temporary
 *    directory, and deletes the directory afterwards.
 * 2. Data. N held-out task prompts (BENCH_TEACHER_LOAD_PROMPTS, default 200) from a seed the
 *    run never uses. The policy samples K candidates per prompt with the run's sampling
 *    settings and a seeded stream per prompt. The student scores every candidate, and the
 *    verifier grades every candidate.
 * 3. Rows. For each tau, `teacherLoadPoint` (src/run/teacher-load.ts) applies the gate's
 *    confidence rule with the run's calibration T, the shortlist m and minMargin. Student
 *    prompts give the student's best-versus-worst pair, and teacher prompts the verifier's
 *    best versus worst over the shortlist. Audits are left out (as with auditFraction 0),
 *    because an audited prompt is labelled as a teacher prompt and would blur the curve.
 * 4. Accuracy is the share of emitted pairs whose chosen candidate grades higher than the
 *    rejected one, with a tie in grade counted as half. Ties are also listed in their own
 *    column. The teacher is the verifier, so every teacher pair is correct by construction:
 *    the curve measures how far the student's own pairs fall short, and how many pairs each
 *    rule yields.
 *
 * Prints a table and writes `bench/results/teacher-load.svg`. Run alone:
 * `node --import tsx bench/teacher-load.ts`.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { firstValueFrom, from } from 'rxjs';
import { loadConfig, validateConfig, withHash, type LoadedConfig, type TsalignConfig } from '../src/config';
import { selectBackend } from '../src/models/backend';
import { loadPolicy, loadRewardModel } from '../src/models/checkpoint';
import { deriveSeed } from '../src/models/random';
import { linePlot, type PlotSeries } from '../src/report/svg';
import { chainSeed, policyHandle, studentHandle } from '../src/run/handles';
import { runJob } from '../src/run/job';
import { readRunState } from '../src/run/state';
import { type ScoredPrompt, type TeacherLoadCurve, type TeacherLoadPoint, teacherLoadCurve } from '../src/run/teacher-load';
import { createTransport } from '../src/streams/create-transport';
import type { Candidate, Prompt } from '../src/streams/records';
import { generateTaskPrompts, gradeResponse } from '../src/tasks';
import type { ModelRef } from '../src/training/trainer';
import { UsageError, errorMessage } from '../src/util/errors';
import { contentHash } from '../src/util/hash';
import { setLogLevel } from '../src/util/logger';

const TAUS = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0];

/** Prompts sampled and scored per model call. */
const BATCH = 32;

/**
 * Overrides of the default configuration for the short main job: fewer warm-up steps, rounds
 * and evaluation prompts than `tsalign run`, so it finishes in a few minutes on two cores.
 */
export const SHORT_RUN = { run: { rounds: 2, promptsPerRound: 128, warmupSteps: 1000, evalPrompts: 32, agreementPrompts: 16 } };

export interface TeacherLoadBenchResult {
  curve: TeacherLoadCurve;
  config: TsalignConfig;
  /** Source of the models: the BENCH_RUN_DIR path, or "short run". */
  models: string;
  policyVersion: string;
  studentVersion: string;
  prompts: number;
  svgPath: string;
}

interface RunModels {
  loaded: LoadedConfig;
  policy: ModelRef;
  student: ModelRef;
}

/** Reads the configuration and the final model refs of a finished run's data directory. */
function readRunModels(dataDir: string): RunModels {
  const reportFile = join(dataDir, 'report.json');
  if (!existsSync(reportFile)) {
    throw new UsageError(`BENCH_RUN_DIR ${dataDir} has no report.json; point it at the --data-dir of a finished tsalign run`);
  }
  let report: { config?: unknown };
  try {
    report = JSON.parse(readFileSync(reportFile, 'utf8')) as { config?: unknown };
  } catch (error) {
    throw new UsageError(`${reportFile} is not valid JSON (${errorMessage(error)}); point BENCH_RUN_DIR at the --data-dir of a finished tsalign run`);
  }
  const loaded = withHash(validateConfig(report.config));
  const state = readRunState(join(dataDir, 'run'), loaded.config);
  if (state === null) throw new UsageError(`BENCH_RUN_DIR ${dataDir} has no run/state.json; point it at the --data-dir of a finished tsalign run`);
  return { loaded, policy: state.trainer?.policy ?? state.base.policy, student: state.trainer?.student ?? state.base.student };
}

/** Runs the short main job in `dataDir` and returns its configuration and final model refs. */
async function shortRun(dataDir: string): Promise<RunModels> {
  const loaded = loadConfig({ overrides: [SHORT_RUN] });
  const transport = createTransport({ dataDir });
  await transport.connect();
  try {
    const started = performance.now();
    const result = await runJob({ transport, dataDir, topicPrefix: 'tsalign.', config: loaded });
    const last = result.rounds[result.rounds.length - 1];
    console.log(
      `short run: ${result.rounds.length - 1} rounds of ${loaded.config.run.promptsPerRound} prompts in ${((performance.now() - started) / 1000).toFixed(0)} s, ` +
        `final win rate ${last?.winRate.toFixed(3)}, student agreement ${last?.studentAgreement.toFixed(3)}`,
    );
  } finally {
    await transport.close();
  }
  return readRunModels(dataDir);
}

/** Samples K candidates per prompt, scores them with the student and grades them with the verifier. */
async function scorePrompts(models: RunModels, prompts: readonly Prompt[]): Promise<ScoredPrompt[]> {
  const { config } = models.loaded;
  const k = config.chain.candidates;
  const policy = await loadPolicy(models.policy.uri, { expectedSha256: models.policy.sha256 });
  const student = await loadRewardModel(models.student.uri, { expectedSha256: models.student.sha256 });
  const sampler = policyHandle(policy, models.policy.version, config.chain);
  const scorer = studentHandle(student, models.student.version);
  const signal = new AbortController().signal;
  const scored: ScoredPrompt[] = [];
  try {
    for (let start = 0; start < prompts.length; start += BATCH) {
      const batch = prompts.slice(start, start + BATCH);
      // Round 0 is never a chain round, so these seeds differ from every seed of the run.
      const seeds = batch.map((prompt) => chainSeed(config.run.seed, prompt.id, 0));
      const sampled = await firstValueFrom(from(sampler.sample(batch, seeds, k, signal)));
      const items = batch.map((prompt, row) => ({
        prompt,
        candidates: (sampled[row] ?? []).map((text): Candidate => ({ id: contentHash([prompt.id, text.text]), ...text })),
      }));
      const scores = await firstValueFrom(from(scorer.score(items, signal)));
      items.forEach(({ prompt, candidates }, row) => {
        scored.push({
          promptId: prompt.id,
          candidates,
          studentScores: scores[row] ?? [],
          grades: candidates.map((candidate) => gradeResponse(prompt, candidate.text)),
        });
      });
    }
  } finally {
    policy.dispose();
    student.dispose();
  }
  return scored;
}

function formatShare(value: number | null): string {
  return value === null ? '-' : value.toFixed(3);
}

function printCurve(curve: TeacherLoadCurve): void {
  const header = ['rule', 'teacher share', 'read/prompt', 'pairs', 'teacher pairs', 'correct', 'wrong', 'grade ties', 'accuracy', 'student acc.'];
  const rows = [...curve.gated, curve.teacherBestVersusWorst, curve.teacherAllCandidates].map((point) => [
    point.name,
    point.teacherShare.toFixed(3),
    point.candidatesReadPerPrompt.toFixed(2),
    String(point.pairs),
    String(point.teacherPairs),
    String(point.correct),
    String(point.wrong),
    String(point.gradeTies),
    formatShare(point.accuracy),
    formatShare(point.studentAccuracy),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] as string).length)));
  const line = (cells: string[]): string => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] as number) : cell.padStart(widths[column] as number))).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

/** Draws accuracy against teacher share: the gated rows as one line, each reference as a point. */
function curveSvg(curve: TeacherLoadCurve, title: string): string {
  // Rounded x values keep the tick labels short, because `linePlot` labels every distinct x.
  const point = (row: TeacherLoadPoint) => ({ x: Number(row.teacherShare.toFixed(2)), y: row.accuracy });
  const series: PlotSeries[] = [
    { name: 'gate, tau 0.5 to 1', color: '#1f77b4', points: [...curve.gated].sort((a, b) => a.teacherShare - b.teacherShare).map(point) },
    { name: 'teacher, best vs worst', color: '#d62728', points: [point(curve.teacherBestVersusWorst)] },
    { name: 'teacher, all candidates', color: '#2ca02c', points: [point(curve.teacherAllCandidates)] },
  ];
  return linePlot({
    title,
    xLabel: 'share of prompts sent to the teacher',
    yLabel: 'pair accuracy (verifier)',
    series,
    referenceY: 0.5,
    width: 640,
    height: 320,
  });
}

/** Runs the teacher-load bench, prints its table and writes its plot. */
export async function benchTeacherLoad(): Promise<TeacherLoadBenchResult> {
  setLogLevel('warn');
  const backend = await selectBackend();
  const runDir = process.env.BENCH_RUN_DIR?.trim();
  const count = Number(process.env.BENCH_TEACHER_LOAD_PROMPTS ?? 200);
  if (!Number.isInteger(count) || count < 1) {
    throw new UsageError(`BENCH_TEACHER_LOAD_PROMPTS must be an integer >= 1, got ${JSON.stringify(process.env.BENCH_TEACHER_LOAD_PROMPTS)}`);
  }

  let models: RunModels;
  if (runDir) {
    models = readRunModels(runDir);
  } else {
    const dataDir = mkdtempSync(join(tmpdir(), 'tsalign-bench-teacher-load-'));
    try {
      models = await shortRun(dataDir);
      // The checkpoints live in dataDir, so score before deleting it.
      return await measure(models, count, 'short run', backend.name, () => rmSync(dataDir, { recursive: true, force: true }));
    } catch (error) {
      rmSync(dataDir, { recursive: true, force: true });
      throw error;
    }
  }
  return measure(models, count, runDir, backend.name, () => undefined);
}

async function measure(models: RunModels, count: number, source: string, backend: string, cleanup: () => void): Promise<TeacherLoadBenchResult> {
  const { config } = models.loaded;
  const prompts = generateTaskPrompts({ count, seed: deriveSeed('tsalign.bench.teacher-load', config.run.seed), split: 'heldout' });
  const started = performance.now();
  const scored = await scorePrompts(models, prompts);
  cleanup();
  const curve = teacherLoadCurve(scored, {
    taus: TAUS,
    temperature: config.chain.calibrationT,
    shortlist: config.chain.shortlist,
    minMargin: config.chain.minMargin,
    candidates: config.chain.candidates,
  });

  console.log(
    `teacher load: ${count} held-out prompts, K=${config.chain.candidates}, m=${config.chain.shortlist}, T=${config.chain.calibrationT}, ` +
      `policy ${models.policy.version}, student ${models.student.version} (${source}), backend ${backend}, ` +
      `sampled and scored in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  printCurve(curve);

  const resultsDir = join(__dirname, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const svgPath = join(resultsDir, 'teacher-load.svg');
  const title = `Teacher load vs pair accuracy (${count} held-out prompts, K=${config.chain.candidates}, m=${config.chain.shortlist})`;
  writeFileSync(svgPath, curveSvg(curve, title));
  console.log(`plot: ${svgPath}`);

  return {
    curve,
    config,
    models: source,
    policyVersion: models.policy.version,
    studentVersion: models.student.version,
    prompts: count,
    svgPath,
  };
}

if (require.main === module) {
  benchTeacherLoad().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
