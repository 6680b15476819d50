/**
 * `npm run bench`: runs every benchmark part in one process and prints each part's figures on
 * stdout. Parts: transport throughput, policy sampling per backend, DPO step time per backend,
 * the chain's own overhead, and the teacher-load curve of the confidence gate.
 *
 * Pass part names to run a subset: `npm run bench -- sampling training`.
 */
import { BACKEND_CHOICES } from '../src/models/backend';
import { errorMessage } from '../src/util/errors';
import { benchChainOverhead } from './chain';
import { benchSampling } from './models';
import { benchTraining } from './training';
import { benchTransport } from './transport';

const PARTS = ['transport', 'sampling', 'training', 'chain'] as const;
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

  if (parts.includes('transport')) {
    console.log('\n## transport');
    await benchTransport();
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
    await benchChainOverhead();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
