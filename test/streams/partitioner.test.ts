import { test } from 'node:test';
import assert from 'node:assert/strict';
import { murmur2, partitionForKey, RoundRobinPartitioner } from '../../src/streams/partitioner';

// Values printed by org.apache.kafka.common.utils.Utils.murmur2 and toPositive(h) % n of the
// kafka-clients 3.9.1 jar for the UTF-8 bytes of each key.
const JAVA_CLIENT_CASES: Array<{ key: string; hash: number; of3: number; of8: number }> = [
  { key: '', hash: 275646681, of3: 0, of8: 1 },
  { key: 'a', hash: -1563381124, of3: 1, of8: 4 },
  { key: 'ab', hash: 316155434, of3: 2, of8: 2 },
  { key: 'abc', hash: 479470107, of3: 0, of8: 3 },
  { key: '21', hash: -973932308, of3: 0, of8: 4 },
  { key: 'foobar', hash: -790332482, of3: 0, of8: 6 },
  { key: 'a-little-bit-long-string', hash: -985981536, of3: 2, of8: 0 },
  { key: 'a-little-bit-longer-string', hash: -1486304829, of3: 2, of8: 3 },
  { key: 'lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', hash: -58897971, of3: 2, of8: 5 },
  { key: 'prompt-000042', hash: 854669197, of3: 1, of8: 5 },
  { key: 'héllo wörld', hash: 439213890, of3: 0, of8: 2 },
];

test('murmur2 matches the Java client', () => {
  for (const { key, hash } of JAVA_CLIENT_CASES) {
    assert.equal(murmur2(Buffer.from(key, 'utf8')), hash, `murmur2(${JSON.stringify(key)})`);
  }
});

test('partitionForKey matches the Java client', () => {
  for (const { key, of3, of8 } of JAVA_CLIENT_CASES) {
    assert.equal(partitionForKey(key, 3), of3, `${JSON.stringify(key)} of 3`);
    assert.equal(partitionForKey(key, 8), of8, `${JSON.stringify(key)} of 8`);
    assert.equal(partitionForKey(Buffer.from(key, 'utf8'), 8), of8, `${JSON.stringify(key)} bytes of 8`);
  }
});

test('partitionForKey rejects invalid counts', () => {
  assert.throws(() => partitionForKey('a', 0), /invalid partition count 0/);
  assert.throws(() => partitionForKey('a', 1.5), /invalid partition count 1.5/);
});

test('round robin cycles per topic', () => {
  const partitioner = new RoundRobinPartitioner();
  assert.deepEqual([0, 1, 2, 3].map(() => partitioner.partition('a', 3)), [0, 1, 2, 0]);
  assert.equal(partitioner.partition('b', 3), 0);
});
