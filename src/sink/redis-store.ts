import { Cluster } from 'ioredis';
import { RedisWriteError } from '../errors.js';
import { formatCheckpoint, parseCheckpoint, type Checkpoint } from './checkpoint.js';
import {
  readClusterSlotMap,
  readSlotCheckpoints,
  removeSlotCheckpoints,
  summarizeSlotCheckpoints,
  writeSlotCheckpoints,
} from './cluster-checkpoints.js';
import { checkpointKey, deadLetterKey, rebuildHistoryKey, rebuildRequestKey, resyncProgressKey } from './internal-keys.js';
import { DISTRIBUTION_FIELD, type RebuildCause, type RebuildHistory, type RebuildRequest } from './rebuild-record.js';
import { masterNodes, type RedisClient } from './redis-client.js';
import type { ClusterSlotMap } from './cluster-slot-map.js';
import type { StoredCheckpoint } from './sink.js';

// budget-cdc's own state in Redis, through ioredis: the checkpoint read and set outside batches, rebuild
// requests and their history, a resync's progress, dead letters, and SCAN over the job keys. Commands
// (status, resync, dead-letters) use it alone; the consumer through RedisSink or ClusterSink, with the batch
// writer. On a Redis Cluster the checkpoint is one per hash slot (cluster-checkpoints.ts), SCAN runs on every
// master, and what a single Redis does in one MULTI/EXEC across keys is done in steps, in a safe order.

const SCAN_COUNT = 1_000;

/** A cluster's checkpoints, by hash slot: as stored, and parsed. */
export interface SlotCheckpoints {
  texts: string[];
  checkpoints: Checkpoint[];
}
const RESYNC_PROGRESS_TTL_MS = 60_000;

export class RedisStore {
  constructor(
    readonly redis: RedisClient,
    readonly keyPrefix: string,
    slotName: string,
  ) {
    this.checkpointKey = checkpointKey(keyPrefix);
    this.deadLetterKey = deadLetterKey(slotName);
    this.resyncProgressKey = resyncProgressKey(keyPrefix);
    this.rebuildRequestKey = rebuildRequestKey(keyPrefix);
    this.rebuildHistoryKey = rebuildHistoryKey(keyPrefix);
  }

  readonly checkpointKey: string;
  readonly deadLetterKey: string;
  readonly resyncProgressKey: string;
  readonly rebuildRequestKey: string;
  readonly rebuildHistoryKey: string;

  /** Publishes a resync's progress for `budget-cdc resync` (expires if the resync dies). */
  async writeResyncProgress(progress: { totalRows: number; rowsDone: number }): Promise<void> {
    await this.redis.set(this.resyncProgressKey, JSON.stringify(progress), 'PX', RESYNC_PROGRESS_TTL_MS);
  }

  async readResyncProgress(): Promise<{ totalRows: number; rowsDone: number } | undefined> {
    const text = await this.redis.get(this.resyncProgressKey);
    return text === null ? undefined : (JSON.parse(text) as { totalRows: number; rowsDone: number });
  }

  /**
   * Connects the control connection again if ioredis gave up on it: with Sentinels, a failed look-up of the
   * master during a failover ends the client for good ('end'), and each new session must start from a live one.
   */
  async reconnectIfEnded(): Promise<void> {
    if (this.redis.status === 'end') await this.redis.connect();
  }

  /** True while Redis holds the checkpoint (on a cluster: every slot's); false means it lost its state or a resync was requested. */
  async hasCheckpoint(): Promise<boolean> {
    if (this.redis instanceof Cluster) return (await this.readCheckpoint()) !== undefined;
    return (await this.redis.exists(this.checkpointKey)) === 1;
  }

  /** True on a Redis Cluster. */
  get isCluster(): boolean {
    return this.redis instanceof Cluster;
  }

