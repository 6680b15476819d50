import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  canonicalJson,
  configHash,
  configKeys,
  defaultConfig,
  loadConfig,
  parseOverride,
  validateConfig,
} from '../../src/config';
import { UsageError } from '../../src/util/errors';

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('expected a UsageError, nothing was thrown');
}

describe('config', () => {
  test('defaults validate', () => {
    const config = validateConfig({});
    assert.deepEqual(config, defaultConfig());
    assert.equal(config.run.rounds, 3);
    assert.equal(config.teacher.kind, 'verifier');
  });

  test('unknown key names path and suggestion', () => {
    const message = usageMessage(() => validateConfig({ chain: { temprature: 0.7 } }));
    assert.match(message, /chain\.temprature: unknown key/);
    assert.match(message, /did you mean "chain\.temperature"/);
  });

  test('key in wrong section is suggested', () => {
    const message = usageMessage(() => validateConfig({ chain: { beta: 0.1 } }));
    assert.match(message, /chain\.beta: unknown key/);
    assert.match(message, /trainer\.beta/);
  });

  test('out of range value names range', () => {
    const message = usageMessage(() => validateConfig({ chain: { tau: 1.5 } }));
    assert.match(message, /chain\.tau: invalid value 1\.5/);
    assert.match(message, /from 0\.5 to 1/);
  });

  test('non-integer and wrong type rejected', () => {
    assert.match(usageMessage(() => validateConfig({ run: { rounds: 2.5 } })), /run\.rounds: invalid value 2\.5; expected an integer from 1 to 1000/);
    assert.match(usageMessage(() => validateConfig({ run: { rounds: '3' } })), /run\.rounds: invalid value "3"/);
    assert.match(usageMessage(() => validateConfig({ run: 3 })), /run: invalid value 3; expected an object/);
  });

  test('enum error lists allowed values', () => {
    const message = usageMessage(() => validateConfig({ teacher: { kind: 'gpt' } }));
    assert.match(message, /teacher\.kind: invalid value "gpt"; expected one of "verifier", "openai", "reward-model"/);
  });

  test('every error is listed', () => {
    const message = usageMessage(() => validateConfig({ chain: { candidates: 1, topP: 0 }, run: { seed: -1 } }));
    assert.match(message, /chain\.candidates/);
    assert.match(message, /chain\.topP/);
    assert.match(message, /run\.seed/);
  });

  test('cross-field rules name the key', () => {
    assert.match(usageMessage(() => validateConfig({ models: { policy: { heads: 3 } } })), /models\.policy\.heads: 3 does not divide/);
    assert.match(usageMessage(() => validateConfig({ teacher: { kind: 'reward-model' } })), /teacher\.rewardModel\.checkpoint: missing/);
  });

  test('file then overrides apply in order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsalign-config-'));
    const file = join(dir, 'run.json');
    writeFileSync(file, JSON.stringify({ run: { rounds: 5, seed: 9 }, chain: { tau: 0.9 } }));
    const loaded = loadConfig({ file, overrides: [{ run: { rounds: 2 } }], assignments: ['chain.tau=0.6'] });
    assert.equal(loaded.config.run.rounds, 2);
    assert.equal(loaded.config.run.seed, 9);
    assert.equal(loaded.config.chain.tau, 0.6);
    assert.equal(loaded.hash, configHash(loaded.config));
  });

  test('bad file errors name the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsalign-config-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{ "run": ');
    assert.match(usageMessage(() => loadConfig({ file })), /invalid JSON in config file .*bad\.json/);
    assert.match(usageMessage(() => loadConfig({ file: join(dir, 'missing.json') })), /cannot read config file .*missing\.json/);
    writeFileSync(file, JSON.stringify({ run: { rouns: 2 } }));
    assert.match(usageMessage(() => loadConfig({ file })), /bad\.json: [\s\S]*run\.rouns: unknown key; did you mean "run\.rounds"/);
  });

  test('override parsing', () => {
    assert.deepEqual(parseOverride('trainer.beta=0.2'), { trainer: { beta: 0.2 } });
    assert.deepEqual(parseOverride('teacher.kind=openai'), { teacher: { kind: 'openai' } });
    assert.match(usageMessage(() => parseOverride('trainer.bta=0.2')), /trainer\.bta: unknown key; did you mean "trainer\.beta"/);
    assert.match(usageMessage(() => parseOverride('trainer.beta=abc')), /trainer\.beta: invalid value "abc"/);
    assert.match(usageMessage(() => parseOverride('trainer=1')), /trainer: is a section/);
    assert.match(usageMessage(() => parseOverride('beta')), /expected KEY=VALUE/);
  });

  test('canonical JSON ignores key order', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: 3 } }), '{"a":{"c":3,"d":[2,{"y":2,"z":1}]},"b":1}');
    const a = validateConfig({ run: { seed: 3 }, chain: { tau: 0.9 } });
    const b = validateConfig({ chain: { tau: 0.9 }, run: { seed: 3 } });
    assert.equal(configHash(a), configHash(b));
    assert.notEqual(configHash(a), configHash(defaultConfig()));
    assert.match(configHash(a), /^[0-9a-f]{64}$/);
  });

  test('every key has a default', () => {
    const keys = configKeys();
    assert.ok(keys.includes('chain.candidates'));
    assert.ok(keys.includes('models.policy.layers'));
    const config = defaultConfig() as unknown as Record<string, Record<string, unknown>>;
    for (const key of keys) {
      const value = key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], config);
      assert.notEqual(value, undefined, key);
    }
  });
});

test('loadConfig validates dependent settings together', () => {
  const loaded = loadConfig({
    overrides: [{ teacher: { kind: 'reward-model' } }],
    assignments: ['teacher.rewardModel.checkpoint=/models/teacher-rm'],
  });
  assert.equal(loaded.config.teacher.kind, 'reward-model');
  assert.equal(loaded.config.teacher.rewardModel.checkpoint, '/models/teacher-rm');
});
