import { type Observable, Subject } from 'rxjs';
import type { ModelUpdate } from '../streams/records';
import { errorMessage } from '../util/errors';
import { type Logger, childLogger } from '../util/logger';
import type { SamplerHandle, ScorerHandle } from './types';

/** Loads the checkpoint an update names and verifies its sha256; rejects when either fails. */
export type ModelLoader = (update: ModelUpdate) => Promise<SamplerHandle | ScorerHandle>;

export interface SwapResult {
  update: ModelUpdate;
  swapped: boolean;
  /** Reason the update was not applied; null when it was applied or was already current. */
  error: string | null;
}

/** An update that could not be applied; a runner writes it to the dead-letter topic. */
export interface RejectedUpdate {
  update: ModelUpdate;
  error: string;
}

/**
 * Holds the current policy and student versions and swaps them when the trainer announces
 * a new checkpoint.
 *
 * `sample` and `score` read `policy()` and `student()` once per batch, so a swap takes effect
 * from the next batch while a batch in progress keeps the version it started with. Swaps run
 * one at a time in arrival order. A failed load, or a handle whose version or kind does not
 * match the update, keeps the old version, is logged, and is emitted on `rejected$`.
 */
export class ModelRegistry {
  // Current policy, read by `sample` per batch.
  private currentPolicy: SamplerHandle;
  // Current student, read by `score` per batch.
  private currentStudent: ScorerHandle;
  // Tail of the swap queue; each swap starts when the previous one has settled.
  private swapQueue: Promise<unknown> = Promise.resolve();
  // Updates that could not be applied.
  private readonly rejected = new Subject<RejectedUpdate>();
  private readonly logger: Logger;

  /** Updates that failed to load or verify, for the dead-letter topic. */
  readonly rejected$: Observable<RejectedUpdate> = this.rejected.asObservable();

  constructor(initial: { policy: SamplerHandle; student: ScorerHandle }, logger?: Logger) {
    this.currentPolicy = initial.policy;
    this.currentStudent = initial.student;
    this.logger = logger ?? childLogger('model-registry');
  }

  /** Returns the current policy. */
  policy = (): SamplerHandle => this.currentPolicy;

  /** Returns the current student. */
  student = (): ScorerHandle => this.currentStudent;

  /**
   * Loads `update` with `load` and makes it current. Resolves, never rejects: a failure is
   * reported in the result and on `rejected$`. An update whose version is already current
   * is skipped, so a redelivered ModelUpdate costs no load.
   */
  swap(update: ModelUpdate, load: ModelLoader): Promise<SwapResult> {
    const result = this.swapQueue.then(() => this.applyUpdate(update, load));
    this.swapQueue = result;
    return result;
  }

  /** Completes `rejected$`. */
  close(): void {
    this.rejected.complete();
  }

  private async applyUpdate(update: ModelUpdate, load: ModelLoader): Promise<SwapResult> {
    const fields = { model: update.model, version: update.version, round: update.round };
    const current = update.model === 'POLICY' ? this.currentPolicy.version : this.currentStudent.version;
    if (update.version === current) return { update, swapped: false, error: null };

    let error: string;
    try {
      const handle = await load(update);
      const problem = mismatch(update, handle);
      if (problem === null) {
        if (update.model === 'POLICY') this.currentPolicy = handle as SamplerHandle;
        else this.currentStudent = handle as ScorerHandle;
        this.logger.info({ ...fields, previousVersion: current }, 'model swapped');
        return { update, swapped: true, error: null };
      }
      error = problem;
    } catch (cause) {
      error = `loading ${update.model} ${update.version} from ${update.uri} failed: ${errorMessage(cause)}`;
    }
    this.logger.error({ ...fields, uri: update.uri, error, keptVersion: current }, 'model update rejected');
    this.rejected.next({ update, error });
    return { update, swapped: false, error };
  }
}

function mismatch(update: ModelUpdate, handle: SamplerHandle | ScorerHandle): string | null {
  const kindOk = update.model === 'POLICY' ? 'sample' in handle : 'score' in handle;
  if (!kindOk) return `loader returned a handle without ${update.model === 'POLICY' ? 'sample' : 'score'}() for ${update.model} ${update.version}`;
  if (handle.version !== update.version) {
    return `loader returned version ${handle.version} for update ${update.model} ${update.version}; expected the update's version`;
  }
  return null;
}
