import type { Kysely } from 'kysely';
import { parseJob, readJobFigures, type JobFigures } from '../budget/job.js';
import type { Database } from '../db/database.js';
import { RowError } from '../errors.js';
import type { Logger } from '../ops/logger.js';
import { JobChangeDecoder, makeJobColumnRanges, type JobChange } from '../replication/job-changes.js';
import { formatLsn, type Lsn } from '../replication/lsn.js';
import { decodePgoutput } from '../replication/pgoutput-decoder.js';
import { openReplicationConnection, type ReplicationConnection } from '../replication/replication-connection.js';
import { createSlot, dropSlot, readSlot, type CreatedSlot } from '../replication/slot.js';
import { isCovered, type Checkpoint } from '../sink/checkpoint.js';
import { isPlainJobId } from '../sink/job-value.js';
import type { RedisSink } from '../sink/redis-sink.js';
import type { WriteBatch } from '../sink/write-batch.js';
import type { ConsumerEvents } from './consumer-events.js';
import { resyncFromSnapshot } from './resync.js';
import { WriteQueue } from './write-queue.js';

export interface SessionSettings {
  databaseUrl: string;
  slotName: string;
  publicationName: string;
  keyPrefix: string;
  batchSize: number;
}

/** A batch is sent once its RESP encoding reaches this many bytes, whatever its command count: long
 * values (a 3650-day job is 36 kB) must not make batches, and so memory, grow with them. */
export const MAX_BATCH_BYTES = 1 << 20;
/** Batches queued or in flight before reading from PostgreSQL pauses; reading resumes at half. */
export const MAX_QUEUED_BATCHES = 4;
/** How often the position is reported even when nothing changes, well inside wal_sender_timeout (60 s). */
const STATUS_INTERVAL_MS = 10_000;
/** How often the session checks that Redis still holds the checkpoint (else it lost its state, or a resync was requested). */
const CHECKPOINT_CHECK_INTERVAL_MS = 1_000;
/** How long a graceful stop waits for the server to end the stream before closing the connection. */
const STOP_TIMEOUT_MS = 5_000;

/**
 * One replication session: opens the slot (creating it when missing), streams changes into Redis in
 * order, and acknowledges a transaction's end position only after Redis confirmed all its writes.
 * Any error ends the session; the consumer starts a new one, which resumes at the slot's confirmed position.
 */
export class ConsumerSession {
  private connection: ReplicationConnection | undefined;
  private readonly decoder = new JobChangeDecoder();
  private readonly queue: WriteQueue;
  private batch: WriteBatch;
  /** End of the last transaction whose writes are all in `batch` or earlier; undefined if none since the last flush. */
  private batchAckLsn: Lsn | undefined;
  /** Changes applied and commits seen since the last flush, for the 'batch-written' event. */
  private batchRows = 0;
  private batchTransactions = 0;
  /** The checkpoint of the last change in `batch` (its transaction's commit LSN and its index), if any. */
  private batchCheckpointLsn: Lsn | undefined;
  private batchCheckpointIndex = -1;
  private flushScheduled = false;
  private inTransaction = false;
  /** Current transaction: its commit position and the index of its last change. */
  private transactionLsn: Lsn = 0n;
  private changeIndex = -1;
  /** Changes at or before this are already in Redis (a replay after a restart): skipped. */
  private skipThrough: Checkpoint | undefined;
  private paused = false;
  private stopping = false;
  private confirmedLsn: Lsn = 0n;
  /** Scratch space of the bulk-load path (applyInsertFromBytes), reused for every row. */
  private readonly insertRanges = makeJobColumnRanges();
  private readonly insertFigures: JobFigures = { budgetCents: 0, daysOnline: 0, createdAtMs: 0, expiresAtMs: 0 };
  private readonly keyPrefixBytes: Buffer;
  private readonly failed: Promise<never>;
  private rejectFailed!: (error: Error) => void;

  constructor(
    private readonly settings: SessionSettings,
    private readonly db: Kysely<Database>,
    private readonly sink: RedisSink,
    private readonly events: ConsumerEvents,
    private readonly logger: Logger,
  ) {
    this.failed = new Promise<never>((_, reject) => {
      this.rejectFailed = reject;
    });
    this.failed.catch(() => undefined); // observed by run(); avoids an unhandled rejection before that
    this.batch = sink.newBatch();
    this.keyPrefixBytes = Buffer.from(settings.keyPrefix);
    this.queue = new WriteQueue(
      (lsn) => this.confirm(lsn),
      (error) => this.rejectFailed(error),
      (size) => this.applyBackpressure(size),
    );
  }

