/**
 * `tsalign worker --role chain|trainer|all`: long-running consumers of the topics. `chain`
 * turns prompts into candidates, judgments and pairs; `trainer` trains on pairs and judgments
 * and announces new models; `all` runs both in one process. Ctrl-C stops after the records in
 * flight are written and committed, and so does `--max-prompts N` once the chain has processed
 * N prompts. `--policy DIR` and `--student DIR` start from given checkpoints, such as the ones
 * `tsalign policy sft` and `tsalign rm fit` write.
 */
import { Option, type Command } from 'commander';
import { selectBackend } from '../../models/backend';
import { loadConfig, parseOverride, TEACHER_KINDS, type LoadedConfig } from '../../config';
import { WORKER_ROLES, runWorker, type WorkerRole } from '../../run/worker';
import { onShutdownSignal } from '../../streams/shutdown';
import { addCommonOptions, openTransport, parseWholeNumber, resolveCommonOptions, type CommonOptionValues } from '../common';

interface WorkerOptionValues extends CommonOptionValues {
  role: WorkerRole;
  policy?: string;
  student?: string;
  teacher?: string;
  set: string[];
  maxPrompts?: string;
}

export function registerWorker(program: Command): void {
  const command = program
    .command('worker')
    .description('Run a long-running worker: the operator chain, the trainer, or both.')
    .addOption(new Option('--role <role>', 'what this worker runs').choices([...WORKER_ROLES]).makeOptionMandatory())
    .option('--policy <dir>', 'policy checkpoint to start from (e.g. from tsalign policy sft), announced on model-updates')
    .option('--student <dir>', 'student reward-model checkpoint to start from (e.g. from tsalign rm fit), announced on model-updates')
    .addOption(new Option('--teacher <kind>', 'teacher that ranks shortlists (teacher.kind)').choices([...TEACHER_KINDS]))
    .option('--set <key=value>', 'set any configuration key, such as teacher.rewardModel.checkpoint=DIR; repeatable', (value: string, all: string[]) => [...all, value], [])
    .option('--max-prompts <n>', 'stop once the chain has processed N prompts (with --role chain or all)');
  addCommonOptions(command).action(async (values: WorkerOptionValues) => {
    const common = resolveCommonOptions(values);
    const config = workerConfig(values);
    const maxPrompts = values.maxPrompts === undefined ? undefined : parseWholeNumber('--max-prompts', values.maxPrompts, 1);
    const backend = await selectBackend();
    const transport = await openTransport({ ...common, config }, `tsalign-worker-${values.role}`);
    const controller = new AbortController();
    const shutdown = onShutdownSignal(() => controller.abort());
    const until = maxPrompts === undefined ? 'Ctrl-C stops' : `stops after ${maxPrompts} prompts or on Ctrl-C`;
    process.stderr.write(`tsalign worker ${values.role}: ${transport.kind} ${transport.address}, backend ${backend.name}, teacher ${config.config.teacher.kind}; ${until}\n`);
    try {
      await runWorker({
        transport,
        dataDir: common.dataDir,
        topicPrefix: common.topicPrefix,
        config,
        role: values.role,
        signal: controller.signal,
        ...(values.policy === undefined ? {} : { policy: values.policy }),
        ...(values.student === undefined ? {} : { student: values.student }),
        ...(maxPrompts === undefined ? {} : { maxPrompts }),
      });
    } finally {
      shutdown.dispose();
      await transport.close();
    }
  });
}

/**
 * Builds the configuration from --config, then --teacher and every --set as one override, so
 * that settings which only make sense together (teacher.kind=reward-model and its checkpoint)
 * are checked together.
 */
export function workerConfig(values: Pick<WorkerOptionValues, 'config' | 'teacher' | 'set'>): LoadedConfig {
  const assignments = [...(values.teacher === undefined ? [] : [`teacher.kind=${values.teacher}`]), ...values.set];
  const merged: Record<string, unknown> = {};
  for (const assignment of assignments) mergeInto(merged, parseOverride(assignment));
  return loadConfig({ file: values.config, overrides: assignments.length === 0 ? [] : [merged] });
}

function mergeInto(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    const existing = target[key];
    if (typeof value === 'object' && value !== null && typeof existing === 'object' && existing !== null) {
      mergeInto(existing as Record<string, unknown>, value as Record<string, unknown>);
    } else {
      target[key] = value;
    }
  }
}
