import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli, tempDir } from './feed-cli';
import { kafkaBrokersOrSkip, uniqueTopicName } from '../helpers/kafka';

const temp = tempDir('tsalign-topics-cli-');
after(() => temp.remove());
const kafka = kafkaBrokersOrSkip();

const transports = [
  { name: 'embedded', skip: undefined, flags: ['--data-dir', join(temp.dir, 'data')] },
  { name: 'kafka', skip: kafka.skip, flags: ['--brokers', kafka.brokers ?? '', '--topic-prefix', `${uniqueTopicName('topicscli')}.`] },
];

interface Listing {
  topics: Array<{ name: string; exists: boolean; partitions: number; endOffsets: number[]; records: number }>;
}

for (const transport of transports) {
  test(`topics list and create on ${transport.name}`, { skip: transport.skip }, async () => {
    const before = await runCli(['topics', 'list', '--json', ...transport.flags]);
    assert.equal(before.code, 0, before.stderr);
    const missing = JSON.parse(before.stdout) as Listing;
    assert.equal(missing.topics.length, 8);
    assert.ok(missing.topics.every((topic) => !topic.exists));

    const created = await runCli(['topics', 'create', '--partitions', '2', '--json', ...transport.flags]);
    assert.equal(created.code, 0, created.stderr);
    const listing = JSON.parse(created.stdout) as Listing;
    const partitions = Object.fromEntries(listing.topics.map((topic) => [topic.name, topic.partitions]));
    assert.deepEqual(partitions, { prompts: 2, candidates: 2, judgments: 2, pairs: 2, 'model-updates': 1, rounds: 1, metrics: 2, dlq: 2 });

    const fed = await runCli(['feed', '-', ...transport.flags], { input: 'one\ntwo\nthree\n' });
    assert.equal(fed.code, 0, fed.stderr);
    const table = await runCli(['topics', ...transport.flags]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /prompts +2 +3 +0:\d+ 1:\d+\n/);
    assert.match(table.stdout, /model-updates +1 +0 +0:0\n/);
  });
}

test('topics rejects an unknown action', async () => {
  const result = await runCli(['topics', 'drop']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /unknown action "drop" for tsalign topics; use list or create/);
});
