import type { Command } from 'commander';

/**
 * The subcommands of `tsalign`. Each module exports a function that adds its command to the
 * program; add a line here when you add a command.
 */
export const commandRegistrars: Array<(program: Command) => void> = [];
