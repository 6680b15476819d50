import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EXIT_INTERRUPTED, SIGNAL_DEBOUNCE_MS, onShutdownSignal } from '../../src/streams/shutdown';

test('first signal stops gracefully', async () => {
  let stops = 0;
  const exits: number[] = [];
  const handle = onShutdownSignal(() => void stops++, (code) => exits.push(code), () => 0);
  try {
    process.emit('SIGINT', 'SIGINT');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(stops, 1);
    assert.equal(handle.requested, true);
    assert.equal(handle.signal.aborted, true);
    assert.deepEqual(exits, []);
  } finally {
    handle.dispose();
  }
});

test('repeat within debounce is one interrupt', () => {
  let clock = 0;
  const exits: number[] = [];
  const handle = onShutdownSignal(() => undefined, (code) => exits.push(code), () => clock);
  try {
    process.emit('SIGINT', 'SIGINT');
    clock = SIGNAL_DEBOUNCE_MS - 1;
    process.emit('SIGINT', 'SIGINT');
    assert.deepEqual(exits, []);
  } finally {
    handle.dispose();
  }
});

test('later second signal exits at once', () => {
  let clock = 0;
  const exits: number[] = [];
  const handle = onShutdownSignal(() => undefined, (code) => exits.push(code), () => clock);
  try {
    process.emit('SIGTERM', 'SIGTERM');
    clock = SIGNAL_DEBOUNCE_MS + 1;
    process.emit('SIGINT', 'SIGINT');
    assert.deepEqual(exits, [EXIT_INTERRUPTED]);
  } finally {
    handle.dispose();
  }
});
