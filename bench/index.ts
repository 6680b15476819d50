/**
 * `npm run bench`: runs every benchmark part in one process and prints each part's figures on
 * stdout. Parts: transport throughput, policy sampling per backend, DPO step time per backend,
 * the chain's own overhead, and the teacher-load curve of the confidence gate. When both the
 * transport and the chain part run, it also prints the chain's prompts/s as a ratio of each
 * transport's tsalign records/s.
 *
 * Pass part names to run a subset: `npm run bench -- sampling training`.
 */
import { BACKEND_CHOICES } from '../src/models/backend';
import { errorMessage } from '../src/util/errors';
import { benchChainOverhead } from './chain';
import { benchSampling } from './models';
import { benchTraining } from './training';
import { benchTeacherLoad } from './teacher-load';
import { type TransportBenchRow, benchTransport } from './transport';

const PARTS = ['transport', 'sampling', 'training', 'chain', 'teacher-load'] as const;
type Part = (typeof PARTS)[number];

function selectedParts(argv: string[]): Part[] {
  if (argv.length === 0) return [...PARTS];
  for (const name of argv) {
    if (!(PARTS as readonly string[]).includes(name)) {
      throw new Error(`unknown bench part "${name}"; choose from ${PARTS.join(', ')}`);
    }
  }
  return argv as Part[];
}

async function main(): Promise<void> {
  const parts = selectedParts(process.argv.slice(2));
  console.log(`tsalign bench: ${parts.join(', ')} (node ${process.version}, ${process.platform}/${process.arch})`);

  let transportRows: TransportBenchRow[] = [];
  if (parts.includes('transport')) {
    console.log('\n## transport');
    transportRows = await benchTransport();
  }
  if (parts.includes('sampling')) {
    console.log('\n## sampling');
    for (const backend of BACKEND_CHOICES) {
      try {
        await benchSampling(backend);
      } catch (error) {
        console.log(`sampling/${backend}: skipped (${errorMessage(error)})`);
      }
    }
  }
  if (parts.includes('training')) {
    console.log('\n## training');
    await benchTraining();
  }
  if (parts.includes('chain')) {
    console.log('\n## chain');
    const chain = await benchChainOverhead();
    for (const row of transportRows) {
      // One prompt costs the transport up to four records: the prompt read, its candidate set, a
      // judgment when the teacher decides, and a pair. Above a ratio of about 1/4 the transport
      // rather than the chain bounds a run with fast models.
      console.log(
        `chain vs ${row.transport} transport: ${chain.promptsPerSecond.toFixed(0)} prompts/s / ${row.tsalignPerSecond.toFixed(0)} records/s = ` +
          `${(chain.promptsPerSecond / row.tsalignPerSecond).toFixed(2)}`,
      );
    }
  }
  if (parts.includes('teacher-load')) {
    console.log('\n## teacher-load');
    await benchTeacherLoad();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
