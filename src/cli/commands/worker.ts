/**
 * `tsalign worker --role chain|trainer|all`: long-running consumers of the topics. `chain`
 * turns prompts into candidates, judgments and pairs; `trainer` trains on pairs and judgments
 * and announces new models; `all` runs both in one process. Ctrl-C stops after the records in
 * flight are written and committed.
 */
import { Option, type Command } from 'commander';
import { selectBackend } from '../../models/backend';
import { WORKER_ROLES, runWorker, type WorkerRole } from '../../run/worker';
import { onShutdownSignal } from '../../streams/shutdown';
import { addCommonOptions, openTransport, resolveCommonOptions, type CommonOptionValues } from '../common';

interface WorkerOptionValues extends CommonOptionValues {
  role: WorkerRole;
}

export function registerWorker(program: Command): void {
  const command = program
    .command('worker')
    .description('Run a long-running worker: the operator chain, the trainer, or both.')
    .addOption(new Option('--role <role>', 'what this worker runs').choices([...WORKER_ROLES]).makeOptionMandatory());
  addCommonOptions(command).action(async (values: WorkerOptionValues) => {
    const common = resolveCommonOptions(values);
    const backend = await selectBackend();
    const transport = await openTransport(common, `tsalign-worker-${values.role}`);
    const controller = new AbortController();
    const shutdown = onShutdownSignal(() => controller.abort());
    process.stderr.write(`tsalign worker ${values.role}: ${transport.kind} ${transport.address}, backend ${backend.name}; Ctrl-C stops\n`);
    try {
      await runWorker({ transport, dataDir: common.dataDir, topicPrefix: common.topicPrefix, config: common.config, role: values.role, signal: controller.signal });
    } finally {
      shutdown.dispose();
      await transport.close();
    }
  });
}
