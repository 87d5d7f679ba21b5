import type { Redis } from 'ioredis';
import { RedisWriteError } from '../errors.js';
import { formatCheckpoint, parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { checkpointKey, deadLetterKey, rebuildHistoryKey, rebuildRequestKey, resyncProgressKey } from './internal-keys.js';
import type { RebuildCause, RebuildHistory, RebuildRequest } from './rebuild-record.js';

// budget-cdc's own state in Redis, through ioredis: the checkpoint read and set outside batches, rebuild
// requests and their history, a resync's progress, dead letters, and SCAN over the job keys. Commands
// (status, resync, dead-letters) use it alone; the consumer through RedisSink, with the batch writer.

const SCAN_COUNT = 1_000;
const RESYNC_PROGRESS_TTL_MS = 60_000;

export class RedisStore {
  constructor(
    readonly redis: Redis,
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

  /** True while Redis holds the checkpoint; false means it lost its state or a resync was requested. */
  async hasCheckpoint(): Promise<boolean> {
    return (await this.redis.exists(this.checkpointKey)) === 1;
  }

  /**
   * Connects the control connection again if ioredis gave up on it: with Sentinels, a failed look-up of the
   * master during a failover ends the client for good ('end'), and each new session must start from a live one.
   */
  async reconnectIfEnded(): Promise<void> {
    if (this.redis.status === 'end') await this.redis.connect();
  }

  /**
   * Closes the connections named `name` (CLIENT LIST, then CLIENT KILL by id); returns how many it closed.
   * Needs CLIENT LIST and CLIENT KILL (the @admin category); without them it throws NOPERM.
   */
  async closeConnectionsNamed(name: string): Promise<number> {
    const list = await this.redis.call('CLIENT', 'LIST', 'TYPE', 'normal');
    if (typeof list !== 'string') throw new RedisWriteError(`redis CLIENT LIST answered ${JSON.stringify(list)}`);
    let closed = 0;
    for (const line of list.split('\n')) {
      const fields = new Map(line.split(' ').map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)]));
      if (fields.get('name') !== name) continue;
      // 0 when it went away meanwhile: nothing to close.
      closed += Number(await this.redis.call('CLIENT', 'KILL', 'ID', fields.get('id')!));
    }
    return closed;
  }

  /** Sets the checkpoint after a resync, creating it; returns the text written. */
  async createCheckpoint(checkpoint: Checkpoint): Promise<string> {
    const text = formatCheckpoint(checkpoint);
    const reply = await this.redis.set(this.checkpointKey, text);
    if (reply !== 'OK') throw new RedisWriteError(`redis SET ${this.checkpointKey} answered ${String(reply)}`);
    return text;
  }

  /** The checkpoint Redis holds with its exact text, or undefined when it has none (new slot, or Redis lost its state). */
  async readCheckpoint(): Promise<{ checkpoint: Checkpoint; text: string } | undefined> {
    const text = await this.readCheckpointText();
    return text === null ? undefined : { checkpoint: parseCheckpoint(text), text };
  }

  async readCheckpointText(): Promise<string | null> {
    return this.redis.get(this.checkpointKey);
  }

  /**
   * Asks for a rebuild, saying why: the reason is stored, then the checkpoint removed, in one transaction.
   * Without the checkpoint every session (of this process or a later one) rebuilds before it streams.
   */
  async requestRebuild(request: RebuildRequest): Promise<void> {
    const results = await this.redis.multi().set(this.rebuildRequestKey, JSON.stringify(request)).del(this.checkpointKey).exec();
    checkTransaction(results, 'the rebuild request');
  }

  /** Why the checkpoint was removed, when someone said so (resync, a detected rollback); undefined when it just vanished. */
  async readRebuildRequest(): Promise<RebuildRequest | undefined> {
    const text = await this.redis.get(this.rebuildRequestKey);
    return text === null ? undefined : (JSON.parse(text) as RebuildRequest);
  }

  /** Counts a finished rebuild by cause and keeps the last one's detail, for `status`; clears the request. */
  async recordRebuild(cause: RebuildCause, detail: string): Promise<void> {
    const last = JSON.stringify({ cause, detail, at: new Date().toISOString() });
    const results = await this.redis
      .multi()
      .hincrby(this.rebuildHistoryKey, cause, 1)
      .hset(this.rebuildHistoryKey, 'last', last)
      .del(this.rebuildRequestKey)
      .exec();
    checkTransaction(results, 'the rebuild record');
  }

  async readRebuildHistory(): Promise<RebuildHistory> {
    const fields = await this.redis.hgetall(this.rebuildHistoryKey);
    const counts: Partial<Record<RebuildCause, number>> = {};
    for (const [field, value] of Object.entries(fields)) if (field !== 'last') counts[field as RebuildCause] = Number(value);
    return { counts, last: fields.last === undefined ? undefined : (JSON.parse(fields.last) as RebuildHistory['last']) };
  }

  /** Deletes every key under the prefix (TRUNCATE), and nothing else; returns how many were deleted. */
  async deleteKeysUnderPrefix(): Promise<number> {
    let deleted = 0;
    for await (const keys of this.scanKeysUnderPrefix()) deleted += await this.deleteKeys(keys);
    return deleted;
  }

  /** The keys under the prefix, a SCAN page at a time. */
  async *scanKeysUnderPrefix(): AsyncGenerator<string[]> {
    const pattern = escapeGlob(this.keyPrefix) + '*';
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== '0');
  }

  async deleteKeys(keys: string[]): Promise<number> {
    return keys.length === 0 ? 0 : this.redis.unlink(...keys);
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
