/**
 * `npm run bench`: runs each benchmark part in turn and prints its table on stdout.
 * Parts: transport throughput (bench/transport.ts).
 */
import { benchTransport } from './transport';

async function main(): Promise<void> {
  await benchTransport();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
