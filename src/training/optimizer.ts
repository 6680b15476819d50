/**
 * Adam with decoupled weight decay, global-norm gradient clipping and a warm-up learning-rate
 * schedule, over an explicit list of tfjs variables.
 *
 * tfjs ships `tf.train.adam`, but its learning rate is fixed at construction, and a schedule
 * needs a new rate at every step. This optimizer takes the rate per call and keeps its moment
 * estimates in variables of its own, which `dispose()` frees.
 */
import * as tf from '@tensorflow/tfjs';

/** Learning-rate schedule: linear warm-up, then constant or cosine decay. */
export interface LearningRateSchedule {
  /** Peak learning rate, reached at the end of warm-up. */
  lr: number;
  /** Optimizer steps of linear warm-up from lr / warmupSteps to lr; 0 starts at lr. */
  warmupSteps: number;
  /** Schedule after warm-up: 'constant' (default) keeps lr, and 'cosine' decays it to minLr by totalSteps. */
  decay?: 'constant' | 'cosine';
  /** Total optimizer steps of the run; required by 'cosine'. */
  totalSteps?: number;
  /** Floor of the cosine decay; default 0. */
  minLr?: number;
}

/**
 * Returns the learning rate of optimizer step `step` (0-based).
 *
 * Warm-up is linear: step s < warmupSteps gets lr * (s + 1) / warmupSteps, so the first update
 * is small but not zero. After it the rate is lr ('constant'), or follows a half cosine from lr
 * down to minLr at step totalSteps and stays at minLr after that ('cosine').
 */
export function learningRateAt(step: number, schedule: LearningRateSchedule): number {
  const { lr, warmupSteps } = schedule;
  if (step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
  if ((schedule.decay ?? 'constant') === 'constant') return lr;

  const totalSteps = schedule.totalSteps;
  if (totalSteps === undefined) {
    throw new RangeError('the cosine schedule needs totalSteps; set it to the number of optimizer steps of the run');
  }
  const minLr = schedule.minLr ?? 0;
  const decaySteps = Math.max(1, totalSteps - warmupSteps);
  const progress = Math.min(1, (step - warmupSteps) / decaySteps);
  return minLr + 0.5 * (lr - minLr) * (1 + Math.cos(Math.PI * progress));
}

/** Checks a schedule and throws a RangeError naming the first invalid field. */
export function validateSchedule(schedule: LearningRateSchedule): void {
  if (!(schedule.lr > 0) || !Number.isFinite(schedule.lr)) {
    throw new RangeError(`lr must be a positive finite number, got ${schedule.lr}`);
  }
  if (!Number.isInteger(schedule.warmupSteps) || schedule.warmupSteps < 0) {
    throw new RangeError(`warmupSteps must be a non-negative integer, got ${schedule.warmupSteps}`);
  }
  const decay = schedule.decay ?? 'constant';
  if (decay !== 'constant' && decay !== 'cosine') {
    throw new RangeError(`decay must be "constant" or "cosine", got "${String(decay)}"`);
  }
  if (decay === 'cosine' && !(Number.isInteger(schedule.totalSteps) && schedule.totalSteps! > 0)) {
    throw new RangeError(`the cosine schedule needs totalSteps as a positive integer, got ${schedule.totalSteps}`);
  }
}

/**
 * Returns the global L2 norm of a set of gradients, sqrt(sum over tensors of sum(g^2)), as a
 * scalar tensor that the caller disposes.
 */
export function globalNorm(gradients: readonly tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => {
    if (gradients.length === 0) return tf.scalar(0);
    const squares = gradients.map((gradient) => tf.sum(tf.square(gradient)));
    return tf.sqrt(tf.addN(squares)) as tf.Scalar;
  });
}

/**
 * Scales gradients so their global norm is at most `clipNorm` (Pascanu et al. 2013): every
 * gradient is multiplied by min(1, clipNorm / norm). Returns new tensors owned by the caller
 * and the norm before clipping. A clipNorm of Infinity or 0 disables clipping.
 */
export function clipByGlobalNorm(gradients: readonly tf.Tensor[], clipNorm: number): { clipped: tf.Tensor[]; norm: number } {
  const normTensor = globalNorm(gradients);
  const norm = normTensor.dataSync()[0]!;
  normTensor.dispose();
  const scale = clipNorm > 0 && Number.isFinite(clipNorm) && norm > clipNorm ? clipNorm / norm : 1;
  const clipped = gradients.map((gradient) => (scale === 1 ? gradient.clone() : tf.mul(gradient, scale)));
  return { clipped, norm };
}

/** Hyperparameters of `Adam` besides the learning rate. */
export interface AdamOptions {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled weight decay (Loshchilov and Hutter 2019, AdamW); 0 (default) is plain Adam. */
  weightDecay?: number;
}

/**
 * Adam (Kingma and Ba 2015, Algorithm 1) with optional decoupled weight decay, over a fixed
 * list of variables. Each call to `applyGradients` is one optimizer step.
 */
