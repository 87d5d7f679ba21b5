import type { Redis } from 'ioredis';
import { RedisWriteError } from '../errors.js';

/** One write the pipeline asks of Redis; the sink turns them into commands and checks every reply. */
export type RedisWrite =
  { op: 'set'; key: string; value: string; expiresAtMs: number } | { op: 'del'; key: string } | { op: 'dead-letter'; entry: string };

/** How many dead letters are kept; older ones are trimmed so the list stays bounded. */
export const DEAD_LETTER_LIMIT = 10_000;
const SCAN_COUNT = 1_000;

/** Writes to Redis through one connection, in order. Nothing here acknowledges anything to PostgreSQL. */
export class RedisSink {
  constructor(
    private readonly redis: Redis,
    readonly keyPrefix: string,
    readonly deadLetterKey: string,
  ) {}

  /** Sends the writes as one pipeline; resolves only when every reply is a success, else rejects. */
  async write(writes: readonly RedisWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const write of writes) {
      switch (write.op) {
        case 'set':
          // PXAT: an absolute expiry, so writing the same job again never extends its life.
          pipeline.set(write.key, write.value, 'PXAT', write.expiresAtMs);
          break;
        case 'del':
          pipeline.del(write.key);
          break;
        case 'dead-letter':
          pipeline.lpush(this.deadLetterKey, write.entry);
          pipeline.ltrim(this.deadLetterKey, 0, DEAD_LETTER_LIMIT - 1);
          break;
      }
    }
    const replies = await pipeline.exec();
    if (replies === null) throw new RedisWriteError('redis pipeline was discarded (connection lost)');
    for (let i = 0; i < replies.length; i++) {
      const [error, reply] = replies[i]!;
      if (error !== null)
        throw new RedisWriteError(`redis command ${i + 1} of ${replies.length} failed: ${error.message}`, { cause: error });
      if (reply === null || reply === undefined) throw new RedisWriteError(`redis command ${i + 1} of ${replies.length} returned no reply`);
    }
  }

  /** Deletes every key under the prefix (TRUNCATE), and nothing else; returns how many were deleted. */
  async deleteKeysUnderPrefix(): Promise<number> {
    const pattern = escapeGlob(this.keyPrefix) + '*';
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
      cursor = next;
      if (keys.length > 0) deleted += await this.redis.unlink(...keys);
    } while (cursor !== '0');
    return deleted;
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
