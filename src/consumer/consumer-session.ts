import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { JobFigures } from '../budget/job.js';
import { parseJob, readJobFigures } from '../replication/job-row.js';
import { checkReplicationReady } from '../db/check-database.js';
import { contractProblems, readTableContract, type TableContract } from '../db/table-contract.js';
import type { Database } from '../db/database.js';
import { PermanentError, RowError } from '../errors.js';
import type { Logger } from '../logger.js';
import { JobChangeDecoder, makeJobColumnRanges, type JobChange } from '../replication/job-changes.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { decodePgoutput } from '../replication/pgoutput-decoder.js';
import { openReplicationConnection, type ReplicationConnection } from '../replication/replication-connection.js';
import { consumerApplicationName, describeBackend, describeSlotOwner, tryLockSlot } from '../replication/slot-owner.js';
import { createSlot, dropSlot, readSlot, type CreatedSlot, type SlotState } from '../replication/slot.js';
import { formatCheckpoint, isCovered, parseCheckpoint, type Checkpoint } from '../sink/checkpoint.js';
import { isPlainJobId } from '../sink/job-value.js';
import type { RebuildCause } from '../sink/rebuild-record.js';
import type { BatchReply } from '../sink/batch-writer.js';
import type { Sink } from '../sink/sink.js';
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
  /** Replicas that must confirm a write (WAIT) before its position is acknowledged. */
  redisMinReplicas: number;
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
 * An acknowledgement that carries no write of its own (an idle keepalive, a transaction whose changes were all
 * replayed) first moves the checkpoint's acknowledged position: at most one such small write this often.
 * (The first after a batch goes at once: the slot's position must not lag the keys by this much.)
 */
export const ACK_WRITE_INTERVAL_MS = 2_000;

/** A position (commit LSN, index) of a change, without the checkpoint's other fields. */
type ChangePosition = Pick<Checkpoint, 'commitLsn' | 'index'>;

/** Why a session must rebuild Redis before it streams. */
interface RebuildNeed {
  cause: RebuildCause;
  reason: string;
}

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
  /** Written into every checkpoint this session writes: a checkpoint with another token was written by someone else. */
  private readonly writerToken = randomBytes(4).toString('hex');
  /** The checkpoint text Redis must hold once every write issued so far is applied: what the next SET … GET must answer. */
  private expectedCheckpointText: string | undefined;
  /** Counts checkpoint writes issued, so that a periodic read can tell whether one happened meanwhile. */
  private checkpointWritesIssued = 0;
  /** The change position of the last checkpoint issued. */
  private issuedPosition: ChangePosition = { commitLsn: 0n, index: -1 };
  /** The acknowledged position of the last checkpoint issued: nothing beyond it may be acknowledged before a write moves it. */
  private issuedAckLsn: Lsn = 0n;
  /**
   * Positions up to this one may be acknowledged without a write of their own: a checkpoint write already
   * issued covers them, and (with --redis-min-replicas) waits for the replicas.
   */
  private coveredAckLsn: Lsn = 0n;
  /** When the last checkpoint write of an acknowledgement alone was issued (performance.now()). */
  private lastAckWriteAt = Number.NEGATIVE_INFINITY;
  /** A position safe to acknowledge once a checkpoint write covers it (from an idle keepalive or a write-less commit). */
  private pendingAckLsn: Lsn | undefined;
  private ackTimer: NodeJS.Timeout | undefined;
  /** True while a batch waits for replicas (--redis-min-replicas): its acknowledgement is held. */
  private replicasBehind = false;
  /** Scratch space of the bulk-load path (applyInsertFromBytes), reused for every row. */
  private readonly insertRanges = makeJobColumnRanges();
  private readonly insertFigures: JobFigures = { budgetCents: 0, daysOnline: 0, createdAtMs: 0, expiresAtMs: 0 };
  private readonly keyPrefixBytes: Buffer;
  private readonly failed: Promise<never>;
  private rejectFailed!: (error: Error) => void;

  constructor(
    private readonly settings: SessionSettings,
    private readonly db: Kysely<Database>,
    private readonly sink: Sink,
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

  /**
   * Streams until stop() (resolves) or an error (rejects). Rejects with a StandbyError, having done nothing,
   * when another process holds the slot.
   */
  async run(): Promise<void> {
    const { slotName, publicationName } = this.settings;
    const connection = await openReplicationConnection(this.settings.databaseUrl, consumerApplicationName());
    this.connection = connection;
    const statusTimer = setInterval(() => connection.sendStatus(this.confirmedLsn), STATUS_INTERVAL_MS);
    let checkpointTimer: NodeJS.Timeout | undefined;
    try {
      if (!(await tryLockSlot(connection, slotName))) {
        throw new StandbyError(slotName, await describeSlotOwner(this.db, slotName).catch(() => undefined));
      }
      await this.sink.reconnectIfEnded();
      await this.closeEarlierWriters();
      // Checked by every session, not once: someone may alter the publication or the table while we run.
      await checkReplicationReady(this.db, publicationName);
      const contract = await readTableContract(this.db, publicationName);
      if (contract !== undefined) this.describeTable('table', contract);
      let slot = await readSlot(this.db, slotName);
      let lostSlot = false;
      if (slot?.walStatus === 'lost') {
        this.logger.error(
          { walStatus: slot.walStatus },
          'the slot lost WAL it needed (max_slot_wal_keep_size): dropping and recreating it, then rebuilding Redis from the table',
        );
        await dropSlot(this.db, slotName);
        slot = undefined;
        lostSlot = true;
      }
      if (slot?.active === true && slot.activePid !== null) {
        // The lock is ours but a walsender still holds the slot: the previous owner is exiting, or a
        // process that takes no lock (pg_recvlogical) reads it. Wait as a standby either way.
        throw new StandbyError(slotName, (await describeBackend(this.db, slot.activePid)) ?? `pid ${slot.activePid}`);
      }
      this.events.emit('role', { role: 'active', activeConsumer: undefined });
      if (slot !== undefined && slot.plugin !== 'pgoutput') {
        throw new PermanentError(
          `replication slot ${slotName} uses the ${slot.plugin} plugin, not pgoutput: drop it or choose another name with --slot`,
        );
      }
      // The slot is read before the checkpoint: a checkpoint read later covers at least what the slot says.
      const stored = await this.sink.readCheckpoint();
      let checkpointText: string;
      let slotCreated = false;
      if (slot === undefined) {
        const created = await createSlot(connection, slotName);
        slotCreated = true;
        const need: RebuildNeed = lostSlot
          ? { cause: 'slot-lost', reason: 'the slot lost WAL it needed: loading the rows alive in the table as of the new slot' }
          : { cause: 'new-slot', reason: 'new slot: loading the rows alive in the table as of its start' };
        checkpointText = await this.resync(created, need, created.consistentPoint);
        slot = await readSlot(this.db, slotName);
      } else {
        const need = await this.rebuildNeed(stored, slot);
        checkpointText = need === undefined ? stored!.text : await this.resyncOnTemporarySlot(need, slot.confirmedFlushLsn ?? 0n);
      }
      if (slot === undefined || slot.confirmedFlushLsn === undefined) {
        throw new Error(`replication slot ${slotName} vanished while starting: is another process dropping it?`);
      }
      this.adoptCheckpoint(checkpointText, slot.confirmedFlushLsn);
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
      // Writes notice a vanished or replaced checkpoint too, but an idle stream writes nothing.
      checkpointTimer = setInterval(() => this.verifyCheckpoint(), CHECKPOINT_CHECK_INTERVAL_MS);
      this.logger.info({ lsn: formatLsn(this.confirmedLsn), slotCreated, checkpoint: checkpointText }, 'streaming from slot');
      await Promise.race([streamEnded, this.failed]);
    } finally {
      clearInterval(statusTimer);
      clearInterval(checkpointTimer);
      clearTimeout(this.ackTimer);
      await connection.close();
      await this.queue.settled();
    }
  }

  /** Fences the slot's earlier owners off Redis before the checkpoint is read (see RedisSink#closeEarlierWriters). */
  private async closeEarlierWriters(): Promise<void> {
    try {
      const closed = await this.sink.closeEarlierWriters();
      if (closed > 0) this.logger.info({ closed }, "closed the batch writer connections of the slot's earlier owner");
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (!/NOPERM|unknown command/i.test(message)) throw error;
      // Without the command a dead predecessor's last batch may still land; the checkpoint check then
      // notices it, and the price is a rebuild.
      this.logger.warn({ err: message }, 'cannot close earlier batch writers (CLIENT LIST/KILL refused): a takeover may cost a rebuild');
    }
  }

  /**
   * Whether Redis must be rebuilt before streaming, and why: it holds no checkpoint (lost, or a rebuild was
   * asked for), or an older one than PostgreSQL was told is safe (it went back in time).
   */
  private async rebuildNeed(
    stored: { checkpoint: Checkpoint; text: string } | undefined,
    slot: SlotState,
  ): Promise<RebuildNeed | undefined> {
    if (stored === undefined) {
      const request = await this.sink.readRebuildRequest();
      if (request !== undefined) return { cause: request.cause, reason: request.detail };
      return {
        cause: 'redis-empty',
        reason: 'Redis holds no checkpoint for this slot: it lost its state (a restart without persistence, FLUSHALL)',
      };
    }
    const { ackLsn } = stored.checkpoint;
    const confirmed = slot.confirmedFlushLsn;
    if (ackLsn !== undefined && confirmed !== undefined && ackLsn < confirmed) {
      return {
        cause: 'redis-went-back',
        reason:
          `Redis went back in time: its checkpoint covers acknowledgements up to ${formatLsn(ackLsn)}, but PostgreSQL was told ` +
          `${formatLsn(confirmed)} is safe (the slot's confirmed_flush_lsn); likely causes: a restart from an older RDB snapshot ` +
          'or AOF, a failover to a replica that missed writes (see --redis-min-replicas), or a restore from a backup',
      };
    }
    return undefined;
  }

  /** Streams from `text`: skips what it covers, and expects it back from the first checkpoint write. */
  private adoptCheckpoint(text: string, slotConfirmedLsn: Lsn): void {
    const checkpoint = parseCheckpoint(text);
    this.skipThrough = checkpoint;
    this.expectedCheckpointText = text;
    this.issuedPosition = { commitLsn: checkpoint.commitLsn, index: checkpoint.index };
    // A checkpoint of an older version has no acknowledged position: PostgreSQL's own is what it covered.
    this.issuedAckLsn = checkpoint.ackLsn ?? slotConfirmedLsn;
    // The checkpoint read may never have reached a replica; what PostgreSQL was told did.
    this.coveredAckLsn = this.settings.redisMinReplicas > 0 ? slotConfirmedLsn : this.issuedAckLsn;
  }

  /**
   * Reads the checkpoint: gone means Redis lost its state or a resync was requested; another text than the
   * one this session wrote last (with nothing in flight) means Redis went back in time or someone else wrote it.
   */
  private verifyCheckpoint(): void {
    const expected = this.expectedCheckpointText;
    const issued = this.checkpointWritesIssued;
    const quiet = this.queue.size === 0;
    this.sink.readCheckpointText().then(
      (text) => {
        if (text === null) this.rejectFailed(new RedisStateLostError());
        else if (text !== expected && quiet && issued === this.checkpointWritesIssued && this.queue.size === 0) {
          this.wentBack(expected, text).catch((error: Error) => this.rejectFailed(error));
        }
      },
      () => undefined, // Redis unreachable: the next write fails and says so
    );
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

  /**
   * Rebuilds Redis from the slot's exported snapshot and sets the checkpoint at the slot's start; returns the
   * checkpoint's text. `acknowledgedLsn` is what PostgreSQL was told already: the new checkpoint covers it.
   */
  private async resync(slot: CreatedSlot, need: RebuildNeed, acknowledgedLsn: Lsn): Promise<string> {
    this.logger.warn({ lsn: formatLsn(slot.consistentPoint), cause: need.cause, reason: need.reason }, 'resync from the table started');
    this.events.emit('resync-started', need);
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
    const text = await this.sink.createCheckpoint({
      commitLsn: slot.consistentPoint,
      index: -1,
      ackLsn: slot.consistentPoint > acknowledgedLsn ? slot.consistentPoint : acknowledgedLsn,
      writer: this.writerToken,
    });
    await this.sink.recordRebuild(need.cause, need.reason);
    const durationMs = Math.round(performance.now() - started);
    this.logger.info({ ...result, durationMs, cause: need.cause }, 'resync from the table finished');
    this.events.emit('resync-finished', { ...result, durationMs, cause: need.cause });
    return text;
  }

  /** A resync for an existing slot: a temporary slot gives a snapshot and its exact position. */
  private async resyncOnTemporarySlot(need: RebuildNeed, acknowledgedLsn: Lsn): Promise<string> {
    const temporary = await openReplicationConnection(this.settings.databaseUrl, 'budget-cdc resync');
    try {
      const name = `${this.settings.slotName.slice(0, 40)}_resync_${process.pid}`;
      return await this.resync(await createSlot(temporary, name, true), need, acknowledgedLsn);
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
    if (change.tag === 'upsert' || change.tag === 'delete' || change.tag === 'truncate' || change.tag === 'unreadable') {
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
          this.setAside(error.jobId, error.message, lsn);
          break;
        }
        // A job already offline gets no key; an older key of it goes.
        if (job.expiresAtMs <= Date.now()) this.batch.del(prefix + job.jobId);
        else this.batch.setJobOf(this.keyPrefixBytes, job);
        // The new value is right; what may be wrong is an old key nobody can name: set aside to say so.
        if (change.previousJobIdMissing !== undefined) this.setAside(job.jobId, change.previousJobIdMissing, lsn);
        break;
      }
      case 'unreadable':
        this.setAside(change.jobId, change.reason, lsn);
        break;
      case 'table':
        // The stream's description says nothing of the publication: the stream comes through it.
        this.describeTable('stream', {
          replicaIdentity: change.replicaIdentity,
          missingColumns: change.missingColumns,
          inPublication: true,
        });
        break;
      case 'delete':
        this.batch.del(this.settings.keyPrefix + change.jobId);
        break;
      case 'truncate': {
        this.flush();
        // No WAIT: it acknowledges nothing; the commit's acknowledgement waits for the replicas later.
        const checkpoint = this.issueCheckpoint({ commitLsn: this.transactionLsn, index: this.changeIndex }, undefined, false);
        this.queue.push({
          exclusive: true,
          ackLsn: undefined,
          run: async () => {
            const deletedKeys = await this.sink.deleteKeysUnderPrefix();
            await this.writeCheckpoint(this.sink.newBatch(), checkpoint);
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

  private describeTable(source: 'table' | 'stream', contract: TableContract): void {
    const { replicaIdentity, missingColumns } = contract;
    this.events.emit('table-described', {
      source,
      replicaIdentity,
      missingColumns,
      problems: contractProblems(contract, this.settings.publicationName),
    });
  }

  /** Puts a change aside as a dead letter (job_id null when the change did not carry it), in the batch of its position. */
  private setAside(jobId: string | undefined, reason: string, lsn: Lsn): void {
    const entry = JSON.stringify({ job_id: jobId ?? null, lsn: formatLsn(lsn), reason, at: new Date().toISOString() });
    this.batch.deadLetter(entry);
    this.logger.warn({ jobId, lsn: formatLsn(lsn), reason }, 'row set aside as a dead letter');
    this.events.emit('dead-letter', { jobId, reason, lsn });
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
    const ackLsn = maxLsn(this.batchAckLsn, this.pendingAckLsn);
    this.batchAckLsn = undefined;
    if (this.batch.commands === 0) {
      // Commits with no write of their own (all changes replayed, or set aside elsewhere) move only the
      // acknowledged position: a checkpoint write must cover it first, which waits for the next interval.
      if (ackLsn !== undefined) this.acknowledgeWithoutWrites(ackLsn);
      return;
    }
    this.pendingAckLsn = undefined;
    const writes = this.batch;
    const position: ChangePosition =
      this.batchCheckpointLsn === undefined
        ? this.issuedPosition
        : { commitLsn: this.batchCheckpointLsn, index: this.batchCheckpointIndex };
    // A batch that ends no transaction acknowledges nothing: replicas need not confirm it, and its WAIT would
    // stall the writer connection for nothing (a large COPY is hundreds of such batches). The next WAIT
    // covers it: WAIT waits for everything Redis applied before it.
    const checkpoint = this.issueCheckpoint(position, ackLsn, ackLsn !== undefined);
    const rows = this.batchRows;
    const transactions = this.batchTransactions;
    this.batchRows = 0;
    this.batchTransactions = 0;
    this.batch = this.sink.newBatch();
    this.batchCheckpointLsn = undefined;
    this.queue.push({
      exclusive: false,
      ackLsn,
      run: async () => {
        const started = performance.now();
        const commands = writes.commands;
        await this.writeCheckpoint(writes, checkpoint);
        this.events.emit('batch-written', { writes: commands, rows, transactions, durationMs: performance.now() - started });
      },
    });
  }

  /** `ackLsn` is safe once the tasks before it succeed; it is acknowledged when a checkpoint write covers it. */
  private acknowledgeWithoutWrites(ackLsn: Lsn): void {
    if (ackLsn <= this.coveredAckLsn) {
      this.pendingAckLsn = undefined;
      this.queue.push({ exclusive: false, ackLsn, run: async () => undefined });
      return;
    }
    this.pendingAckLsn = ackLsn;
    if (this.ackTimer !== undefined) return;
    // The first one after a burst of batches goes at once; while idle, one per interval at most.
    const waitMs = Math.max(0, this.lastAckWriteAt + ACK_WRITE_INTERVAL_MS - performance.now());
    this.ackTimer = setTimeout(() => {
      this.ackTimer = undefined;
      this.writePendingAck();
    }, waitMs);
  }

  /** Moves the checkpoint's acknowledged position to the pending one (a small write), then acknowledges it. */
  private writePendingAck(): void {
    const ackLsn = this.pendingAckLsn;
    if (ackLsn === undefined || this.stopping || this.queue.failed) return;
    this.pendingAckLsn = undefined;
    if (ackLsn <= this.coveredAckLsn) {
      this.queue.push({ exclusive: false, ackLsn, run: async () => undefined });
      return;
    }
    const checkpoint = this.issueCheckpoint(this.issuedPosition, ackLsn, true);
    this.lastAckWriteAt = performance.now();
    this.queue.push({ exclusive: false, ackLsn, run: () => this.writeCheckpoint(this.sink.newBatch(), checkpoint) });
  }

  /**
   * The checkpoint text of the next write, in stream order, and the text Redis must hold just before it.
   * Its acknowledged position never goes back.
   */
  private issueCheckpoint(position: ChangePosition, ackLsn: Lsn | undefined, waitForReplicas: boolean): IssuedCheckpoint {
    if (ackLsn !== undefined && ackLsn > this.issuedAckLsn) this.issuedAckLsn = ackLsn;
    if (waitForReplicas || this.settings.redisMinReplicas === 0) this.coveredAckLsn = this.issuedAckLsn;
    this.issuedPosition = position;
    const text = formatCheckpoint({ ...position, ackLsn: this.issuedAckLsn, writer: this.writerToken });
    const expectedPrevious = this.expectedCheckpointText;
    this.expectedCheckpointText = text;
    this.checkpointWritesIssued++;
    return { text, expectedPrevious, waitForReplicas };
  }

  /**
   * Writes `writes` with the checkpoint; checks that Redis held the checkpoint this session wrote before
   * (else it lost its state or went back in time); with --redis-min-replicas, returns only once enough
   * replicas confirmed. Only then may the task's position be acknowledged.
   */
  private async writeCheckpoint(writes: WriteBatch, checkpoint: IssuedCheckpoint): Promise<void> {
    const reply = await this.sink.write(writes, checkpoint.text, checkpoint.waitForReplicas);
    if (reply.previous === null) throw new RedisStateLostError();
    if (reply.previous !== checkpoint.expectedPrevious) await this.wentBack(checkpoint.expectedPrevious, reply.previous);
    await this.awaitReplicas(reply);
  }

  /**
   * Redis holds a checkpoint this session did not write last: asks for a rebuild, then throws. Recorded in
   * Redis before the session ends, so that whichever process starts next rebuilds, even if the checkpoint
   * found (written by someone else) claims to cover changes Redis lacks.
   */
  private async wentBack(expected: string | undefined, found: string): Promise<never> {
    const error = new RedisWentBackError(expected, found);
    await this.sink.requestRebuild({ cause: 'redis-went-back', detail: error.message });
    throw error;
  }

  /** Holds the acknowledgement until --redis-min-replicas replicas confirmed, asking again (WAIT) meanwhile. */
  private async awaitReplicas(reply: BatchReply): Promise<void> {
    const required = this.settings.redisMinReplicas;
    let replicas = reply.replicas;
    if (replicas === undefined || required === 0) return;
    while (replicas < required) {
      if (!this.replicasBehind) {
        this.replicasBehind = true;
        this.logger.warn({ replicas, required }, 'Redis replicas have not confirmed the last batch: holding its acknowledgement');
      }
      this.events.emit('replicas-behind', { replicas, required });
      if (this.stopping) throw new Error('stopped while waiting for Redis replicas: the batch is not acknowledged and will be replayed');
      replicas = await this.sink.waitForReplicas(required);
    }
    if (this.replicasBehind) {
      this.replicasBehind = false;
      this.logger.info({ replicas, required }, 'Redis replicas confirmed: acknowledging again');
    }
    this.events.emit('replicas-confirmed', { replicas, required });
  }

  private confirm(lsn: Lsn): void {
    if (lsn <= this.confirmedLsn) return;
    this.confirmedLsn = lsn;
    // 'acknowledged' means PostgreSQL was told; a closed connection tells it nothing.
    if (this.connection?.sendStatus(lsn) === true) this.events.emit('acknowledged', { lsn });
  }

  private onKeepalive(walEnd: Lsn, replyRequested: boolean): void {
    if (this.stopping) return;
    // Between transactions, with nothing waiting to be flushed, everything the server sent before this
    // keepalive is handled once the writes already queued succeed, so its position can be acknowledged
    // after them (and after a checkpoint write that covers it): an idle slot must not hold back WAL.
    const idle = !this.inTransaction && this.batch.commands === 0 && this.batchAckLsn === undefined;
    if (idle && walEnd > this.confirmedLsn && walEnd > (this.pendingAckLsn ?? 0n)) this.acknowledgeWithoutWrites(walEnd);
    if (replyRequested) this.connection?.sendStatus(this.confirmedLsn);
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

/** A checkpoint write's text, and the text Redis must hold when the write arrives. */
interface IssuedCheckpoint {
  text: string;
  expectedPrevious: string | undefined;
  /** With --redis-min-replicas: WAIT after it (its task acknowledges a position). */
  waitForReplicas: boolean;
}

function maxLsn(a: Lsn | undefined, b: Lsn | undefined): Lsn | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}

/** Another process holds the slot: this one waits as a standby. Not a failure. */
export class StandbyError extends Error {
  override name = 'StandbyError';
  constructor(
    readonly slotName: string,
    /** Who holds it ("pid 4242 (budget-cdc host-a pid 17) from 10.0.0.7"), when PostgreSQL could tell. */
    readonly activeConsumer: string | undefined,
  ) {
    super(`slot ${slotName} is consumed by another process${activeConsumer === undefined ? '' : `: ${activeConsumer}`}`);
  }
}

/**
 * Redis answered a checkpoint this session did not write last: Redis went back in time (restarted from an
 * older snapshot, failed over to a replica that missed writes), or another process writes under our
 * checkpoint. The next session rebuilds Redis from the table.
 */
export class RedisWentBackError extends Error {
  override name = 'RedisWentBackError';
  constructor(expected: string | undefined, found: string) {
    super(
      `Redis went back in time or someone else wrote the checkpoint: expected "${expected ?? '(none)'}", found "${found}"; ` +
        'rebuilding Redis from the table (check Redis persistence and failovers, and that no other pipeline uses this --key-prefix)',
    );
  }
}

/** The checkpoint vanished while streaming: Redis restarted empty or was flushed. The next session resyncs. */
export class RedisStateLostError extends Error {
  override name = 'RedisStateLostError';
  constructor() {
    super('Redis lost its state (the checkpoint key vanished: restart without persistence or FLUSHALL); resyncing from the table');
  }
}