  /** Streams until stop() (resolves) or an error (rejects). */
  async run(): Promise<void> {
    const { slotName, publicationName } = this.settings;
    const connection = await openReplicationConnection(this.settings.databaseUrl, 'budget-cdc');
    this.connection = connection;
    const statusTimer = setInterval(() => connection.sendStatus(this.confirmedLsn), STATUS_INTERVAL_MS);
    let checkpointTimer: NodeJS.Timeout | undefined;
    try {
      let slot = await readSlot(this.db, slotName);
      if (slot?.walStatus === 'lost') {
        this.logger.error(
          { walStatus: slot.walStatus },
          'the slot lost WAL it needed (max_slot_wal_keep_size): dropping and recreating it, then rebuilding Redis from the table',
        );
        await dropSlot(this.db, slotName);
        slot = undefined;
      }
      let checkpoint = await this.sink.readCheckpoint();
      let slotCreated = false;
      if (slot === undefined) {
        const created = await createSlot(connection, slotName);
        slotCreated = true;
        checkpoint = await this.resync(created, 'new slot: loading the rows alive in the table as of its start');
        slot = await readSlot(this.db, slotName);
      } else if (checkpoint === undefined) {
        checkpoint = await this.resyncOnTemporarySlot(
          'Redis holds no checkpoint for this slot: it lost its state (restart without persistence, FLUSHALL) or a resync was requested',
        );
      }
      this.skipThrough = checkpoint;
      if (slot === undefined || slot.confirmedFlushLsn === undefined) {
        throw new Error(`replication slot ${slotName} vanished while starting: is another process dropping it?`);
      }
      if (slot.plugin !== 'pgoutput') {
        throw new Error(
          `replication slot ${slotName} uses the ${slot.plugin} plugin, not pgoutput: drop it or choose another name with --slot`,
        );
      }
      this.confirmedLsn = slot.confirmedFlushLsn;
      if (this.stopping) return;
      const streamEnded = connection.start(
        { slotName, publicationName, startLsn: 0n, messages: false },
        {
          onXLogData: (data, offset, lsn) => this.onXLogData(data, offset, lsn),
          onKeepalive: (walEnd, replyRequested) => this.onKeepalive(walEnd, replyRequested),
        },
      );
      this.events.emit('session-started', { slotName, confirmedLsn: this.confirmedLsn, slotCreated });
      // Writes notice a vanished checkpoint too, but an idle stream writes nothing.
      checkpointTimer = setInterval(() => {
        this.sink.hasCheckpoint().then(
          (present) => present || this.rejectFailed(new RedisStateLostError()),
          () => undefined, // Redis unreachable: the next write fails and says so
        );
      }, CHECKPOINT_CHECK_INTERVAL_MS);
      this.logger.info({ lsn: formatLsn(this.confirmedLsn), slotCreated }, 'streaming from slot');
      await Promise.race([streamEnded, this.failed]);
    } finally {
      clearInterval(statusTimer);
      clearInterval(checkpointTimer);
      await connection.close();
      await this.queue.settled();
    }
  }

  /**
   * Graceful stop: stops taking changes, writes what was received, acknowledges the last complete
   * transaction, then ends the stream. run() resolves afterwards.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const connection = this.connection;
    if (connection === undefined) return;
    this.flush();
    try {
      await this.queue.drained();
    } catch {
      return; // run() rejects with the write error; nothing more may be acknowledged
    }
    connection.sendStatus(this.confirmedLsn);
    connection.requestStop();
    // The server answers CopyDone only once it reads it, and we must read its reply: resume the socket.
    connection.resume();
    const timeout = setTimeout(() => void connection.close(), STOP_TIMEOUT_MS);
    timeout.unref();
  }

  /** Rebuilds Redis from the slot's exported snapshot and sets the checkpoint at the slot's start. */
  private async resync(slot: CreatedSlot, reason: string): Promise<Checkpoint> {
    this.logger.warn({ lsn: formatLsn(slot.consistentPoint), reason }, 'resync from the table started');
    this.events.emit('resync-started', { reason });
    const started = performance.now();
    const result = await resyncFromSnapshot({
      databaseUrl: this.settings.databaseUrl,
      snapshotName: slot.snapshotName,
      snapshotLsn: slot.consistentPoint,
      sink: this.sink,
      onProgress: async (progress) => {
        this.events.emit('resync-progress', progress);
        await this.sink.writeResyncProgress(progress);
      },
    });
    // Transactions committed before the snapshot's position are in Redis now: the stream skips them.
    const checkpoint: Checkpoint = { commitLsn: slot.consistentPoint, index: -1 };
    await this.sink.writeCheckpoint(checkpoint, 'create');
    const durationMs = Math.round(performance.now() - started);
    this.logger.info({ ...result, durationMs }, 'resync from the table finished');
    this.events.emit('resync-finished', { ...result, durationMs });
    return checkpoint;
  }

