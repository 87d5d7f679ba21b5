import { RedisWriteError } from '../errors.js';
import { RespConnection, RespError, respCommand, type RespReply } from './resp-connection.js';
import type { RedisConnectionSettings, RedisTarget } from './redis-target.js';
import { checkIsMaster, findSentinelMaster } from './sentinel-master.js';
import type { WriteBatch } from './write-batch.js';

// The hot path's writer: batches go to Redis on a connection of its own, RESP encoded by WriteBatch, each
// with the checkpoint that covers it in one MULTI/EXEC. Everything else goes through RedisStore (ioredis).

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
  /** Host, port, user, password, TLS and database, as ioredis parsed REDIS_URL (connectionSettingsOf). */
  connection: RedisConnectionSettings;
  /** After each batch, WAIT for this many replicas (0: no WAIT). */
  minReplicas: number;
  /** How long one WAIT blocks the writer connection at most. */
  waitTimeoutMs: number;
}

export class BatchWriter {
  private writer: RespConnection | undefined;

  constructor(
    private readonly settings: WriterSettings,
    private readonly checkpointKey: string,
    /** The connection's name (CLIENT SETNAME): a new active process closes its predecessor's by it. */
    readonly writerName: string,
  ) {}

  /**
   * Sends a batch and the checkpoint that covers it as one MULTI/EXEC: Redis applies all of it or none.
   * With --redis-min-replicas and `waitForReplicas`, a WAIT follows on the same connection. Resolves with the
   * checkpoint it replaced and the replicas' count only when every reply is a success; rejects otherwise.
   */
  async write(batch: WriteBatch, checkpointText: string, waitForReplicas: boolean): Promise<BatchReply> {
    // XX: a checkpoint that vanished (Redis restarted empty, FLUSHALL) is not recreated here, so the loss
    // stays visible: the reply is null and the consumer resyncs.
    const minReplicas = waitForReplicas ? this.settings.minReplicas : 0;
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
    return respCommand(['WAIT', String(minReplicas), String(this.settings.waitTimeoutMs)]);
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
    const { target, connection: urlSettings } = this.settings;
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

  /** Closes the connection; the next write opens a new one. */
  close(): void {
    this.writer?.close();
    this.writer = undefined;
  }
}

/** WAIT answers the number of replicas that confirmed. */
function checkWaitReply(reply: RespReply | undefined): number {
  if (typeof reply !== 'number') {
    throw new RedisWriteError(`redis WAIT answered ${reply instanceof RespError ? reply.message : JSON.stringify(reply)}`);
  }
  return reply;
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
