import type { Command } from 'commander';
import { registerFeed } from './feed';
import { registerPolicy } from './policy';
import { registerReplay } from './replay';
import { registerRm } from './rm';
import { registerRun } from './run';
import { registerTap } from './tap';
import { registerTopics } from './topics';
import { registerWorker } from './worker';

/**
 * The subcommands of `tsalign`. Each module exports a function that adds its command to the
 * program; add a line here when you add a command.
 */
export const commandRegistrars: Array<(program: Command) => void> = [
  registerFeed,
  registerPolicy,
  registerReplay,
  registerRm,
  registerRun,
  registerTap,
  registerTopics,
  registerWorker,
];
