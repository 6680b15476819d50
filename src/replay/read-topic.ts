/**
 * Reading a whole topic, from its first record to the end offsets seen at the start, as replay
 * and the report need recorded history rather than a live stream.
 */
import { lastValueFrom, map, take, toArray } from 'rxjs';
import type { RecordTypeName, RecordTypes } from '../streams/records';
import { topicSource } from '../streams/source';
import type { ConsumedMessage, Transport } from '../streams/transport';

/** Returns every record of a topic up to its current end, in offset order per partition. */
export async function readTopic<K extends RecordTypeName>(
  transport: Transport,
  topic: string,
  recordType: K,
): Promise<Array<{ record: RecordTypes[K]; message: ConsumedMessage }>> {
  const [begin, end] = await Promise.all([transport.beginOffsets(topic), transport.endOffsets(topic)]);
  const total = end.reduce((sum, partition) => sum + partition.offset - (begin.find((b) => b.partition === partition.partition)?.offset ?? 0), 0);
  if (total === 0) return [];
  const source = topicSource(transport, { topic, recordType, from: { kind: 'earliest' }, maxInFlight: 1024 });
  const records = await lastValueFrom(
    source.pipe(
      take(total),
      map((delivered) => {
        delivered.ack();
        return { record: delivered.record, message: delivered.message };
      }),
      toArray(),
    ),
  );
  await source.closed();
  return records;
}
