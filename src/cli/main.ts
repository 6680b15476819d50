import { Command, CommanderError } from 'commander';
import { commandRegistrars } from './commands/index';
import { UsageError, errorMessage } from '../util/errors';
import { rootLogger } from '../util/logger';
import { tsalignVersion } from '../version';

/** Exit codes of the command line: 0 success, 1 run-time failure, 2 invalid usage or input. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Builds the `tsalign` program with every registered subcommand. */
export function buildProgram(): Command {
  const program = new Command('tsalign')
    .description('Align a policy model with a student reward model distilled from a teacher (TS-Align), as a streaming dataflow.')
    .version(tsalignVersion())
    .showHelpAfterError()
    .exitOverride();
  for (const register of commandRegistrars) register(program);
  return program;
}

/** Maps an error to an exit code and prints it on stderr. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) {
    return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  if (error instanceof UsageError) {
    process.stderr.write(`tsalign: ${error.message}\n`);
    return EXIT_USAGE;
  }
  process.stderr.write(`tsalign: ${errorMessage(error)}\n`);
  rootLogger().debug({ err: error }, 'command failed');
  return EXIT_FAILURE;
}

/** Runs the command line and sets the process exit code. */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
    process.exitCode ??= EXIT_OK;
  } catch (error) {
    process.exitCode = exitCodeFor(error);
  }
}
