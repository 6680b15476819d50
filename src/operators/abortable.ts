import { Observable, type ObservableInput, from } from 'rxjs';

/**
 * Calls `call` with a fresh AbortSignal on each subscription and mirrors its result.
 * Unsubscribing before the result settles aborts the signal: this is how a timeout or a
 * shutdown cancels a model or teacher call. A synchronous throw becomes an error
 * notification.
 *
 * ```
 * callAbortable(signal => teacher.rank(prompt, shortlist, signal)).pipe(timeout(30_000))
 * ```
 */
export function callAbortable<T>(call: (signal: AbortSignal) => ObservableInput<T>): Observable<T> {
  return new Observable<T>((subscriber) => {
    const controller = new AbortController();
    // True once the call has delivered a result or failed; only a pending call is aborted.
    let settled = false;

    let input: ObservableInput<T>;
    try {
      input = call(controller.signal);
    } catch (error) {
      settled = true;
      subscriber.error(error);
      return;
    }

    const inner = from(input).subscribe({
      next: (value) => {
        // Set before forwarding: a downstream take(1) unsubscribes inside this call.
        settled = true;
        subscriber.next(value);
      },
      error: (error: unknown) => {
        settled = true;
        subscriber.error(error);
      },
      complete: () => {
        settled = true;
        subscriber.complete();
      },
    });

    return () => {
      inner.unsubscribe();
      if (!settled) controller.abort();
    };
  });
}
