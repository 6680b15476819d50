import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { UsageError, errorMessage } from '../util/errors';
import { childLogger } from '../util/logger';
import { Policy } from './policy';
import { RewardModel } from './reward-model';
import { ByteTokenizer } from './byte-tokenizer';

/** The values `TSALIGN_BACKEND` and `force` accept, in the order auto-selection tries them. */
export const BACKEND_CHOICES = ['node-gpu', 'node', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface BackendSelection {
  /** The tfjs backend now active: `tensorflow-gpu`, `tensorflow`, `wasm` or `cpu`. */
  name: string;
  /** Backends tried before it, with the reason each was passed over. */
  skipped: { name: string; reason: string }[];
}

interface Candidate {
  choice: BackendChoice;
  /** Name reported in `BackendSelection`. */
  name: string;
  /** Name tfjs registers the backend under. */
  tfName: string;
  /** Loads the backend's package; throws when it cannot. */
  load(): void;
}

const CANDIDATES: Candidate[] = [
  {
    choice: 'node-gpu',
    name: 'tensorflow-gpu',
    tfName: 'tensorflow',
    load: () => requireOptional('@tensorflow/tfjs-node-gpu'),
  },
  { choice: 'node', name: 'tensorflow', tfName: 'tensorflow', load: () => requireOptional('@tensorflow/tfjs-node') },
  { choice: 'wasm', name: 'wasm', tfName: 'wasm', load: configureWasm },
  { choice: 'cpu', name: 'cpu', tfName: 'cpu', load: () => undefined },
];

const log = childLogger('backend');
/** Selections made so far, by requested choice ('auto' when none), so repeated calls agree. */
const selections = new Map<string, Promise<BackendSelection>>();
let wasmConfigured = false;

/**
 * Selects the tfjs backend: `options.force`, else `TSALIGN_BACKEND`, else the first of node-gpu,
 * node, wasm, cpu that loads and passes a self-check (one forward and backward pass of a tiny
 * policy and a tiny reward model, plus a few sampling steps, through the real code paths). A forced
 * backend that fails throws, naming the missing kernel when that is the cause. Calling it again
 * with the same request returns the same selection and makes that backend active again.
 */
export async function selectBackend(options: { force?: string } = {}): Promise<BackendSelection> {
  const requested = options.force ?? process.env.TSALIGN_BACKEND ?? 'auto';
  let selection = selections.get(requested);
  if (selection === undefined) {
    selection = runSelection(requested);
    selections.set(requested, selection);
    selection.catch(() => selections.delete(requested));
  }
  const result = await selection;
  if (tf.getBackend() !== tfNameOf(result.name)) await tf.setBackend(tfNameOf(result.name));
  return result;
}

async function runSelection(requested: string): Promise<BackendSelection> {
  // The cpu backend prints an "install the node backend" banner on first use in Node; the
  // backend log line below says the same, so tfjs's own warnings are switched off.
  tf.env().set('PROD', true);
  if (requested !== 'auto') {
    const candidate = CANDIDATES.find((c) => c.choice === requested);
    if (candidate === undefined) {
      throw new UsageError(
        `Unknown backend ${JSON.stringify(requested)} (from TSALIGN_BACKEND or --backend): use one of ${BACKEND_CHOICES.join(', ')}.`,
      );
    }
    const failure = await tryCandidate(candidate);
    if (failure !== null) {
      throw new Error(`Backend ${candidate.choice} was requested but cannot run: ${failure}. Unset TSALIGN_BACKEND to fall back automatically.`);
    }
    log.info({ backend: candidate.name, requested }, 'backend selected');
    return { name: candidate.name, skipped: [] };
  }

  const skipped: { name: string; reason: string }[] = [];
  for (const candidate of CANDIDATES) {
    const failure = await tryCandidate(candidate);
    if (failure === null) {
      log.info({ backend: candidate.name, skipped }, 'backend selected');
      return { name: candidate.name, skipped };
    }
    log.info({ backend: candidate.name, reason: failure }, 'backend skipped');
    skipped.push({ name: candidate.name, reason: failure });
  }
  throw new Error(`No tfjs backend passed the self-check: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}.`);
}

/** Loads, activates and self-checks one candidate; returns null on success, else the reason. */
async function tryCandidate(candidate: Candidate): Promise<string | null> {
  try {
    candidate.load();
  } catch (error) {
    return errorMessage(error);
  }
  try {
    if (!(await tf.setBackend(candidate.tfName))) return `tfjs could not initialize the ${candidate.tfName} backend`;
    await tf.ready();
  } catch (error) {
    return `tfjs could not initialize the ${candidate.tfName} backend: ${errorMessage(error)}`;
  }
  return selfCheck();
}

/** Relative tolerance of the self-check's comparison with the cpu backend. */
const SELF_CHECK_TOLERANCE = 1e-3;

/**
 * Runs one forward and backward pass of a tiny policy and reward model, and two sampling steps,
 * on the active backend, then repeats the passes on the cpu backend (the reference) and compares
 * the numbers. Returns null when all ran and agree, else the reason (the missing kernel's name
 * when a kernel is missing). Leaves the backend it found active.
 */
export async function selfCheck(): Promise<string | null> {
  const backendName = tf.getBackend();
  const tokenizer = new ByteTokenizer();
  const config = { vocabSize: tokenizer.vocabSize, contextLength: 16, dModel: 8, nHeads: 2, nLayers: 1, dFf: 16 };
  const policy = Policy.create(config, tokenizer, 1);
  const rewardModel = RewardModel.create(config, tokenizer, 2);
  try {
    const numbers = await selfCheckNumbers(policy, rewardModel);
    if (!numbers.every(Number.isFinite)) return 'the self-check produced non-finite losses or gradients';
    await policy.sample(['a'], { k: 2, temperature: 1, maxTokens: 2, seeds: [1] });
    if (backendName === 'cpu') return null;

    await tf.setBackend('cpu');
    const reference = await selfCheckNumbers(policy, rewardModel);
    await tf.setBackend(backendName);
    const index = numbers.findIndex(
      (value, i) => Math.abs(value - reference[i]!) > SELF_CHECK_TOLERANCE * Math.max(1, Math.abs(reference[i]!)),
    );
    if (index >= 0) {
      return `the self-check's value ${index} is ${numbers[index]} on ${backendName} but ${reference[index]} on cpu`;
    }
    return null;
  } catch (error) {
    const message = errorMessage(error);
    const kernel = /Kernel '([^']+)' not registered/.exec(message);
    return kernel !== null ? `kernel ${kernel[1]} is not registered` : message;
  } finally {
    if (tf.getBackend() !== backendName) await tf.setBackend(backendName);
    policy.dispose();
    rewardModel.dispose();
  }
}

