import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../../src/config/schema';
import { RUN_STATE_FORMAT, RUN_STATE_FORMAT_VERSION, type RunState, readRunState, runIdentity, transportKey, writeRunState } from '../../src/run/state';
import { UsageError } from '../../src/util/errors';

function stateFor(transport: string): RunState {
  const config = defaultConfig();
  const model = { version: 'v', sha256: 'abc', uri: '/nowhere' } as unknown as RunState['base']['policy'];
  return {
    format: RUN_STATE_FORMAT,
    formatVersion: RUN_STATE_FORMAT_VERSION,
    identity: runIdentity(config),
    configHash: 'hash',
    base: { policy: model, student: model },
    rounds: [],
    trainer: null,
    fed: [],
    transport,
  };
}

test('run state continues on its transport', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsalign-state-'));
  try {
    writeRunState(dir, stateFor(transportKey('embedded', 'tsalign.')));
    const state = readRunState(dir, defaultConfig(), transportKey('embedded', 'tsalign.'));
    assert.equal(state?.transport, 'embedded tsalign.');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run state rejects another transport', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsalign-state-'));
  try {
    writeRunState(dir, stateFor(transportKey('embedded', 'tsalign.')));
    assert.throws(
      () => readRunState(dir, defaultConfig(), transportKey('kafka', 'tsalign.')),
      (error: unknown) => error instanceof UsageError && /contains a run on embedded tsalign\., not kafka tsalign\..*new --data-dir/.test(error.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
