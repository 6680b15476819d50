/**
 * Graceful stop on SIGINT and SIGTERM for long-running commands.
 *
 * The first signal calls `stop`, which should stop fetching, let records in flight finish and
 * commit. The command then closes its transport and returns, so the process exits with code 0.
 * A second signal exits at once with code 130, the shell's code for an interrupt. A repeat
 * within `SIGNAL_DEBOUNCE_MS` of the first counts as the same interrupt: under `npx`, Ctrl-C
 * reaches the command twice, once from the terminal and once forwarded by npm.
 */
import { childLogger } from '../util/logger';
import { errorMessage } from '../util/errors';

export const EXIT_INTERRUPTED = 130;
export const SIGNAL_DEBOUNCE_MS = 1000;
const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

export interface ShutdownHandle {
  /** True once a signal arrived. */
  readonly requested: boolean;
  /** Aborts on the first signal, for code that takes an AbortSignal. */
  readonly signal: AbortSignal;
  /** Removes the signal handlers. */
  dispose(): void;
}

/**
 * Installs SIGINT and SIGTERM handlers that call `stop` on the first signal and exit with
 * code 130 on a second one that comes `SIGNAL_DEBOUNCE_MS` or more later. `exit` and the clock
 * `now` are replaceable for tests.
 */
export function onShutdownSignal(
  stop: () => void | Promise<void>,
  exit: (code: number) => void = (code) => process.exit(code),
  now: () => number = Date.now,
): ShutdownHandle {
  const log = childLogger('shutdown');
  const controller = new AbortController();
  let requested = false;
  let firstSignalAt = 0;

  const handler = (signal: NodeJS.Signals): void => {
    if (requested) {
      if (now() - firstSignalAt < SIGNAL_DEBOUNCE_MS) return;
      log.warn({ signal }, 'second signal, exiting at once');
      exit(EXIT_INTERRUPTED);
      return;
    }
    requested = true;
    firstSignalAt = now();
    log.info({ signal }, 'stopping: finishing records in flight, press Ctrl-C again to exit at once');
    controller.abort();
    Promise.resolve()
      .then(stop)
      .catch((error: unknown) => log.error({ err: errorMessage(error) }, 'graceful stop failed'));
  };
  for (const signal of SIGNALS) process.on(signal, handler);

  return {
    get requested() {
      return requested;
    },
    signal: controller.signal,
    dispose: () => {
      for (const signal of SIGNALS) process.off(signal, handler);
    },
  };
}