export class Adam {
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;
  /** First and second moment estimates, one pair per variable, in the order of `variables`. */
  private readonly moments: Array<{ m: tf.Variable; v: tf.Variable }>;
  private stepCount = 0;

  constructor(
    readonly variables: readonly tf.Variable[],
    options: AdamOptions = {},
  ) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    const names = new Set<string>();
    for (const variable of variables) {
      if (names.has(variable.name)) {
        throw new RangeError(`variable "${variable.name}" appears twice in the optimizer's list; pass each variable once`);
      }
      names.add(variable.name);
    }
    this.moments = variables.map((variable) => ({
      m: tf.variable(tf.zerosLike(variable), false),
      v: tf.variable(tf.zerosLike(variable), false),
    }));
  }

  /** Number of optimizer steps taken so far. */
  get step(): number {
    return this.stepCount;
  }

  /**
   * Updates every variable from its gradient, given in the order of `variables`. A null
   * gradient (a variable the loss does not reach) leaves that variable and its moments as they
   * are. The caller keeps ownership of the gradients.
   */
  applyGradients(gradients: ReadonlyArray<tf.Tensor | null>, lr: number): void {
    if (gradients.length !== this.variables.length) {
      throw new RangeError(`expected ${this.variables.length} gradients, one per variable, got ${gradients.length}`);
    }
    this.stepCount += 1;
    const t = this.stepCount;
    const biasCorrection1 = 1 - this.beta1 ** t;
    const biasCorrection2 = 1 - this.beta2 ** t;
    tf.tidy(() => {
      this.variables.forEach((variable, i) => {
        const gradient = gradients[i];
        if (gradient === null || gradient === undefined) return;
        const { m, v } = this.moments[i]!;
        const mNext = tf.add(tf.mul(m, this.beta1), tf.mul(gradient, 1 - this.beta1));
        const vNext = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(gradient), 1 - this.beta2));
        m.assign(mNext);
        v.assign(vNext);
        const mHat = tf.div(mNext, biasCorrection1);
        const vHat = tf.div(vNext, biasCorrection2);
        let update = tf.div(mHat, tf.add(tf.sqrt(vHat), this.epsilon));
        if (this.weightDecay > 0) update = tf.add(update, tf.mul(variable, this.weightDecay));
        variable.assign(tf.sub(variable, tf.mul(update, lr)));
      });
    });
  }

  /** Frees the moment estimates. The optimized variables belong to their model and stay. */
  dispose(): void {
    for (const { m, v } of this.moments) {
      m.dispose();
      v.dispose();
    }
  }
}

/** Options of `ClippedAdam`: the schedule, the clipping threshold and Adam's own settings. */
export interface ClippedAdamOptions extends AdamOptions, LearningRateSchedule {
  /** Maximum global gradient norm; Infinity or 0 disables clipping. */
  clipNorm: number;
}

/** Outcome of one optimizer step. */
export interface OptimizerStepResult {
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Learning rate used by this step. */
  lr: number;
  /** True when the gradient norm was NaN or infinite, so no variable was updated. */
  skipped: boolean;
}

/** Adam driven by a learning-rate schedule, with global-norm clipping before each update. */
export class ClippedAdam {
  private readonly adam: Adam;

  constructor(
    readonly variables: readonly tf.Variable[],
    readonly options: ClippedAdamOptions,
  ) {
    validateSchedule(options);
    if (!(options.clipNorm >= 0)) {
      throw new RangeError(`clipNorm must be >= 0 (0 or Infinity disables clipping), got ${options.clipNorm}`);
    }
    this.adam = new Adam(variables, options);
  }

  get step(): number {
    return this.adam.step;
  }

  /**
   * Clips the gradients (in the order of `variables`, null where a variable got none) to the
   * global norm and takes one Adam step at the scheduled learning rate. When the norm is NaN or
   * infinite it updates nothing and reports `skipped`, so one bad batch cannot poison the
   * weights. The caller keeps ownership of the gradients.
   */
  applyGradients(gradients: ReadonlyArray<tf.Tensor | null>): OptimizerStepResult {
    const present = gradients.filter((gradient): gradient is tf.Tensor => gradient !== null);
    const { clipped, norm } = clipByGlobalNorm(present, this.options.clipNorm);
    const lr = learningRateAt(this.adam.step, this.options);
    if (!Number.isFinite(norm)) {
      tf.dispose(clipped);
      return { gradNorm: norm, lr, skipped: true };
    }
    let next = 0;
    const aligned = gradients.map((gradient) => (gradient === null ? null : clipped[next++]!));
    try {
      this.adam.applyGradients(aligned, lr);
    } finally {
      tf.dispose(clipped);
    }
    return { gradNorm: norm, lr, skipped: false };
  }

  dispose(): void {
    this.adam.dispose();
  }
}
