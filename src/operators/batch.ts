import {
  Observable,
  type ObservableInput,
  type OperatorFunction,
  type SchedulerLike,
  type Subscription,
  catchError,
  concatMap,
  defer,
  from,
  mergeMap,
  of,
  take,
  throwIfEmpty,
} from 'rxjs';
import { errorMessage } from '../util/errors';
import { callAbortable } from './abortable';
import { type Flow, type StageName, bypassDeadLetters, deadLetter, type ChainItem } from './types';

/**
 * Collects items into batches of at most `maxSize`, emitting a batch when it is full or
 * `windowMs` after its first item arrived, whichever comes first. Unlike `bufferTime`, no
 * window runs while nothing is buffered, so there are no empty batches and an idle stream
 * schedules nothing. On completion the partial batch is emitted; on error it is dropped.
 *
 * ```
 * source:              -a-b-c-d-------e-|
 * batch(3, 5):         -----(x)----y----(z|)     x = [a, b, c], y = [d], z = [e]
 * ```
 *
 * Example: `of(1, 2, 3, 4, 5).pipe(batch(2, 10))` emits `[1, 2]`, `[3, 4]`, `[5]`.
 */
export function batch<T>(maxSize: number, windowMs: number, scheduler: SchedulerLike): OperatorFunction<T, T[]> {
  return (source) =>
    new Observable<T[]>((subscriber) => {
      // Items of the open batch, in arrival order.
      let buffer: T[] = [];
      // Closes the open batch when its window ends; null while nothing is buffered.
      let windowTimer: Subscription | null = null;

      const emitBatch = (): void => {
        windowTimer?.unsubscribe();
        windowTimer = null;
        // Swap the buffer before emitting: a downstream consumer may push the next item
        // synchronously (the chain's credit counter does), and it belongs to a new batch.
        const full = buffer;
        buffer = [];
        if (full.length > 0) subscriber.next(full);
      };

      const upstream = source.subscribe({
        next: (value) => {
          buffer.push(value);
          if (buffer.length >= maxSize) emitBatch();
          else if (windowTimer === null) windowTimer = scheduler.schedule(emitBatch, windowMs);
        },
        error: (error: unknown) => {
          buffer = [];
          subscriber.error(error);
        },
        complete: () => {
          emitBatch();
          subscriber.complete();
        },
      });

      return () => {
        upstream.unsubscribe();
        windowTimer?.unsubscribe();
        buffer = [];
      };
    });
}

export interface BatchedStageOptions<T extends ChainItem, H, R, O> {
  stage: StageName;
  batchSize: number;
  batchWindowMs: number;
  scheduler: SchedulerLike;
  /** Reads the model handle once per batch, so a batch keeps the version it started with. */
  acquire: () => H;
  /** Runs one batch; resolves to one result per item, in item order. */
  run: (handle: H, items: T[], signal: AbortSignal) => ObservableInput<R[]>;
  /** Builds one item's output from its result; a throw dead-letters that item alone. */
  complete: (item: T, result: R, handle: H) => O;
}

/**
 * Runs a model over batches of items, one batch at a time, and turns failures into dead
 * letters. When a batch of several items fails, each item is retried alone with the same
 * handle, so only the prompts that fail by themselves become dead letters. Unsubscribing
 * aborts the running call.
 */
export function batchedStage<T extends ChainItem, H, R, O>(
  options: BatchedStageOptions<T, H, R, O>,
): OperatorFunction<Flow<T>, Flow<O>> {
  const { stage, scheduler } = options;

  const runOnce = (handle: H, items: T[]): Observable<Flow<O>> =>
    callAbortable((signal) => options.run(handle, items, signal)).pipe(
      take(1),
      throwIfEmpty(() => new Error(`${stage} produced no result for a batch of ${items.length} prompts`)),
      mergeMap((results) => {
        if (!Array.isArray(results) || results.length !== items.length) {
          const count = Array.isArray(results) ? results.length : typeof results;
          throw new Error(`${stage} returned ${count} results for ${items.length} prompts; expected one per prompt`);
        }
        return items.map((item, index) => completeItem(item, results[index] as R, handle));
      }),
    );

  const completeItem = (item: T, result: R, handle: H): Flow<O> => {
    try {
      return options.complete(item, result, handle);
    } catch (error) {
      return deadLetter(item, stage, errorMessage(error), scheduler.now());
    }
  };

  const runBatch = (items: T[]): Observable<Flow<O>> =>
    defer(() => {
      let handle: H;
      try {
        handle = options.acquire();
      } catch (error) {
        const at = scheduler.now();
        return from(items.map((item) => deadLetter(item, stage, errorMessage(error), at)));
      }
      const alone = (item: T): Observable<Flow<O>> =>
        runOnce(handle, [item]).pipe(
          catchError((error: unknown) => of(deadLetter(item, stage, errorMessage(error), scheduler.now()))),
        );
      return runOnce(handle, items).pipe(
        catchError((error: unknown) =>
          items.length === 1
            ? of(deadLetter(items[0] as T, stage, errorMessage(error), scheduler.now()))
            : from(items).pipe(concatMap(alone)),
        ),
      );
    });

  return bypassDeadLetters<T, O>((source) =>
    source.pipe(
      batch<T>(options.batchSize, options.batchWindowMs, scheduler),
      concatMap(runBatch),
    ),
  );
}

/** Lists what is wrong with the batching options of `sample` and `score`. */
export function batchingProblems(batchSize: number, batchWindowMs: number): string[] {
  const problems: string[] = [];
  if (!Number.isInteger(batchSize) || batchSize < 1) problems.push(`batchSize must be an integer >= 1, got ${batchSize}`);
  if (!Number.isFinite(batchWindowMs) || batchWindowMs < 0) {
    problems.push(`batchWindowMs must be a number >= 0, got ${batchWindowMs}`);
  }
  return problems;
}
