import { BehaviorSubject, Observable, type MonoTypeOperatorFunction, filter, firstValueFrom } from 'rxjs';
import { UsageError } from '../util/errors';

/**
 * A credit counter that bounds how many prompts are inside the chain at once.
 *
 * The chain takes a credit when a prompt enters `sample` and returns it when the prompt's
 * outcome is emitted. A source pauses by awaiting `whenAvailable()` before it hands over the
 * next prompt, or by pausing its consumer while `available$` is 0. A source that pushes
 * anyway does not break the bound: the extra prompts wait in the queue of `admit`, ahead of
 * every stage.
 */
export class InFlightLimit {
  // Prompts admitted and not yet released.
  private admitted = 0;
  // Free credits, for sources that watch the limit.
  private readonly free: BehaviorSubject<number>;

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new UsageError(`maxInFlight must be an integer >= 1, got ${max}`);
    this.free = new BehaviorSubject(max);
  }

  get inFlight(): number {
    return this.admitted;
  }

  /** Free credits now and on every change. */
  get available$(): Observable<number> {
    return this.free.asObservable();
  }

  /** Resolves once at least one credit is free. */
  whenAvailable(): Promise<number> {
    return firstValueFrom(this.free.pipe(filter((count) => count > 0)));
  }

  /** Takes a credit when one is free; returns whether it did. */
  tryAcquire(): boolean {
    if (this.admitted >= this.max) return false;
    this.admitted += 1;
    this.free.next(this.max - this.admitted);
    return true;
  }

  release(count = 1): void {
    this.admitted = Math.max(0, this.admitted - count);
    this.free.next(this.max - this.admitted);
  }
}

/**
 * Lets an item through only while `limit` has a credit; the others wait in arrival order.
 * The caller returns each credit with `limit.release()`, also for items it drops when it
 * unsubscribes. Completes once the source has completed and the queue is empty.
 *
 * ```
 * source (max 2):   abc------|
 * admit(limit):     ab---c---|      c enters when a's credit is released at frame 5
 * ```
 */
export function admit<T>(limit: InFlightLimit): MonoTypeOperatorFunction<T> {
  return (source) =>
    new Observable<T>((subscriber) => {
      // Items waiting for a credit, oldest first.
      const queue: T[] = [];
      let sourceDone = false;
      // Set while `drain` runs. A release caused by an item `drain` is emitting calls
      // `drain` again; the call then only sets `drainAgain`, so the stack stays flat.
      let draining = false;
      let drainAgain = false;

      const drain = (): void => {
        if (draining) {
          drainAgain = true;
          return;
        }
        draining = true;
        do {
          drainAgain = false;
          while (queue.length > 0 && !subscriber.closed && limit.tryAcquire()) {
            subscriber.next(queue.shift() as T);
          }
        } while (drainAgain);
        draining = false;
        if (sourceDone && queue.length === 0) subscriber.complete();
      };

      const credits = limit.available$.subscribe(() => drain());
      const upstream = source.subscribe({
        next: (value) => {
          queue.push(value);
          drain();
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          sourceDone = true;
          drain();
        },
      });

      return () => {
        upstream.unsubscribe();
        credits.unsubscribe();
        queue.length = 0;
      };
    });
}
