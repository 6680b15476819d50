import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePromptInputs, sniffFormat, type InputFormat, type InputItem, type ParseOptions } from '../../src/ingest/formats';
import { readPath, checkPath } from '../../src/ingest/fields';
import { openInput } from '../../src/ingest/input';
import { splitLines } from '../../src/ingest/lines';
import { promptIdOf, toPrompt } from '../../src/ingest/prompts';
import { UsageError } from '../../src/util/errors';

const defaults: ParseOptions = { maxPromptBytes: 65536 };

async function* chunksOf(...parts: Array<string | Buffer>): AsyncGenerator<Buffer> {
  for (const part of parts) yield typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
}

async function parse(input: string | Buffer, format: InputFormat, options: Partial<ParseOptions> = {}): Promise<InputItem[]> {
  const items: InputItem[] = [];
  for await (const item of parsePromptInputs(chunksOf(input), format, { ...defaults, ...options })) items.push(item);
  return items;
}

function texts(items: InputItem[]): string[] {
  return items.map((item) => (item.kind === 'prompt' ? item.prompt.text : `error: ${item.error.message}`));
}

function onlyError(items: InputItem[]) {
  const errors = items.flatMap((item) => (item.kind === 'error' ? [item.error] : []));
  assert.equal(errors.length, 1, `expected one error, got ${errors.length}`);
  return errors[0];
}

async function sniff(input: string | Buffer, split = 1): Promise<InputFormat> {
  const bytes = typeof input === 'string' ? Buffer.from(input) : input;
  const size = Math.ceil(bytes.length / split);
  const parts: Buffer[] = [];
  for (let start = 0; start < bytes.length; start += size) parts.push(bytes.subarray(start, start + size));
  const { format, chunks } = await sniffFormat(chunksOf(...parts));
  const back: Buffer[] = [];
  for await (const chunk of chunks) back.push(chunk);
  assert.deepEqual(Buffer.concat(back), bytes, 'sniffing must hand back every byte');
  return format;
}

describe('sniffFormat', () => {
  test('detects each format', async () => {
    assert.equal(await sniff('  [{"text": "a"}]'), 'json');
    assert.equal(await sniff('{"text": "a"}\n{"text": "b"}\n'), 'jsonl');
    assert.equal(await sniff('"a quoted line"\n'), 'jsonl');
    assert.equal(await sniff('{"chosen": "\\n\\nHuman: a\\n\\nAssistant: b", "rejected": "x"}\n'), 'hh-rlhf');
    assert.equal(await sniff('hello world\nsecond line\n'), 'text');
    assert.equal(await sniff('"quoted" then text\n'), 'text');
    assert.equal(await sniff(''), 'text');
  });

  test('waits for the first whole line across chunks', async () => {
    assert.equal(await sniff('\n\n{"chosen": "a", "rejected": "b"}\n{"x": 1}\n', 7), 'hh-rlhf');
  });

  test('treats a malformed first object as JSON lines', async () => {
    assert.equal(await sniff('{"text": "a",}\n'), 'jsonl');
  });

  test('skips a byte order mark', async () => {
    assert.equal(await sniff(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('[1]')])), 'json');
  });
});

describe('parsePromptInputs', () => {
  test('reads text lines and skips blank ones', async () => {
    const items = await parse('first prompt\r\n\n   \nsecond prompt', 'text');
    assert.deepEqual(texts(items), ['first prompt', 'second prompt']);
    const second = items[1];
    assert.equal(second.kind, 'prompt');
    if (second.kind === 'prompt') assert.deepEqual(second.prompt.location, { line: 4, byteOffset: 19 });
  });

  test('reads JSON lines by default field names', async () => {
    const items = await parse('{"text": "from text"}\n{"prompt": "from prompt"}\n"a string"\n', 'jsonl');
    assert.deepEqual(texts(items), ['from text', 'from prompt', 'a string']);
  });

  test('reads text and id by dotted path', async () => {
    const line = JSON.stringify({ messages: [{ content: 'deep text' }], meta: { id: 42 } });
    const [item] = await parse(line, 'jsonl', { textField: 'messages.0.content', idField: 'meta.id' });
    assert.equal(item.kind, 'prompt');
    if (item.kind === 'prompt') {
      assert.equal(item.prompt.text, 'deep text');
      assert.equal(item.prompt.id, '42');
    }
  });

  test('reads a JSON array of objects and strings', async () => {
    const items = await parse('[{"text": "one"}, "two"]', 'json');
    assert.deepEqual(texts(items), ['one', 'two']);
    const first = items[0];
    if (first.kind === 'prompt') assert.deepEqual(first.prompt.location, { element: 0 });
  });

  test('splits HH-RLHF records into prompt and replies', async () => {
    const prompt = '\n\nHuman: hi\n\nAssistant:';
    const line = JSON.stringify({ chosen: `${prompt} hello`, rejected: `${prompt} go away` });
    const [item] = await parse(`${line}\n`, 'hh-rlhf');
    assert.equal(item.kind, 'prompt');
    if (item.kind === 'prompt') {
      assert.equal(item.prompt.text, prompt);
      assert.deepEqual(item.prompt.meta, { 'hh.chosen': 'hello', 'hh.rejected': 'go away' });
    }
  });

  test('keeps records after a bad line', async () => {
    const items = await parse('{"text": "a"}\n{"text": \n{"text": "c"}\n', 'jsonl');
    assert.deepEqual(texts(items).map((text) => text.slice(0, 13)), ['a', 'error: line 2', 'c']);
  });
});

