import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join, resolve } from 'node:path';
import { runCli, startCli, tempDir, messages, waitForOutput, REPO_ROOT } from './feed-cli';
import { kafkaBrokersOrSkip, uniqueTopicName } from '../helpers/kafka';
import { splitHhDialogue } from '../../src/ingest/hh-rlhf';

const HH_FILE = resolve(REPO_ROOT, '..', 'shared', 'data', 'hh-rlhf-harmless-test.jsonl.gz');
const kafka = kafkaBrokersOrSkip();
const temp = tempDir('tsalign-feed-cli-');
after(() => temp.remove());

let caseCounter = 0;
/** Common flags of a fresh, isolated store on each transport. */
const transports = [
  {
    name: 'embedded',
    skip: undefined as string | undefined,
    flags: () => ['--data-dir', join(temp.dir, `data-${++caseCounter}`)],
  },
  {
    name: 'kafka',
    skip: kafka.skip,
    flags: () => ['--brokers', kafka.brokers ?? '', '--topic-prefix', `${uniqueTopicName('feedcli')}.`],
  },
];

function inputFile(name: string, content: string | Buffer): string {
  const path = join(temp.dir, name);
  writeFileSync(path, content);
  return path;
}

/** Reads a topic to its end offsets as decoded JSON objects. */
async function tapAll(flags: string[], topic: string): Promise<Array<Record<string, unknown>>> {
  const tap = await runCli(['tap', topic, '--to-end', '--format', 'json', ...flags]);
  assert.equal(tap.code, 0, tap.stderr);
  return tap.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

for (const transport of transports) {
  describe(`feed on ${transport.name}`, { skip: transport.skip }, () => {
    test('keeps records before a bad line and exits 2', async () => {
      const flags = transport.flags();
      const file = inputFile(`bad-${transport.name}.jsonl`, '{"text": "first"}\n{"text": "second"}\n{"text": "third",}\n{"text": "fourth"}\n');
      const fed = await runCli(['feed', file, '--source', 'unit', '--tag', 'a', '--tag', 'b', ...flags]);
      assert.equal(fed.code, 2, fed.stderr);
      const lines = messages(fed.stderr);
      assert.match(lines.join('\n'), /tsalign feed: 2 accepted, 0 skipped, 0 dead-lettered, 0 duplicates \(format jsonl, topic .*prompts\)/);
      assert.match(
        lines.join('\n'),
        /tsalign: line 3 \(byte offset 37\): invalid JSON \(.*\): "\{\\"text\\": \\"third\\",\}"; fix the line, pass --format text .*; the 2 prompts before it were produced/,
      );

      const records = await tapAll(flags, 'prompts');
      assert.deepEqual(records.map((record) => record.text).sort(), ['first', 'second']);
      assert.deepEqual(records[0].tags, ['a', 'b']);
      assert.equal(records[0].source, 'unit');
      assert.equal(typeof records[0].createdAt, 'number', 'safe bigints print as JSON numbers');
    });

    test('skips or dead-letters bad lines', async () => {
      const flags = transport.flags();
      const file = inputFile(`mixed-${transport.name}.txt`, 'good one\n\n   \ngood two\ngood one\n');
      const big = inputFile(`big-${transport.name}.jsonl`, `{"text": "ok"}\n{"text": "${'x'.repeat(40)}"}\n{"body": "no text"}\n`);

      const skipped = await runCli(['feed', big, '--on-error', 'skip', '--max-prompt-bytes', '20', ...flags]);
      assert.equal(skipped.code, 0, skipped.stderr);
      assert.match(skipped.stderr, /1 accepted, 2 skipped, 0 dead-lettered/);

      const lettered = await runCli(['feed', big, '--on-error', 'dlq', '--max-prompt-bytes', '20', ...flags]);
      assert.equal(lettered.code, 0, lettered.stderr);
      assert.match(lettered.stderr, /1 accepted, 0 skipped, 2 dead-lettered/);
      const letters = await tapAll(flags, 'dlq');
      assert.equal(letters.length, 2);
      assert.match(String(letters[0].error), /^line 2 \(byte offset 15\): prompt is 40 bytes, over the limit of 20/);
      assert.equal(Buffer.from(String(letters[1].value), 'base64').toString(), '{"body": "no text"}');
      assert.match(String(letters[1].error), /missing text field "text" or "prompt" \(the object has keys: body\)/);

      const text = await runCli(['feed', file, '--format', 'text', ...flags]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stderr, /3 accepted, 0 skipped, 0 dead-lettered, 1 duplicates/);
    });
  });
}

describe('feed errors', () => {
  test('missing topic names the create command', async () => {
    const file = inputFile('one.txt', 'hello\n');
    const fed = await runCli(['feed', file, '--no-create-topics', '--data-dir', join(temp.dir, 'no-topics')]);
    assert.equal(fed.code, 2);
    assert.match(fed.stderr, /tsalign: topic tsalign\.prompts does not exist on .*no-topics; create the topics with `tsalign topics create`/);
  });

  test('creates missing topics by default', async () => {
    const flags = ['--data-dir', join(temp.dir, 'created-topics')];
    const file = inputFile('two.txt', 'hello\nworld\n');
    const refused = await runCli(['feed', file, '--no-create-topics', ...flags]);
    assert.equal(refused.code, 2, refused.stderr);
    const before = await runCli(['topics', 'list', '--json', ...flags]);
    const existing = (listed: string) => (JSON.parse(listed) as { topics: Array<{ name: string; exists: boolean }> }).topics.filter((row) => row.exists).map((row) => row.name);
    assert.deepEqual(existing(before.stdout), []);

    const fed = await runCli(['feed', file, ...flags]);
    assert.equal(fed.code, 0, fed.stderr);
    const after = await runCli(['topics', 'list', '--json', ...flags]);
    assert.deepEqual(existing(after.stdout), ['prompts', 'candidates', 'judgments', 'pairs', 'model-updates', 'rounds', 'metrics', 'dlq']);
    const records = await tapAll(flags, 'prompts');
    assert.deepEqual(records.map((record) => record.text).sort(), ['hello', 'world']);
  });

  test('missing file and bad flags exit 2', async () => {
    const missing = await runCli(['feed', join(temp.dir, 'nope.txt'), '--data-dir', join(temp.dir, 'unused')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot open input file ".*nope.txt": ENOENT/);
    const rate = await runCli(['feed', '-', '--rate', '0', '--data-dir', join(temp.dir, 'unused')]);
    assert.equal(rate.code, 2);
    assert.match(rate.stderr, /invalid --rate "0": give a number greater than 0/);
    const format = await runCli(['feed', '-', '--format', 'xml']);
    assert.equal(format.code, 2);
    assert.match(format.stderr, /Allowed choices are auto, jsonl, json, text, hh-rlhf/);
  });

  test('unreachable broker exits 1 naming it', async () => {
    const fed = await runCli(['feed', '-', '--brokers', '127.0.0.1:1'], { input: 'hello\n' });
    assert.equal(fed.code, 1);
    assert.match(fed.stderr, /tsalign: cannot connect to Kafka brokers 127\.0\.0\.1:1: .*127\.0\.0\.1:1.*--brokers/);
  });

  test('invalid UTF-8 on stdin names the line', async () => {
    const dataDir = join(temp.dir, 'utf8');
    assert.equal((await runCli(['topics', 'create', '--data-dir', dataDir])).code, 0);
    const input = Buffer.concat([Buffer.from('fine\nbroken '), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]);
    const fed = await runCli(['feed', '-', '--data-dir', dataDir], { input });
    assert.equal(fed.code, 2);
    assert.match(fed.stderr, /line 2 \(byte offset 5\): invalid UTF-8: <62 72 6f 6b 65 6e 20 c3 28>; convert the input to UTF-8/);
    assert.match(fed.stderr, /1 accepted/);
  });
});

const hhSkip = existsSync(HH_FILE) ? undefined : `${HH_FILE} is absent`;

for (const transport of transports) {
  test(`HH-RLHF file feeds 2312 prompts on ${transport.name}`, { skip: transport.skip ?? hhSkip }, async () => {
    const flags = transport.flags();
    const fed = await runCli(['feed', HH_FILE, ...flags]);
    assert.equal(fed.code, 0, fed.stderr);
    assert.match(fed.stderr, /tsalign feed: 2312 accepted, 0 skipped, 0 dead-lettered, 2 duplicates \(format hh-rlhf/);

    const records = await tapAll(flags, 'prompts');
    assert.equal(records.length, 2312);
    const texts = new Set(records.map((record) => record.text));
    const lines = gunzipSync(readFileSync(HH_FILE)).toString('utf8').split('\n').filter((line) => line !== '');
    for (const index of [0, 1, 1000, 2311]) {
      const { chosen, rejected } = JSON.parse(lines[index]) as { chosen: string; rejected: string };
      const prompt = splitHhDialogue(chosen, rejected).prompt;
      assert.ok(texts.has(prompt), `prompt of line ${index + 1} is on the topic`);
    }
    assert.equal(records[0].source, 'hh-rlhf-harmless-test.jsonl.gz');
  });
}

test('follow reads appended lines until SIGINT', { skip: kafka.skip }, async () => {
  const flags = ['--brokers', kafka.brokers ?? '', '--topic-prefix', `${uniqueTopicName('follow')}.`];
  const file = inputFile('growing.txt', 'line one\n');
  const feed = startCli(['feed', file, '--follow', ...flags]);
  await waitForOutput(feed, 'stderr', 'feeding prompts');
  appendFileSync(file, 'line two\nline th');
  appendFileSync(file, 'ree\n');

  // Poll the topic until both appended lines arrived; the test's own timeout bounds the loop.
  for (;;) {
    const records = await tapAll(flags, 'prompts');
    if (records.length >= 3) {
      assert.deepEqual(records.map((record) => record.text).sort(), ['line one', 'line three', 'line two']);
      break;
    }
  }
  feed.child.kill('SIGINT');
  const result = await feed.result;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /3 accepted/);
});