  /**
   * Closes the connections named `name` (CLIENT LIST, then CLIENT KILL by id); returns how many it closed.
   * Needs CLIENT LIST and CLIENT KILL (the @admin category); without them it throws NOPERM.
   */
  async closeConnectionsNamed(name: string): Promise<number> {
    let closed = 0;
    // On a cluster, on every master: a writer holds a connection to each.
    for (const server of masterNodes(this.redis)) {
      const list = await server.call('CLIENT', 'LIST', 'TYPE', 'normal');
      if (typeof list !== 'string') throw new RedisWriteError(`redis CLIENT LIST answered ${JSON.stringify(list)}`);
      for (const line of list.split('\n')) {
        const fields = new Map(line.split(' ').map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)]));
        if (fields.get('name') !== name) continue;
        // 0 when it went away meanwhile: nothing to close.
        closed += Number(await server.call('CLIENT', 'KILL', 'ID', fields.get('id')!));
      }
    }
    return closed;
  }

  /** Sets the checkpoint after a resync, creating it; returns the text written. */
  async createCheckpoint(checkpoint: Checkpoint): Promise<string> {
    const text = formatCheckpoint(checkpoint);
    if (this.redis instanceof Cluster) {
      await writeSlotCheckpoints(this.redis, this.keyPrefix, text);
      return text;
    }
    const reply = await this.redis.set(this.checkpointKey, text);
    if (reply !== 'OK') throw new RedisWriteError(`redis SET ${this.checkpointKey} answered ${String(reply)}`);
    return text;
  }

  /**
   * The checkpoint Redis holds with its exact text, or undefined when it has none (new slot, or Redis lost its
   * state). On a cluster, what the slots' checkpoints say together, with each slot's (summarizeSlotCheckpoints).
   */
  async readCheckpoint(slotMap?: ClusterSlotMap): Promise<(StoredCheckpoint & { slots: SlotCheckpoints | undefined }) | undefined> {
    if (this.redis instanceof Cluster) {
      const texts = await readSlotCheckpoints(this.redis, this.keyPrefix);
      // The cluster writer's map when it has just read one: CLUSTER SLOTS once per session start.
      const summary = summarizeSlotCheckpoints(texts, slotMap ?? (await readClusterSlotMap(this.redis)));
      return summary === undefined
        ? undefined
        : { ...summary.stored, slots: { texts: texts as string[], checkpoints: summary.slotCheckpoints } };
    }
    const text = await this.readCheckpointText();
    return text === null ? undefined : { checkpoint: parseCheckpoint(text), text, replayThrough: undefined, slots: undefined };
  }

  /** The checkpoint's text, or null when there is none; on a cluster, the slots' summary (see readCheckpoint). */
  async readCheckpointText(): Promise<string | null> {
    if (this.redis instanceof Cluster) return (await this.readCheckpoint())?.text ?? null;
    return this.redis.get(this.checkpointKey);
  }

  /**
   * Asks for a rebuild, saying why: the reason is stored, then the checkpoint removed, in one transaction.
   * Without the checkpoint every session (of this process or a later one) rebuilds before it streams.
   */
  async requestRebuild(request: RebuildRequest): Promise<void> {
    if (this.redis instanceof Cluster) {
      // Two slots, no common transaction: the reason first, so that no process finds the checkpoints gone
      // without it (a crash in between leaves the request; the checkpoints then go with the next request).
      const reply = await this.redis.set(this.rebuildRequestKey, JSON.stringify(request));
      if (reply !== 'OK') throw new RedisWriteError(`redis SET ${this.rebuildRequestKey} answered ${String(reply)}`);
      await removeSlotCheckpoints(this.redis, this.keyPrefix);
      return;
    }
    const results = await this.redis.multi().set(this.rebuildRequestKey, JSON.stringify(request)).del(this.checkpointKey).exec();
    checkTransaction(results, 'the rebuild request');
  }

  /** Why the checkpoint was removed, when someone said so (resync, a detected rollback); undefined when it just vanished. */
  async readRebuildRequest(): Promise<RebuildRequest | undefined> {
    const text = await this.redis.get(this.rebuildRequestKey);
    return text === null ? undefined : (JSON.parse(text) as RebuildRequest);
  }

  /** Counts a finished rebuild by cause and keeps the last one's detail, for `status`; clears the request. */
  async recordRebuild(cause: RebuildCause, detail: string, distribution: string): Promise<void> {
    const last = JSON.stringify({ cause, detail, at: new Date().toISOString() });
    if (this.redis instanceof Cluster) {
      // The history and the request sit in two slots: counted first, so that a crash between re-counts nothing.
      await this.redis.hincrby(this.rebuildHistoryKey, cause, 1);
      await this.redis.hset(this.rebuildHistoryKey, 'last', last, DISTRIBUTION_FIELD, distribution);
      await this.redis.del(this.rebuildRequestKey);
      return;
    }
    const results = await this.redis
      .multi()
      .hincrby(this.rebuildHistoryKey, cause, 1)
      .hset(this.rebuildHistoryKey, 'last', last, DISTRIBUTION_FIELD, distribution)
      .del(this.rebuildRequestKey)
      .exec();
    checkTransaction(results, 'the rebuild record');
  }

  async readRebuildHistory(): Promise<RebuildHistory> {
    const fields = await this.redis.hgetall(this.rebuildHistoryKey);
    const counts: Partial<Record<RebuildCause, number>> = {};
    for (const [field, value] of Object.entries(fields)) {
      if (field !== 'last' && field !== DISTRIBUTION_FIELD) counts[field as RebuildCause] = Number(value);
    }
    return {
      counts,
      last: fields.last === undefined ? undefined : (JSON.parse(fields.last) as RebuildHistory['last']),
      distribution: fields[DISTRIBUTION_FIELD],
    };
  }

  /** Deletes every key under the prefix (TRUNCATE), and nothing else; returns how many were deleted. */
  async deleteKeysUnderPrefix(): Promise<number> {
    let deleted = 0;
    for await (const keys of this.scanKeysUnderPrefix()) deleted += await this.deleteKeys(keys);
    return deleted;
  }

  /** The keys under the prefix, a SCAN page at a time; on a cluster, every master's in turn. */
  async *scanKeysUnderPrefix(): AsyncGenerator<string[]> {
    const pattern = escapeGlob(this.keyPrefix) + '*';
    for (const server of masterNodes(this.redis)) {
      let cursor = '0';
      do {
        const [next, keys] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
        cursor = next;
        if (keys.length > 0) yield keys;
      } while (cursor !== '0');
    }
  }

  async deleteKeys(keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    // A cluster refuses one UNLINK across slots: one per key, which ioredis pipelines per master.
    if (this.redis instanceof Cluster) {
      const cluster = this.redis;
      return (await Promise.all(keys.map((key) => cluster.unlink(key)))).reduce((sum, count) => sum + count, 0);
    }
    return this.redis.unlink(...keys);
  }

  /** Empties the dead letters: a rebuild from the table sets aside again every row it cannot process. */
  async resetDeadLetters(): Promise<void> {
    await this.redis.unlink(this.deadLetterKey);
  }

  /** The newest dead letters first, as stored (JSON strings). */
  async readDeadLetters(limit: number): Promise<string[]> {
    return this.redis.lrange(this.deadLetterKey, 0, limit - 1);
  }
}

/** Escapes Redis glob characters so that a prefix like "job[1]:" matches only itself. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** An ioredis MULTI/EXEC result: null when aborted, else one [error, result] per command. */
function checkTransaction(results: Array<[Error | null, unknown]> | null, what: string): void {
  if (results === null) throw new RedisWriteError(`redis aborted the transaction of ${what}`);
  const failed = results.find(([error]) => error !== null);
  if (failed !== undefined) throw new RedisWriteError(`redis refused ${what}: ${failed[0]!.message}`);
}
