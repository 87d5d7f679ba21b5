import type { Redis } from 'ioredis';
import { RedisWriteError } from '../errors.js';
import { formatCheckpoint, parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { checkpointKey, deadLetterKey, rebuildHistoryKey, rebuildRequestKey, resyncProgressKey } from './internal-keys.js';
import type { RebuildCause, RebuildHistory, RebuildRequest } from './rebuild-record.js';
import { RespConnection, RespError, respCommand, type RespReply } from './resp-connection.js';
import { connectionSettingsOf, type RedisTarget } from './redis-target.js';
import { checkIsMaster, findSentinelMaster } from './sentinel-master.js';
import { WriteBatch } from './write-batch.js';

const SCAN_COUNT = 1_000;
const RESYNC_PROGRESS_TTL_MS = 60_000;

/** What Redis answered to a batch: the checkpoint it replaced, and how many replicas confirmed it (WAIT). */
export interface BatchReply {
  /** The checkpoint text before this batch; null when Redis had none (it lost its state). */
  previous: string | null;
  /** Replicas that confirmed the batch within the WAIT timeout; undefined when no WAIT was asked for. */
  replicas: number | undefined;
}

/** Where the batch writer connects, and what it asks of replicas. */
export interface WriterSettings {
  target: RedisTarget;
  /** After each batch, WAIT for this many replicas (0: no WAIT). */
  minReplicas: number;
  /** How long one WAIT blocks the writer connection at most. */
  waitTimeoutMs: number;
}

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
    private readonly writerSettings?: WriterSettings,
  ) {
    this.checkpointKey = checkpointKey(keyPrefix);
    this.deadLetterKey = deadLetterKey(slotName);
    this.resyncProgressKey = resyncProgressKey(keyPrefix);
    this.rebuildRequestKey = rebuildRequestKey(keyPrefix);
    this.rebuildHistoryKey = rebuildHistoryKey(keyPrefix);
    // Client names take no spaces; slot names are plain SQL names.
    this.writerName = `budget-cdc-writer-${slotName}`;
  }

  /** The batch writer's connection name (CLIENT SETNAME): a new active process closes its predecessor's by it. */
  readonly writerName: string;

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

  private writer: RespConnection | undefined;

  /** A new, empty batch. */
  newBatch(): WriteBatch {
    return new WriteBatch(this.deadLetterKey);
  }

  /**
   * Sends a batch and the checkpoint that covers it as one MULTI/EXEC: Redis applies all of it or none.
   * With --redis-min-replicas and `waitForReplicas`, a WAIT follows on the same connection. Resolves with the
   * checkpoint it replaced and the replicas' count only when every reply is a success; rejects otherwise.
   */
  async write(batch: WriteBatch, checkpointText: string, waitForReplicas: boolean): Promise<BatchReply> {
    // XX: a checkpoint that vanished (Redis restarted empty, FLUSHALL) is not recreated here, so the loss
    // stays visible: the reply is null and the consumer resyncs.
    const minReplicas = waitForReplicas ? (this.writerSettings?.minReplicas ?? 0) : 0;
    let tail = respCommand(['SET', this.checkpointKey, checkpointText, 'XX', 'GET']) + EXEC;
    if (minReplicas > 0) tail += this.waitCommand(minReplicas);
    const queued = batch.commands + 1;
    const writer = await this.connectWriter();
    let replies: RespReply[];
    try {
      replies = await writer.send([MULTI, batch.bytes, tail], queued + 2 + (minReplicas > 0 ? 1 : 0));
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
    if (typeof previous !== 'string' && previous !== null)
      throw new RedisWriteError(`redis checkpoint write answered ${JSON.stringify(previous)}`);
    return { previous, replicas: minReplicas > 0 ? checkWaitReply(replies[queued + 2]) : undefined };
  }

  /**
   * WAIT again on the writer connection: it covers every write Redis applied before it, this connection's
   * and others'. Resolves with the number of replicas that confirmed within the timeout.
   */
  async waitForReplicas(minReplicas: number): Promise<number> {
    const writer = await this.connectWriter();
    const [reply] = await writer.send(this.waitCommand(minReplicas), 1);
    return checkWaitReply(reply);
  }

  private waitCommand(minReplicas: number): string {
    return respCommand(['WAIT', String(minReplicas), String(this.writerSettings?.waitTimeoutMs ?? 0)]);
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

  /**
   * The writer connection, (re)connected when needed: after Redis restarted, the next session gets a new one.
   * With Sentinels it goes to the master they name now, and only once that server says it is the master.
   */
  private connectWriter(): Promise<RespConnection> {
    if (this.writer !== undefined && !this.writer.isClosed) return Promise.resolve(this.writer);
    // Batches are pipelined: several ask for the writer at once. They must share one connection, or
    // Redis could apply them out of order.
    this.connectingWriter ??= this.openWriter().finally(() => (this.connectingWriter = undefined));
    return this.connectingWriter;
  }

  private connectingWriter: Promise<RespConnection> | undefined;

  private async openWriter(): Promise<RespConnection> {
    const settings = this.writerSettings;
    if (settings === undefined) throw new Error('this RedisSink was made without writer settings: it cannot write batches');
    const { target } = settings;
    const urlSettings = connectionSettingsOf(this.redis.options);
    if (target.redisSentinelMaster === undefined) {
      this.writer = await RespConnection.connect(urlSettings, this.writerName);
    } else {
      const master = await findSentinelMaster(target.redisSentinels, target.redisSentinelMaster);
      const writer = await RespConnection.connect(urlSettings, this.writerName, master);
      try {
        await checkIsMaster(writer, master);
      } catch (error) {
        writer.close();
        throw error;
      }
      this.writer = writer;
    }
    return this.writer;
  }

  /**
   * Connects the control connection again if ioredis gave up on it: with Sentinels, a failed look-up of the
   * master during a failover ends the client for good ('end'), and each new session must start from a live one.
   */
  async reconnectIfEnded(): Promise<void> {
    if (this.redis.status === 'end') await this.redis.connect();
  }

  /**
   * Closes the batch writer connections of earlier owners of the slot (CLIENT KILL), this process's own
   * included: a process killed with batches still in Redis's socket buffer would otherwise have them
   * applied after its successor read the checkpoint, an older write over a newer one. Returns how many it
   * closed. Needs CLIENT LIST and CLIENT KILL (the @admin category); without them it throws NOPERM.
   */
  async closeEarlierWriters(): Promise<number> {
    this.writer?.close();
    this.writer = undefined;
    const list = await this.redis.call('CLIENT', 'LIST', 'TYPE', 'normal');
    if (typeof list !== 'string') throw new RedisWriteError(`redis CLIENT LIST answered ${JSON.stringify(list)}`);
    let closed = 0;
    for (const line of list.split('\n')) {
      const fields = new Map(line.split(' ').map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)]));
      if (fields.get('name') !== this.writerName) continue;
      // 0 when it went away meanwhile: nothing to close.
      closed += Number(await this.redis.call('CLIENT', 'KILL', 'ID', fields.get('id')!));
    }
    return closed;
  }

  close(): void {
    this.writer?.close();
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

/** WAIT answers the number of replicas that confirmed. */
function checkWaitReply(reply: RespReply | undefined): number {
  if (typeof reply !== 'number') {
    throw new RedisWriteError(`redis WAIT answered ${reply instanceof RespError ? reply.message : JSON.stringify(reply)}`);
  }
  return reply;
}

/** An ioredis MULTI/EXEC result: null when aborted, else one [error, result] per command. */
function checkTransaction(results: Array<[Error | null, unknown]> | null, what: string): void {
  if (results === null) throw new RedisWriteError(`redis aborted the transaction of ${what}`);
  const failed = results.find(([error]) => error !== null);
  if (failed !== undefined) throw new RedisWriteError(`redis refused ${what}: ${failed[0]!.message}`);
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
