import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitHhDialogue } from '../../src/ingest/hh-rlhf';

test('split cuts after the last shared assistant marker', () => {
  const prompt = '\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant:';
  const split = splitHhDialogue(`${prompt} Fine, thanks.`, `${prompt} Go away.`);
  assert.equal(split.prompt, prompt);
  assert.equal(split.chosen, 'Fine, thanks.');
  assert.equal(split.rejected, 'Go away.');
});

test('split stops at an earlier divergence', () => {
  const chosen = '\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d';
  const rejected = '\n\nHuman: a\n\nAssistant: x';
  const split = splitHhDialogue(chosen, rejected);
  assert.equal(split.prompt, '\n\nHuman: a\n\nAssistant:');
  assert.equal(split.chosen, 'b\n\nHuman: c\n\nAssistant: d');
  assert.equal(split.rejected, 'x');
});

test('split rejects dialogues without a shared assistant turn', () => {
  assert.throws(() => splitHhDialogue('\n\nHuman: a', '\n\nHuman: b'), /share no "Assistant:" turn/);
});
