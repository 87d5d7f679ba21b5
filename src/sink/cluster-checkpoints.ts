import type { Cluster } from 'ioredis';
import { RedisWriteError } from '../errors.js';
import { formatCheckpoint, isCovered, parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { ClusterSlotMap } from './cluster-slot-map.js';
import { HASH_SLOTS } from './hash-slot.js';
import { slotCheckpointKey } from './internal-keys.js';
import { connectMasters } from './redis-client.js';
import type { StoredCheckpoint } from './sink.js';

// The checkpoints of a key prefix on a Redis Cluster, one per hash slot (see ClusterSink), read and set
// through ioredis for the control plane: the start of a session, a resync, `status`. One GET or SET per slot;
// ioredis pipelines them per master.

/** Every slot's checkpoint text, by slot (null where a slot has none). */
export async function readSlotCheckpoints(cluster: Cluster, keyPrefix: string): Promise<Array<string | null>> {
  await connectMasters(cluster);
  return Promise.all(Array.from({ length: HASH_SLOTS }, (_, slot) => cluster.get(slotCheckpointKey(keyPrefix, slot))));
}

/** Sets every slot's checkpoint to `text` (after a resync: every slot holds the table as of its position). */
export async function writeSlotCheckpoints(cluster: Cluster, keyPrefix: string, text: string): Promise<void> {
  await connectMasters(cluster);
  const replies = await Promise.all(Array.from({ length: HASH_SLOTS }, (_, slot) => cluster.set(slotCheckpointKey(keyPrefix, slot), text)));
  const refused = replies.find((reply) => reply !== 'OK');
  if (refused !== undefined) throw new RedisWriteError(`redis SET of a slot checkpoint answered ${String(refused)}`);
}

/** Removes every slot's checkpoint (a rebuild is asked for); returns how many existed. */
export async function removeSlotCheckpoints(cluster: Cluster, keyPrefix: string): Promise<number> {
  await connectMasters(cluster);
  const removed = await Promise.all(Array.from({ length: HASH_SLOTS }, (_, slot) => cluster.unlink(slotCheckpointKey(keyPrefix, slot))));
  return removed.reduce((sum, count) => sum + count, 0);
}

/** Which master serves each slot, from any node (CLUSTER SLOTS). */
export async function readClusterSlotMap(cluster: Cluster): Promise<ClusterSlotMap> {
  const reply: unknown = await cluster.call('CLUSTER', 'SLOTS');
  const map = new ClusterSlotMap();
  const [seed] = cluster.nodes('master');
  map.update(reply, `${seed?.options.host ?? '127.0.0.1'}:${seed?.options.port ?? 0}`);
  return map;
}

/**
 * What the slots' checkpoints say together, or undefined when any slot lacks one (a master lost its data, or a
 * rebuild was asked for):
 * - every change up to the oldest slot's position is in every slot (the replay skips it);
 * - up to the newest slot's position, a replayed change is checked against its own slot (`replayThrough`);
 * - the acknowledged position is the least, over the masters, of the newest one each holds: every write that
 *   carries an acknowledgement gives each master a checkpoint, and a master's data is a prefix of what it was
 *   sent, so a master that lost an acknowledged write holds nothing as new (see ClusterSink).
 */
export function summarizeSlotCheckpoints(
  texts: ReadonlyArray<string | null>,
  slotMap: ClusterSlotMap,
): { stored: StoredCheckpoint; slotCheckpoints: Checkpoint[] } | undefined {
  const slotCheckpoints: Checkpoint[] = [];
  let oldest: Checkpoint | undefined;
  let newest: Checkpoint | undefined;
  const newestAckByMaster = new Map<string, bigint>();
  for (let slot = 0; slot < HASH_SLOTS; slot++) {
    const text = texts[slot];
    if (text === null || text === undefined) return undefined;
    const checkpoint = parseCheckpoint(text);
    slotCheckpoints.push(checkpoint);
    if (oldest === undefined || !isCovered(checkpoint, oldest.commitLsn, oldest.index)) oldest = checkpoint;
    if (newest === undefined || isCovered(checkpoint, newest.commitLsn, newest.index)) newest = checkpoint;
    const master = slotMap.ownerOf(slot);
    const ack = checkpoint.ackLsn ?? 0n;
    if (ack > (newestAckByMaster.get(master) ?? -1n)) newestAckByMaster.set(master, ack);
  }
  const acks = [...newestAckByMaster.values()];
  const ackLsn = acks.reduce((least, ack) => (ack < least ? ack : least), acks[0]!);
  const checkpoint: Checkpoint = { commitLsn: oldest!.commitLsn, index: oldest!.index, ackLsn, writer: undefined };
  const ahead = isCovered(checkpoint, newest!.commitLsn, newest!.index)
    ? undefined
    : { commitLsn: newest!.commitLsn, index: newest!.index };
  return { stored: { checkpoint, text: formatCheckpoint(checkpoint), replayThrough: ahead }, slotCheckpoints };
}