describe('parsePromptInputs errors', () => {
  test('malformed JSON line names line, offset and value', async () => {
    const error = onlyError(await parse('{"text": "ok"}\n{"text": "a",}\n', 'jsonl'));
    assert.match(error.message, /^line 2 \(byte offset 15\): invalid JSON \(.+\): "\{\\"text\\": \\"a\\",\}"; fix the line/);
    assert.ok(error instanceof UsageError);
    assert.deepEqual(error.raw, Buffer.from('{"text": "a",}'));
    assert.equal(error.fatal, false);
  });

  test('missing text field lists keys and the flag', async () => {
    const error = onlyError(await parse('{"question": "a", "id": 1}', 'jsonl'));
    assert.match(error.message, /line 1 \(byte offset 0\): missing text field "text" or "prompt" \(the object has keys: question, id\)/);
    assert.match(error.message, /--text-field PATH/);
    const custom = onlyError(await parse('{"text": "a"}', 'jsonl', { textField: 'body.text' }));
    assert.match(custom.message, /missing text field "body.text"/);
  });

  test('text field of wrong type', async () => {
    const error = onlyError(await parse('{"text": 5}', 'jsonl'));
    assert.match(error.message, /text field "text" is number, not a string/);
  });

  test('non-object JSON line', async () => {
    const error = onlyError(await parse('[1, 2]', 'jsonl'));
    assert.match(error.message, /expected a JSON object or string, got array/);
  });

  test('missing or invalid id field', async () => {
    const missing = onlyError(await parse('{"text": "a"}', 'jsonl', { idField: 'id' }));
    assert.match(missing.message, /missing id field "id".*drop --id-field/);
    const wrong = onlyError(await parse('{"text": "a", "id": {"x": 1}}', 'jsonl', { idField: 'id' }));
    assert.match(wrong.message, /id field "id" is object/);
  });

  test('empty prompt', async () => {
    const error = onlyError(await parse('{"text": "  "}', 'jsonl'));
    assert.match(error.message, /^line 1 \(byte offset 0\): empty prompt: "  "; give the record some text/);
  });

  test('oversized prompt names size and flag', async () => {
    const error = onlyError(await parse(`short\n${'x'.repeat(300)}\n`, 'text', { maxPromptBytes: 200 }));
    assert.match(error.message, /^line 2 \(byte offset 6\): prompt is 300 bytes, over the limit of 200: "x{120}…"; shorten the prompt, or raise --max-prompt-bytes$/);
  });

  test('invalid UTF-8 shows bytes in hex', async () => {
    const input = Buffer.concat([Buffer.from('good\nbad '), Buffer.from([0xff, 0xfe]), Buffer.from('\n')]);
    const items = await parse(input, 'text');
    assert.deepEqual(texts(items).slice(0, 1), ['good']);
    const error = onlyError(items);
    assert.match(error.message, /^line 2 \(byte offset 5\): invalid UTF-8: <62 61 64 20 ff fe>; convert the input to UTF-8/);
  });

  test('HH line without shared assistant turn', async () => {
    const error = onlyError(await parse('{"chosen": "\\n\\nHuman: a", "rejected": "\\n\\nHuman: b"}', 'hh-rlhf'));
    assert.match(error.message, /^line 1 \(byte offset 0\): the "chosen" and "rejected" dialogues share no "Assistant:" turn/);
  });

  test('HH line without chosen', async () => {
    const error = onlyError(await parse('{"text": "a"}', 'hh-rlhf'));
    assert.match(error.message, /not an HH-RLHF record/);
  });

  test('invalid JSON document is fatal', async () => {
    const error = onlyError(await parse('[\n{"text": "a"},\n{"text" "b"}\n]', 'json'));
    assert.equal(error.fatal, true);
    assert.match(error.message, /^line 3 \(byte offset \d+\): invalid JSON document/);
  });

  test('JSON document that is no array is fatal', async () => {
    const error = onlyError(await parse('{"text": "a"}', 'json'));
    assert.equal(error.fatal, true);
    assert.match(error.message, /the JSON document is object, not an array.*--format jsonl/);
  });

  test('bad element of a JSON array names its index', async () => {
    const items = await parse('["a", {"text": ""}, "c"]', 'json');
    assert.deepEqual(texts(items).map((text) => text.slice(0, 40)), ['a', 'error: element 1 of the JSON array: empt', 'c']);
  });
});

