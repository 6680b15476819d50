import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OffsetTracker } from '../../src/streams/offset-tracker';

const at = (offset: number, partition = 0, topic = 't') => ({ topic, partition, offset });

test('tracker commits past acknowledged prefix', () => {
  const tracker = new OffsetTracker();
  for (const offset of [0, 1, 2]) tracker.track(at(offset));
  assert.equal(tracker.inFlight, 3);
  assert.deepEqual(tracker.committable(), []);

  tracker.ack(at(0));
  tracker.ack(at(1));
  assert.equal(tracker.inFlight, 1);
  assert.deepEqual(tracker.committable(), [at(2)]);
  assert.deepEqual(tracker.committable(), [], 'an unchanged offset is not returned twice');

  tracker.ack(at(2));
  assert.deepEqual(tracker.committable(), [at(3)]);
  assert.equal(tracker.inFlight, 0);
});

test('tracker holds commit at lowest un-acked offset', () => {
  const tracker = new OffsetTracker();
  for (const offset of [5, 6, 7, 9]) tracker.track(at(offset));
  tracker.ack(at(6));
  tracker.ack(at(9));
  assert.deepEqual(tracker.committable(), [at(5)]);

  tracker.ack(at(5));
  assert.deepEqual(tracker.committable(), [at(7)]);

  tracker.ack(at(7));
  assert.deepEqual(tracker.committable(), [at(10)], 'the gap at offset 8 does not block the commit');
});

test('tracker keeps partitions apart', () => {
  const tracker = new OffsetTracker();
  tracker.track(at(0, 0));
  tracker.track(at(0, 1));
  tracker.track(at(0, 0, 'other'));
  tracker.ack(at(0, 1));
  assert.deepEqual(tracker.committable(), [at(1, 1)]);
  tracker.ack(at(0, 0, 'other'));
  assert.deepEqual(tracker.committable(), [at(1, 0, 'other')]);
  assert.equal(tracker.inFlight, 1);
});

test('tracker ignores unknown and repeated acks', () => {
  const tracker = new OffsetTracker();
  tracker.track(at(3));
  tracker.track(at(4));
  assert.equal(tracker.ack(at(2)), false);
  assert.equal(tracker.ack(at(3, 1)), false);
  assert.equal(tracker.ack(at(4)), true);
  assert.equal(tracker.ack(at(4)), false);
  assert.equal(tracker.inFlight, 1);
  tracker.ack(at(3));
  assert.equal(tracker.ack(at(3)), false);
  assert.equal(tracker.inFlight, 0);
  assert.deepEqual(tracker.committable(), [at(5)]);
});

test('tracker rejects offsets out of order', () => {
  const tracker = new OffsetTracker();
  tracker.track(at(4));
  assert.throws(() => tracker.track(at(4)), /offset 4 of t\/0 was tracked after offset 4/);
  tracker.ack(at(4));
  assert.throws(() => tracker.track(at(2)), /offset 2 of t\/0 was tracked after offset 4/);
});

test('tracker compacts a long acknowledged prefix', () => {
  const tracker = new OffsetTracker();
  for (let offset = 0; offset < 5000; offset++) tracker.track(at(offset));
  for (let offset = 1; offset < 5000; offset++) tracker.ack(at(offset));
  assert.deepEqual(tracker.committable(), [], 'offset 0 still blocks every commit');
  tracker.ack(at(0));
  assert.deepEqual(tracker.committable(), [at(5000)]);

  for (let offset = 5000; offset < 8000; offset++) tracker.track(at(offset));
  for (let offset = 5000; offset < 7000; offset++) tracker.ack(at(offset));
  assert.deepEqual(tracker.committable(), [at(7000)]);
  assert.equal(tracker.ack(at(7500)), true, 'acks still find offsets after compaction');
  assert.equal(tracker.inFlight, 999);
});

test('tracker reset forgets pending offsets', () => {
  const tracker = new OffsetTracker();
  for (const offset of [0, 1, 2]) tracker.track(at(offset));
  tracker.track(at(0, 1));
  tracker.ack(at(1));
  assert.equal(tracker.lastTracked('t', 0), 2);
  tracker.reset('t', 0);
  assert.equal(tracker.inFlight, 1);
  assert.equal(tracker.lastTracked('t', 0), -1);
  assert.equal(tracker.ack(at(2)), false);
  tracker.track(at(1));
  tracker.ack(at(1));
  assert.deepEqual(tracker.committable(), [at(2)]);
});
