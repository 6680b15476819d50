/**
 * `npm run kafka:start` / `npm run kafka:stop`: runs a local single-node Kafka broker.
 *
 * Usage: cli.ts start [--state-dir DIR] [--json]
 *        cli.ts stop  [--state-dir DIR]
 * `start` prints the bootstrap address on stdout (with `--json`, the whole broker.json record);
 * progress goes to stderr.
 */
import { DEFAULT_STATE_DIR, startBroker, stopBroker } from './broker';

interface CliArgs {
  command: string | undefined;
  stateDir: string;
  json: boolean;
}

function parseArgs(argv: string[]): CliArgs {
  const args: CliArgs = { command: undefined, stateDir: DEFAULT_STATE_DIR, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') args.json = true;
    else if (arg === '--state-dir') {
      const value = argv[++i];
      if (!value) throw new Error('--state-dir needs a directory');
      args.stateDir = value;
    } else if (args.command === undefined && !arg.startsWith('-')) args.command = arg;
    else throw new Error(`unknown argument "${arg}"; usage: cli.ts start|stop [--state-dir DIR] [--json]`);
  }
  return args;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  switch (args.command) {
    case 'start': {
      const info = await startBroker({
        stateDir: args.stateDir,
        progress: (line) => process.stderr.write(`kafka: ${line}\n`),
      });
      if (args.json) {
        process.stdout.write(`${JSON.stringify(info)}\n`);
      } else {
        process.stderr.write(
          `kafka: ${info.reused ? 'already running' : 'started'} (pid ${info.pid}, log ${info.logFile})\n` +
            `kafka: use it with --brokers ${info.brokers} or TSALIGN_BROKERS=${info.brokers}\n`,
        );
        process.stdout.write(`${info.brokers}\n`);
      }
      return 0;
    }
    case 'stop': {
      const stopped = await stopBroker({ stateDir: args.stateDir });
      process.stderr.write(stopped ? 'kafka: stopped\n' : `kafka: no running broker recorded in ${args.stateDir}\n`);
      return 0;
    }
    default:
      process.stderr.write('usage: cli.ts start|stop [--state-dir DIR] [--json]\n');
      return 2;
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`kafka: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
