import type { ChainableCommander, Redis } from 'ioredis';
import { RedisWriteError } from '../errors.js';
import { formatCheckpoint, parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { checkpointKey, deadLetterKey, resyncProgressKey } from './internal-keys.js';

/** One write the pipeline asks of Redis; the sink turns them into commands and checks every reply. */
export type RedisWrite =
  { op: 'set'; key: string; value: string; expiresAtMs: number } | { op: 'del'; key: string } | { op: 'dead-letter'; entry: string };

/** How many dead letters are kept; older ones are trimmed so the list stays bounded. */
export const DEAD_LETTER_LIMIT = 10_000;
const SCAN_COUNT = 1_000;
const RESYNC_PROGRESS_TTL_MS = 60_000;

/** Writes to Redis through one connection, in order. Nothing here acknowledges anything to PostgreSQL. */
export class RedisSink {
  constructor(
    private readonly redis: Redis,
    readonly keyPrefix: string,
    slotName: string,
  ) {
    this.checkpointKey = checkpointKey(keyPrefix);
    this.deadLetterKey = deadLetterKey(slotName);
    this.resyncProgressKey = resyncProgressKey(keyPrefix);
  }

  readonly checkpointKey: string;
  readonly deadLetterKey: string;
  readonly resyncProgressKey: string;

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
   * Sends the writes and the checkpoint that covers them as one MULTI/EXEC: Redis applies all of them or
   * none. Resolves with the checkpoint the write replaced (null when Redis had none: it lost its state, or
   * this is the first write) only when every reply is a success; rejects otherwise.
   */
  async write(writes: readonly RedisWrite[], checkpoint: Checkpoint): Promise<string | null> {
    const transaction = this.redis.multi();
    this.queueWrites(transaction, writes);
    // XX: a checkpoint that vanished (Redis restarted empty, FLUSHALL) is not recreated here, so the loss
    // stays visible: the reply is null and the consumer resyncs.
    transaction.set(this.checkpointKey, formatCheckpoint(checkpoint), 'XX', 'GET');
    const replies = await transaction.exec();
    if (replies === null) throw new RedisWriteError('redis transaction was discarded (connection lost or EXEC aborted)');
    checkReplies(replies.slice(0, -1));
    const [checkpointError, previous] = replies[replies.length - 1]!;
    if (checkpointError !== null)
      throw new RedisWriteError(`redis checkpoint write failed: ${checkpointError.message}`, { cause: checkpointError });
    return previous as string | null;
  }

  /** Sends writes with no checkpoint (a resync, before its checkpoint exists); rejects unless every reply succeeds. */
  async writeWithoutCheckpoint(writes: readonly RedisWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const pipeline = this.redis.pipeline();
    this.queueWrites(pipeline, writes);
    const replies = await pipeline.exec();
    if (replies === null) throw new RedisWriteError('redis pipeline was discarded (connection lost)');
    checkReplies(replies);
  }

  private queueWrites(commands: ChainableCommander, writes: readonly RedisWrite[]): void {
    for (const write of writes) {
      switch (write.op) {
        case 'set':
          // PXAT: an absolute expiry, so writing the same job again never extends its life.
          commands.set(write.key, write.value, 'PXAT', write.expiresAtMs);
          break;
        case 'del':
          commands.del(write.key);
          break;
        case 'dead-letter':
          commands.lpush(this.deadLetterKey, write.entry);
          commands.ltrim(this.deadLetterKey, 0, DEAD_LETTER_LIMIT - 1);
          break;
      }
    }
  }

  /**
   * Sets the checkpoint alone: after a resync (creating it), or after a TRUNCATE (only if it still exists;
   * returns false when it had vanished).
   */
  async writeCheckpoint(checkpoint: Checkpoint, mode: 'create' | 'only-if-exists'): Promise<boolean> {
    const text = formatCheckpoint(checkpoint);
    const reply = mode === 'create' ? await this.redis.set(this.checkpointKey, text) : await this.redis.set(this.checkpointKey, text, 'XX');
    return reply === 'OK';
  }

  /** The checkpoint Redis holds, or undefined when it has none (new slot, or Redis lost its state). */
  async readCheckpoint(): Promise<Checkpoint | undefined> {
    const text = await this.redis.get(this.checkpointKey);
    return text === null ? undefined : parseCheckpoint(text);
  }

  /** Removes the checkpoint: the consumer then rebuilds Redis from the table (resync). */
  async deleteCheckpoint(): Promise<void> {
    await this.redis.del(this.checkpointKey);
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

/** Throws on the first error or missing reply: a failed command is never taken for a success. */
function checkReplies(replies: [Error | null, unknown][]): void {
  for (let i = 0; i < replies.length; i++) {
    const [error, reply] = replies[i]!;
    if (error !== null) throw new RedisWriteError(`redis command ${i + 1} of ${replies.length} failed: ${error.message}`, { cause: error });
    if (reply === null || reply === undefined) throw new RedisWriteError(`redis command ${i + 1} of ${replies.length} returned no reply`);
  }
}
