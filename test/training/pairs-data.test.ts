import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readPreferencePairs, splitHoldout } from '../../src/training/pairs-data';
import { UsageError } from '../../src/util/errors';

const directory = mkdtempSync(join(tmpdir(), 'tsalign-pairs-'));
after(() => rmSync(directory, { recursive: true, force: true }));

function writeLines(name: string, lines: string[], gzip = false): string {
  const path = join(directory, name);
  const text = lines.join('\n') + '\n';
  writeFileSync(path, gzip ? gzipSync(text) : text);
  return path;
}

const plainRecords = [
  JSON.stringify({ prompt: 'p1', chosen: 'c1', rejected: 'r1' }),
  '',
  JSON.stringify({ prompt: 'p2', chosen: 'c2', rejected: 'r2', margin: 0.5 }),
  JSON.stringify({ prompt: 'p3', chosen: 'c3', rejected: 'r3' }),
];

describe('readPreferencePairs', () => {
  test('reads plain pairs with line numbers', async () => {
    const pairs = await readPreferencePairs(writeLines('plain.jsonl', plainRecords));
    assert.deepEqual(pairs, [
      { prompt: 'p1', chosen: 'c1', rejected: 'r1', line: 1 },
      { prompt: 'p2', chosen: 'c2', rejected: 'r2', margin: 0.5, line: 3 },
      { prompt: 'p3', chosen: 'c3', rejected: 'r3', line: 4 },
    ]);
  });

  test('detects gzip by magic bytes', async () => {
    // The name says nothing about compression on purpose.
    const pairs = await readPreferencePairs(writeLines('pairs.data', plainRecords, true));
    assert.equal(pairs.length, 3);
    assert.equal(pairs[2]!.chosen, 'c3');
  });

  test('skip and limit count records', async () => {
    const path = writeLines('window.jsonl', plainRecords);
    const pairs = await readPreferencePairs(path, { skip: 1, limit: 1 });
    assert.deepEqual(pairs.map((pair) => pair.prompt), ['p2']);
    const rest = await readPreferencePairs(path, { skip: 1 });
    assert.deepEqual(rest.map((pair) => pair.prompt), ['p2', 'p3']);
  });

  test('splits HH-RLHF dialogues', async () => {
    const prompt = '\n\nHuman: Can you help?\n\nAssistant:';
    const path = writeLines('hh.jsonl', [JSON.stringify({ chosen: `${prompt} Sure.`, rejected: `${prompt} No.` })], true);
    const [pair] = await readPreferencePairs(path);
    assert.equal(pair!.prompt, prompt);
    assert.equal(pair!.chosen, 'Sure.');
    assert.equal(pair!.rejected, 'No.');
  });

  test('names the line of a malformed record', async () => {
    const badJson = writeLines('bad-json.jsonl', [plainRecords[0]!, '{"prompt": "p", "chosen": ']);
    await assert.rejects(readPreferencePairs(badJson), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /bad-json\.jsonl:2: invalid JSON/);
      return true;
    });
    const missing = writeLines('missing.jsonl', [plainRecords[0]!, JSON.stringify({ prompt: 'p', chosen: 'c' })]);
    await assert.rejects(readPreferencePairs(missing), /missing\.jsonl:2: missing string field "rejected"/);
    const notHh = writeLines('not-hh.jsonl', [JSON.stringify({ chosen: 'a', rejected: 'b' })]);
    await assert.rejects(readPreferencePairs(notHh), /not-hh\.jsonl:1: record has no "prompt" and is not a valid HH-RLHF dialogue pair/);
    const badMargin = writeLines('bad-margin.jsonl', [JSON.stringify({ prompt: 'p', chosen: 'c', rejected: 'r', margin: 'big' })]);
    await assert.rejects(readPreferencePairs(badMargin), /bad-margin\.jsonl:1: field "margin" must be a finite number, got string/);
  });

  test('reports a missing file', async () => {
    await assert.rejects(readPreferencePairs(join(directory, 'absent.jsonl')), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /pairs file not found: .*absent\.jsonl/);
      return true;
    });
  });
});

describe('splitHoldout', () => {
  test('is seeded and keeps file order', () => {
    const items = Array.from({ length: 20 }, (_, i) => i);
    const first = splitHoldout(items, 0.25, 7);
    const again = splitHoldout(items, 0.25, 7);
    const other = splitHoldout(items, 0.25, 8);
    assert.equal(first.validation.length, 5);
    assert.equal(first.train.length, 15);
    assert.deepEqual(again, first);
    assert.notDeepEqual(other.validation, first.validation);
    assert.deepEqual([...first.validation].sort((a, b) => a - b), first.validation);
    assert.deepEqual([...first.train, ...first.validation].sort((a, b) => a - b), items);
  });

  test('rejects a fraction of 1', () => {
    assert.throws(() => splitHoldout([1, 2], 1, 0), /holdout fraction must be in \[0, 1\), got 1/);
  });
});