  /** A resync for an existing slot: a temporary slot gives a snapshot and its exact position. */
  private async resyncOnTemporarySlot(reason: string): Promise<Checkpoint> {
    const temporary = await openReplicationConnection(this.settings.databaseUrl, 'budget-cdc resync');
    try {
      const name = `${this.settings.slotName.slice(0, 40)}_resync_${process.pid}`;
      return await this.resync(await createSlot(temporary, name, true), reason);
    } finally {
      await temporary.close(); // drops the temporary slot
    }
  }

  private onXLogData(data: Buffer, offset: number, lsn: Lsn): void {
    if (this.stopping) return; // not applied, so not acknowledged: the next session receives it again
    if (this.applyInsertFromBytes(data, offset)) return;
    const change = this.decoder.toJobChange(decodePgoutput(data, offset, lsn), lsn);
    if (change !== undefined) this.apply(change, lsn);
  }

  /**
   * The path of bulk loads: an Insert into jobs goes from the message bytes into the batch as one SET,
   * with no strings or objects per row. Returns false, having done nothing, for every other message and
   * for a row not in the plain form PostgreSQL prints (a job_id JSON must escape, a row to set aside, a
   * job already offline): apply() handles those, with the same result.
   */
  private applyInsertFromBytes(data: Buffer, offset: number): boolean {
    const ranges = this.insertRanges;
    const figures = this.insertFigures;
    if (!this.decoder.locateInsert(data, offset, ranges)) return false;
    if (!isPlainJobId(data, ranges.jobIdStart, ranges.jobIdEnd)) return false;
    if (!readJobFigures(data, ranges, figures) || figures.expiresAtMs <= Date.now()) return false;
    if (!this.countChange()) return true;
    this.moveBatchCheckpoint();
    this.batch.setJob(this.keyPrefixBytes, data, ranges.jobIdStart, ranges.jobIdEnd, figures);
    this.flushIfFull();
    return true;
  }

  /** Counts a change of the current transaction; false when the checkpoint covers it (a replay): skip it. */
  private countChange(): boolean {
    this.changeIndex++;
    if (this.skipThrough !== undefined) {
      if (isCovered(this.skipThrough, this.transactionLsn, this.changeIndex)) return false;
      this.skipThrough = undefined; // the stream is in commit order: nothing after this is covered
    }
    this.batchRows++;
    return true;
  }

  /** The batch now holds the current change: its checkpoint is that change's. */
  private moveBatchCheckpoint(): void {
    this.batchCheckpointLsn = this.transactionLsn;
    this.batchCheckpointIndex = this.changeIndex;
  }

  private apply(change: JobChange, lsn: Lsn): void {
    if (change.tag === 'upsert' || change.tag === 'delete' || change.tag === 'truncate') {
      if (!this.countChange()) return;
      // A TRUNCATE writes its checkpoint itself, after the batch before it.
      if (change.tag !== 'truncate') this.moveBatchCheckpoint();
    }
    switch (change.tag) {
      case 'upsert': {
        const prefix = this.settings.keyPrefix;
        if (change.previousJobId !== undefined && change.previousJobId !== change.row.jobId) {
          this.batch.del(prefix + change.previousJobId);
        }
        let job;
        try {
          job = parseJob(change.row);
        } catch (error) {
          if (!(error instanceof RowError)) throw error;
          this.deadLetter(error, lsn);
          break;
        }
        // A job already offline gets no key; an older key of it goes.
        if (job.expiresAtMs <= Date.now()) this.batch.del(prefix + job.jobId);
        else this.batch.setJobOf(this.keyPrefixBytes, job);
        break;
      }
      case 'delete':
        this.batch.del(this.settings.keyPrefix + change.jobId);
        break;
      case 'truncate': {
        const checkpoint: Checkpoint = { commitLsn: this.transactionLsn, index: this.changeIndex };
        this.flush();
        this.queue.push({
          exclusive: true,
          ackLsn: undefined,
          run: async () => {
            const deletedKeys = await this.sink.deleteKeysUnderPrefix();
            if (!(await this.sink.writeCheckpoint(checkpoint, 'only-if-exists'))) throw new RedisStateLostError();
            this.events.emit('truncated', { deletedKeys });
          },
        });
        break;
      }
      case 'begin':
        this.inTransaction = true;
        this.transactionLsn = change.commitLsn;
        this.changeIndex = -1;
        break;
      case 'commit':
        this.inTransaction = false;
        this.batchTransactions++;
        this.batchAckLsn = change.endLsn;
        this.scheduleFlush();
        break;
      case 'message':
        break;
    }
    this.flushIfFull();
  }

