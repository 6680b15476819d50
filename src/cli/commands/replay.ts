/**
 * `tsalign replay --round N [--json] [--retrain]`: reproduces a recorded round and reports every
 * pair that differs. Exit code 0 only when everything matched, 1 when something differed, 2 for
 * a round that has no manifest.
 */
import type { Command } from 'commander';
import { replayRound, type PairDifference, type ReplayResult } from '../../replay/replay';
import { selectBackend } from '../../models/backend';
import { EXIT_FAILURE } from '../main';
import { addCommonOptions, openTransport, parseWholeNumber, resolveCommonOptions, type CommonOptionValues } from '../common';
import { setLogLevel } from '../../util/logger';

interface ReplayOptionValues extends CommonOptionValues {
  round: string;
  json?: boolean;
  retrain?: boolean;
}

export function registerReplay(program: Command): void {
  const command = program
    .command('replay')
    .description('Reproduce a recorded round: same prompts, models, seeds and config, teacher verdicts from the judgments topic; compare every pair.')
    .requiredOption('--round <n>', 'round to replay (1 is the first trained round)')
    .option('--retrain', "also re-run the round's training from the recorded pairs and compare the checkpoint hashes")
    .option('--json', 'print one JSON document on stdout');
  addCommonOptions(command).action(async (values: ReplayOptionValues) => {
    if (values.logLevel === undefined) setLogLevel('warn');
    const common = resolveCommonOptions(values);
    const round = parseWholeNumber('--round', values.round, 1);
    await selectBackend();
    const transport = await openTransport(common, 'tsalign-replay');
    let result: ReplayResult;
    try {
      result = await replayRound({ transport, topicPrefix: common.topicPrefix, dataDir: common.dataDir, round, retrain: values.retrain === true });
    } finally {
      await transport.close();
    }
    process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : formatReplay(result));
    if (!result.ok) process.exitCode = EXIT_FAILURE;
  });
}

function describePair(difference: PairDifference): string {
  const show = (label: string, pair: PairDifference['recorded']): string =>
    pair === null ? `    ${label}: no pair` : `    ${label}: ${pair.labeler} chosen ${JSON.stringify(pair.chosen)} rejected ${JSON.stringify(pair.rejected)} (${pair.id})`;
  return [`  ${difference.kind} pair for prompt ${difference.promptId}`, show('recorded', difference.recorded), show('replayed', difference.replayed)].join('\n');
}

/** Formats a replay result for people. */
export function formatReplay(result: ReplayResult): string {
  const lines = [
    `round ${result.round}: ${result.prompts} prompts, ${result.matched} pairs matched, ${result.different} different, ${result.missing} missing, ${result.extra} extra`,
  ];
  if (result.missingVerdicts > 0) lines.push(`  ${result.missingVerdicts} teacher verdicts were not in the judgments topic`);
  for (const difference of result.differences) lines.push(describePair(difference));
  if (result.retrain !== null) {
    const r = result.retrain;
    lines.push(`retrain: policy ${r.policyVersion} ${r.policySha256 === r.expectedPolicySha256 ? 'matches' : `differs (recorded ${r.expectedPolicySha256}, retrained ${r.policySha256})`}`);
    lines.push(`retrain: student ${r.studentVersion} ${r.studentSha256 === r.expectedStudentSha256 ? 'matches' : `differs (recorded ${r.expectedStudentSha256}, retrained ${r.studentSha256})`}`);
  }
  lines.push(result.ok ? 'replay matched' : 'replay differs');
  return `${lines.join('\n')}\n`;
}