describe('readPath', () => {
  test('follows objects and array indexes', () => {
    const value = { a: { b: [{ c: 'x' }, 'y'] } };
    assert.equal(readPath(value, 'a.b.0.c'), 'x');
    assert.equal(readPath(value, 'a.b.1'), 'y');
    assert.equal(readPath(value, 'a.b.2'), undefined);
    assert.equal(readPath(value, 'a.b.c'), undefined);
    assert.equal(readPath(value, 'a.missing.c'), undefined);
    assert.equal(readPath(value, 'a.b.0.c.length'), undefined, 'no lookups into strings');
    assert.equal(readPath(value, 'toString'), undefined, 'no inherited properties');
  });

  test('rejects empty steps', () => {
    assert.throws(() => checkPath('a..b', '--text-field'), /--text-field "a..b" has an empty step/);
    assert.doesNotThrow(() => checkPath('a.b', '--text-field'));
  });
});

describe('splitLines', () => {
  test('marks runaway lines as truncated', async () => {
    const lines = [];
    for await (const line of splitLines(chunksOf('ab', 'cdefgh', 'ij\nk'), 4)) lines.push(line);
    assert.deepEqual(
      lines.map((line) => [line.bytes.toString(), line.line, line.byteOffset, line.truncated]),
      [
        ['abcd', 1, 0, true],
        ['k', 2, 11, false],
      ],
    );
  });
});

describe('toPrompt', () => {
  test('hashes text into the id unless one is given', () => {
    const defaultsOf = { source: 'file.txt', tags: ['t'], now: () => 7n };
    const location = { line: 1 };
    const hashed = toPrompt({ text: 'hi', id: null, meta: {}, location, raw: Buffer.alloc(0) }, defaultsOf);
    assert.equal(hashed.id, promptIdOf('hi'));
    assert.notEqual(promptIdOf('hi'), promptIdOf('hi '));
    assert.deepEqual(hashed, { id: hashed.id, text: 'hi', source: 'file.txt', tags: ['t'], meta: {}, createdAt: 7n });
    const given = toPrompt({ text: 'hi', id: 'p1', meta: {}, location, raw: Buffer.alloc(0) }, defaultsOf);
    assert.equal(given.id, 'p1');
  });
});

describe('openInput', () => {
  test('gunzips by magic bytes and rejects missing files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsalign-input-'));
    try {
      const path = join(dir, 'prompts.txt.anything');
      writeFileSync(path, gzipSync(Buffer.from('one\ntwo\n')));
      const input = await openInput(path);
      assert.equal(input.gzip, true);
      const parts: Buffer[] = [];
      for await (const chunk of input.chunks) parts.push(chunk);
      assert.equal(Buffer.concat(parts).toString(), 'one\ntwo\n');

      await assert.rejects(openInput(join(dir, 'missing.txt')), /cannot open input file ".*missing.txt": ENOENT.*check the path/);
      await assert.rejects(openInput(path, { follow: true }), /--follow cannot read the gzip file/);

      const broken = join(dir, 'broken.gz');
      writeFileSync(broken, gzipSync(Buffer.from('x'.repeat(1000))).subarray(0, 20));
      const truncated = await openInput(broken);
      await assert.rejects(async () => {
        for await (const chunk of truncated.chunks) void chunk;
      }, /cannot decompress the gzip input ".*broken.gz": .*check that the file is complete/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