  private flushIfFull(): void {
    if (this.batch.commands >= this.settings.batchSize || this.batch.length >= MAX_BATCH_BYTES) this.flush();
  }

  private deadLetter(error: RowError, lsn: Lsn): void {
    const entry = JSON.stringify({ job_id: error.jobId, lsn: formatLsn(lsn), reason: error.message, at: new Date().toISOString() });
    this.batch.deadLetter(entry);
    this.logger.warn({ jobId: error.jobId, lsn: formatLsn(lsn), reason: error.message }, 'row set aside as a dead letter');
    this.events.emit('dead-letter', { jobId: error.jobId, reason: error.message, lsn });
  }

  /** Commits are flushed once the current burst of socket data is processed, so small transactions share a batch. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.batch.commands === 0 && this.batchAckLsn === undefined) return;
    const writes = this.batch;
    const ackLsn = this.batchAckLsn;
    const checkpoint: Checkpoint | undefined =
      this.batchCheckpointLsn === undefined ? undefined : { commitLsn: this.batchCheckpointLsn, index: this.batchCheckpointIndex };
    const rows = this.batchRows;
    const transactions = this.batchTransactions;
    this.batchRows = 0;
    this.batchTransactions = 0;
    this.batch = this.sink.newBatch();
    this.batchAckLsn = undefined;
    this.batchCheckpointLsn = undefined;
    this.queue.push({
      exclusive: false,
      ackLsn,
      run: async () => {
        if (writes.commands === 0 || checkpoint === undefined) {
          writes.release(); // never sent
          return;
        }
        const started = performance.now();
        const previous = await this.sink.write(writes, checkpoint);
        if (previous === null) throw new RedisStateLostError();
        this.events.emit('batch-written', { writes: writes.commands, rows, transactions, durationMs: performance.now() - started });
      },
    });
  }

  private confirm(lsn: Lsn): void {
    if (lsn <= this.confirmedLsn) return;
    this.confirmedLsn = lsn;
    // 'acknowledged' means PostgreSQL was told; a closed connection tells it nothing.
    if (this.connection?.sendStatus(lsn) === true) this.events.emit('acknowledged', { lsn });
  }

  private onKeepalive(walEnd: Lsn, replyRequested: boolean): void {
    if (this.stopping) return;
    // Between transactions, with every write confirmed, everything the server sent before this keepalive
    // is safely handled, so its position can be acknowledged: an idle slot must not hold back WAL.
    const idle = !this.inTransaction && this.batch.commands === 0 && this.batchAckLsn === undefined && this.queue.size === 0;
    if (idle && walEnd > this.confirmedLsn) this.confirm(walEnd);
    else if (replyRequested) this.connection?.sendStatus(this.confirmedLsn);
  }

  private applyBackpressure(queued: number): void {
    const connection = this.connection;
    if (connection === undefined || this.stopping) return;
    if (!this.paused && queued >= MAX_QUEUED_BATCHES) {
      this.paused = true;
      connection.pause();
      this.events.emit('backpressure', { paused: true });
    } else if (this.paused && queued <= MAX_QUEUED_BATCHES / 2) {
      this.paused = false;
      connection.resume();
      this.events.emit('backpressure', { paused: false });
    }
  }
}

/** The checkpoint vanished while streaming: Redis restarted empty or was flushed. The next session resyncs. */
export class RedisStateLostError extends Error {
  override name = 'RedisStateLostError';
  constructor() {
    super('Redis lost its state (the checkpoint key vanished: restart without persistence or FLUSHALL); resyncing from the table');
  }
}