/** Returns the log-probs, scores and per-weight gradient sums of one pass over a fixed batch. */
async function selfCheckNumbers(policy: Policy, rewardModel: RewardModel): Promise<number[]> {
  const batch = [
    { prompt: 'ab', response: 'c' },
    { prompt: 'a', response: 'bcd' },
  ];
  const values = tf.tidy(() => {
    const policyGrads = tf.variableGrads(() => tf.sum(policy.sequenceLogprobs(batch)) as tf.Scalar, policy.variables);
    const rewardGrads = tf.variableGrads(() => tf.sum(rewardModel.scoreTensor(batch)) as tf.Scalar, rewardModel.variables);
    const gradientSums = [...policy.variables, ...rewardModel.variables].map((variable) =>
      tf.sum(policyGrads.grads[variable.name] ?? rewardGrads.grads[variable.name]!),
    );
    return tf.concat([policy.sequenceLogprobs(batch), rewardModel.scoreTensor(batch), tf.stack(gradientSums)]);
  });
  const numbers = Array.from(await values.data());
  values.dispose();
  return numbers;
}

function tfNameOf(name: string): string {
  return CANDIDATES.find((c) => c.name === name)?.tfName ?? name;
}

function requireOptional(packageName: string): void {
  try {
    require(packageName);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'MODULE_NOT_FOUND') throw new Error(`package ${packageName} is not installed`);
    throw new Error(`package ${packageName} failed to load: ${errorMessage(error)}`);
  }
}

/** Points the wasm backend at the .wasm binaries shipped in its npm package (no download). */
function configureWasm(): void {
  if (wasmConfigured) return;
  const wasmFile = require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm');
  setWasmPaths(path.dirname(wasmFile) + path.sep);
  wasmConfigured = true;
}
