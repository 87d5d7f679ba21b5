import type { Redis } from 'ioredis';
import { RedisWriteError } from '../errors.js';
import { formatCheckpoint, parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { checkpointKey, deadLetterKey, resyncProgressKey } from './internal-keys.js';
import { RespConnection, RespError, respCommand, type RespReply } from './resp-connection.js';
import { WriteBatch } from './write-batch.js';

const SCAN_COUNT = 1_000;
const RESYNC_PROGRESS_TTL_MS = 60_000;

/**
 * Writes to Redis. Batches go through the writer connection (RESP encoded by WriteBatch); the rest (SCAN,
 * checkpoint reads, dead letters) through ioredis. Callers order the two: a TRUNCATE's scan starts only
 * after every earlier batch is confirmed. Nothing here acknowledges anything to PostgreSQL.
 */
export class RedisSink {
  constructor(
    private readonly redis: Redis,
    readonly keyPrefix: string,
    slotName: string,
    /** Where the batch writer connects; only needed to write batches. */
    private readonly redisUrl?: string,
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

  private writer: RespConnection | undefined;

  /** A new, empty batch. */
  newBatch(): WriteBatch {
    return new WriteBatch(this.deadLetterKey);
  }

  /**
   * Sends a batch and the checkpoint that covers it as one MULTI/EXEC: Redis applies all of it or none.
   * Resolves with the checkpoint it replaced (null when Redis had none: it lost its state) only when every
   * reply is a success; rejects otherwise.
   */
  async write(batch: WriteBatch, checkpoint: Checkpoint): Promise<string | null> {
    // XX: a checkpoint that vanished (Redis restarted empty, FLUSHALL) is not recreated here, so the loss
    // stays visible: the reply is null and the consumer resyncs.
    const tail = respCommand(['SET', this.checkpointKey, formatCheckpoint(checkpoint), 'XX', 'GET']) + EXEC;
    const queued = batch.commands + 1;
    const writer = await this.connectWriter();
    let replies: RespReply[];
    try {
      replies = await writer.send([MULTI, batch.bytes, tail], queued + 2);
    } finally {
      batch.release(); // answered, or the connection is closed: the socket is done with the buffer
    }
    for (let i = 0; i <= queued; i++) {
      const reply = replies[i];
      if (reply instanceof RespError) throw new RedisWriteError(`redis refused command ${i} of the batch: ${reply.message}`);
    }
    const results = replies[queued + 1];
    if (!Array.isArray(results) || results.length !== queued) {
      throw new RedisWriteError(`redis EXEC answered ${results instanceof RespError ? results.message : JSON.stringify(results)}`);
    }
    checkResults(results.slice(0, -1));
    const previous = results[queued - 1];
    if (previous instanceof RespError) throw new RedisWriteError(`redis checkpoint write failed: ${previous.message}`);
    return previous as string | null;
  }

  /** Sends a batch with no checkpoint (a resync, before its checkpoint exists); rejects unless every reply succeeds. */
  async writeWithoutCheckpoint(batch: WriteBatch): Promise<void> {
    if (batch.commands === 0) return;
    const writer = await this.connectWriter();
    try {
      checkResults(await writer.send(batch.bytes, batch.commands));
    } finally {
      batch.release();
    }
  }

  /** The writer connection, (re)connected when needed: after Redis restarted, the next session gets a new one. */
  private async connectWriter(): Promise<RespConnection> {
    if (this.redisUrl === undefined) throw new Error('this RedisSink was made without a Redis URL: it cannot write batches');
    if (this.writer === undefined || this.writer.isClosed) this.writer = await RespConnection.connect(this.redisUrl);
    return this.writer;
  }

  close(): void {
    this.writer?.close();
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
function checkResults(results: RespReply[]): void {
  for (let i = 0; i < results.length; i++) {
    const result = results[i];
    if (result instanceof RespError) throw new RedisWriteError(`redis command ${i + 1} of ${results.length} failed: ${result.message}`);
    if (result === null || result === undefined) throw new RedisWriteError(`redis command ${i + 1} of ${results.length} returned no reply`);
  }
}

const MULTI = respCommand(['MULTI']);
const EXEC = respCommand(['EXEC']);
