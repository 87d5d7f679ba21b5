import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { Logger } from '../logger.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { openReplicationConnection, type ReplicationConnection } from '../replication/replication-connection.js';
import { consumerApplicationName } from '../replication/slot-owner.js';
import { readSlot } from '../replication/slot.js';
import type { Sink } from '../sink/sink.js';
import type { WriteBatch } from '../sink/write-batch.js';
import type { ConsumerEvents } from './consumer-events.js';
import { ChangeApplier } from './change-applier.js';
import { CheckpointKeeper, type ChangePosition } from './checkpoint-keeper.js';
import { DeferredWrites, type RefusedJob } from './deferred-writes.js';
import { spoolFolderOf, StreamedTransactions, type CommittedStream } from './streamed-transactions.js';
import type { PendingBatch } from './pending-batch.js';
import { SessionStarter, type SessionSettings } from './session-start.js';
import { WriteQueue } from './write-queue.js';

export type { SessionSettings } from './session-start.js';

/**
 * Batches queued or in flight before reading from PostgreSQL pauses; reading resumes at half. A sink may ask for
 * fewer (Sink#maxQueuedBatches): a cluster's batches are larger and applied one at a time.
 */
export const MAX_QUEUED_BATCHES = 4;
/** How often the position is reported even when nothing changes, well inside wal_sender_timeout (60 s). */
const STATUS_INTERVAL_MS = 10_000;
/** How often the session checks that Redis still holds the checkpoint (else it lost its state, or a resync was requested). */
const CHECKPOINT_CHECK_INTERVAL_MS = 1_000;
/** The first PostgreSQL (server_version_num) whose pgoutput streams in-progress transactions (protocol 2). */
const FIRST_STREAMING_VERSION = 140_000;
/**
 * A session this far behind (WAL between the slot's confirmed position and the server's) catches up with
 * protocol 1 first: the default logical_decoding_work_mem, so that a session that starts behind one large
 * transaction at most still streams.
 */
const CATCH_UP_WITHOUT_STREAMING_BYTES = 64 * 1024 * 1024;
/** How often a session catching up with protocol 1 asks how far behind it is. */
const CATCH_UP_CHECK_INTERVAL_MS = 1_000;

/** logical_decoding_work_mem of a streaming session's walsender, at most (a user setting: no privilege needed). */
const STREAM_WORK_MEM_KB = 4096;

/** How a session that did not fail ended: stopped, or ended on purpose so that the next one streams. */
export type SessionEnd = 'stopped' | 'switch-to-streaming';
/** How long a graceful stop waits for a distribution service's answers before giving their batches up (not acknowledged). */
const STOP_DISTRIBUTION_WAIT_MS = 5_000;
/** How long a graceful stop waits for the server to end the stream before closing the connection. */
const STOP_TIMEOUT_MS = 5_000;
/**
 * An acknowledgement that carries no write of its own (an idle keepalive, a transaction whose changes were all
 * replayed) first moves the checkpoint's acknowledged position: at most one such small write this often.
 * (The first after a batch goes at once: the slot's position must not lag the keys by this much.)
 */
export const ACK_WRITE_INTERVAL_MS = 2_000;

/**
 * One replication session: opens the slot (creating it when missing), streams changes into Redis in
 * order, and acknowledges a transaction's end position only after Redis confirmed all its writes.
 * Any error ends the session; the consumer starts a new one, which resumes at the slot's confirmed position.
 */
export class ConsumerSession {
  private connection: ReplicationConnection | undefined;
  private readonly queue: WriteQueue;
  private readonly starter: SessionStarter;
  private readonly checkpoints: CheckpointKeeper;
  private readonly applier: ChangeApplier;
  private flushScheduled = false;
  private paused = false;
  private stopping = false;
  private confirmedLsn: Lsn = 0n;
  /** When the last checkpoint write of an acknowledgement alone was issued (performance.now()). */
  private lastAckWriteAt = Number.NEGATIVE_INFINITY;
  /** A position safe to acknowledge once a checkpoint write covers it (from an idle keepalive or a write-less commit). */
  private pendingAckLsn: Lsn | undefined;
  private ackTimer: NodeJS.Timeout | undefined;
  /** When work on the current chunk of socket data started (performance.now()), or on its part since a flush. */
  private chunkStartedAt: number | undefined;
  /** The last batch handed to the queue: a commit that follows its writes in an empty batch is fresh with it. */
  private lastQueuedBatch: PendingBatch | undefined;
  /** Batches confirmed by Redis that end a transaction, oldest first, until their position is acknowledged. */
  private readonly writtenAcks: Array<{ ackLsn: Lsn; writtenAt: number }> = [];
  private readonly keyPrefixBytes: Buffer;
  /** Transactions PostgreSQL streams while they run (protocol 2); undefined while streaming is off. */
  private streams: StreamedTransactions | undefined;
  /** A committed streamed transaction is being replayed: messages that arrive meanwhile wait in `held`. */
  private replaying = false;
  /** Messages received during a replay (copies), applied in order after it. */
  private readonly held: Array<{ data: Buffer; lsn: Lsn }> = [];
  /** Resolves a replay waiting for room in the write queue. */
  private roomWaiter: (() => void) | undefined;
  /** This session catches up with protocol 1; once it has, it ends so that a streaming session follows. */
  private switchToStreamingWhenCaughtUp = false;
  private switchingToStreaming = false;
  private catchUpChecking = false;
  /** Aborts the distribution service's requests of this session when it ends: its unacknowledged changes come again. */
  private readonly distributionAbort = new AbortController();
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
    const builtInSplit = settings.strategy.builtIn;
    this.applier = new ChangeApplier(
      { ...settings, maxBatchBytes: sink.batchBytes },
      () => (builtInSplit ? sink.newBatch() : new DeferredWrites()),
      events,
      logger,
      {
        flush: () => this.flush(),
        scheduleFlush: () => this.scheduleFlush(),
        truncate: (position) => this.truncate(position),
      },
    );
    this.keyPrefixBytes = Buffer.from(settings.keyPrefix);
    this.checkpoints = new CheckpointKeeper(sink, settings.redisMinReplicas, events, logger, () => this.stopping);
    this.starter = new SessionStarter(settings, db, sink, events, logger, this.checkpoints.writerToken, this.distributionAbort.signal);
    this.queue = new WriteQueue(
      (lsn) => this.confirm(lsn),
      (error) => {
        this.rejectFailed(error);
        this.releaseRoomWaiter();
      },
      (size) => this.applyBackpressure(size),
    );
  }

  /**
   * Streams until stop() (resolves) or an error (rejects). Rejects with a StandbyError, having done nothing,
   * when another process holds the slot.
   */
  async run(): Promise<SessionEnd> {
    const { slotName, publicationName } = this.settings;
    const connection = await openReplicationConnection(this.settings.databaseUrl, consumerApplicationName());
    this.connection = connection;
    const statusTimer = setInterval(() => connection.sendStatus(this.confirmedLsn), STATUS_INTERVAL_MS);
    let checkpointTimer: NodeJS.Timeout | undefined;
    let catchUpTimer: NodeJS.Timeout | undefined;
    try {
      const { checkpointText, replayThrough, slotConfirmedLsn, slotCreated } = await this.starter.prepare(connection);
      this.applier.startAfter(this.checkpoints.adopt(checkpointText, slotConfirmedLsn), replayThrough);
      this.confirmedLsn = slotConfirmedLsn;
      if (this.stopping) return 'stopped';
      // Far behind (a restart after downtime, a first start after a bulk load), streaming costs: every large
      // transaction is spooled to disk and read back, where protocol 1 sends it whole after its commit. So a
      // session that is behind catches up with protocol 1 and hands over to a streaming one once caught up.
      const streamingPossible = this.settings.streaming && (await serverVersionNumber(this.db)) >= FIRST_STREAMING_VERSION;
      const behindBytes = streamingPossible ? await slotLagBytes(this.db, slotName) : 0;
      const streaming = streamingPossible && behindBytes <= CATCH_UP_WITHOUT_STREAMING_BYTES;
      this.switchToStreamingWhenCaughtUp = streamingPossible && !streaming;
      if (streaming) {
        this.streams = new StreamedTransactions(spoolFolderOf(slotName));
        // The walsender streams a transaction once it holds this much of it; what it holds at COMMIT is sent only
        // then, before the Stream Commit. The server's default (64 MB, a third of a 1M-row COPY) would leave that
        // much to arrive after the commit: a smaller size has it arrive while the transaction runs.
        // A server set lower (tests use 64 kB) keeps its own.
        if ((await decodingWorkMemKb(this.db)) > STREAM_WORK_MEM_KB) {
          await connection.command(`set logical_decoding_work_mem = '${STREAM_WORK_MEM_KB}kB'`);
        }
      }
      const streamEnded = connection.start(
        { slotName, publicationName, startLsn: 0n, messages: false, streaming },
        {
          onXLogData: (data, offset, lsn) => this.onXLogData(data, offset, lsn),
          onKeepalive: (walEnd, replyRequested) => this.onKeepalive(walEnd, replyRequested),
          onChunkStart: () => (this.chunkStartedAt = performance.now()),
          onChunkEnd: () => this.endChunk(),
        },
      );
      this.events.emit('session-started', { slotName, confirmedLsn: this.confirmedLsn, slotCreated, streamedTransactions: streaming });
      // Writes notice a vanished or replaced checkpoint too, but an idle stream writes nothing.
      checkpointTimer = setInterval(
        () =>
          this.checkpoints.verify(
            () => this.queue.size === 0,
            (error) => this.rejectFailed(error),
          ),
        CHECKPOINT_CHECK_INTERVAL_MS,
      );
      // Asked on a timer, not on keepalives: once caught up with an idle server, the walsender sends one keepalive,
      // acknowledged after a checkpoint write, and then none while our status reports keep it content.
      if (this.switchToStreamingWhenCaughtUp)
        catchUpTimer = setInterval(() => void this.switchToStreamingIfCaughtUp(), CATCH_UP_CHECK_INTERVAL_MS);
      this.logger.info(
        { lsn: formatLsn(this.confirmedLsn), slotCreated, checkpoint: checkpointText, streamedTransactions: streaming, behindBytes },
        'streaming from slot',
      );
      await Promise.race([streamEnded, this.failed]);
      return this.switchingToStreaming ? 'switch-to-streaming' : 'stopped';
    } finally {
      clearInterval(statusTimer);
      clearInterval(checkpointTimer);
      clearInterval(catchUpTimer);
      clearTimeout(this.ackTimer);
      this.distributionAbort.abort(new Error('the replication session ended before the distribution service answered'));
      this.streams?.closeAll();
      this.releaseRoomWaiter();
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
      await this.drainedForStop();
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
   * The queue drained. With a distribution service that does not answer, a stop must not wait for ever: after
   * STOP_DISTRIBUTION_WAIT_MS its requests are given up (rejects); what they held is not acknowledged, and the
   * next session receives it again.
   */
  private async drainedForStop(): Promise<void> {
    if (this.settings.strategy.builtIn) return this.queue.drained();
    const timer = setTimeout(
      () => this.distributionAbort.abort(new Error('stopping: the distribution service did not answer in time')),
      STOP_DISTRIBUTION_WAIT_MS,
    );
    try {
      await this.queue.drained();
    } finally {
      clearTimeout(timer);
    }
  }

  private onXLogData(data: Buffer, offset: number, lsn: Lsn): void {
    if (this.stopping) return; // not applied, so not acknowledged: the next session receives it again
    if (this.replaying || this.held.length > 0) {
      // The rest of the socket chunk that brought a Stream Commit: after the replay, in order.
      this.held.push({ data: Buffer.from(data.subarray(offset)), lsn });
      return;
    }
    this.route(data, offset, lsn);
  }

  private route(data: Buffer, offset: number, lsn: Lsn): void {
    const routed = this.streams === undefined ? undefined : this.streams.route(data, offset, lsn);
    if (routed === undefined || routed.kind === 'ordinary') this.applier.applyMessage(data, offset, lsn);
    else if (routed.kind === 'commit') void this.replay(routed.stream);
  }

  /**
   * A streamed transaction committed: its spooled changes go through the applier as one transaction, now, before
   * any later message (reading pauses; what already arrived waits in `held`). Batches are cut and written as
   * for any transaction, the replay waiting for room in the write queue: memory stays bounded whatever its size.
   */
  private async replay(stream: CommittedStream): Promise<void> {
    this.replaying = true;
    this.connection?.pause();
    try {
      this.chunkStartedAt = performance.now();
      this.applier.beginStreamed(stream.commitLsn, stream.commitTimeMs);
      const limit = this.queueLimit();
      for (const change of stream.spool.read()) {
        if (this.stopping || this.queue.failed) return; // not acknowledged: the next session receives it again
        if (stream.abortedSubxids.has(change.subxid)) continue;
        // The byte path reads a message to its buffer's end: each change gets a view of its own bytes.
        this.applier.applyMessage(change.buffer.subarray(change.start, change.end), 0, stream.commitLsn);
        if (this.queue.size >= limit) {
          this.endChunk();
          await new Promise<void>((resolve) => (this.roomWaiter = resolve));
          this.chunkStartedAt = performance.now();
        }
      }
      if (this.stopping || this.queue.failed) return;
      this.applier.commitStreamed(stream.endLsn);
      this.endChunk();
      this.events.emit('stream-committed', { changes: stream.spool.changes });
    } catch (error) {
      this.rejectFailed(error instanceof Error ? error : new Error(String(error)));
      return;
    } finally {
      stream.spool.remove();
      this.replaying = false;
    }
    while (!this.replaying && !this.stopping && this.held.length > 0) {
      const { data, lsn } = this.held.shift()!;
      this.route(data, 0, lsn);
    }
    if (!this.replaying && !this.paused && !this.stopping) this.connection?.resume();
  }

  private releaseRoomWaiter(): void {
    const waiter = this.roomWaiter;
    this.roomWaiter = undefined;
    waiter?.();
  }

  private queueLimit(): number {
    return Math.min(MAX_QUEUED_BATCHES, this.sink.maxQueuedBatches);
  }

  /** Adds the chunk's time (since its start, or since the last flush within it) to the batch being built. */
  private endChunk(): void {
    if (this.chunkStartedAt === undefined) return;
    this.applier.pending.buildMs += performance.now() - this.chunkStartedAt;
    this.chunkStartedAt = undefined;
  }

  /** TRUNCATE: the batch before it, then every key under the prefix, then its own checkpoint. */
  private truncate(position: ChangePosition): void {
    this.flush();
    // No WAIT: it acknowledges nothing; the commit's acknowledgement waits for the replicas later.
    const checkpoint = this.checkpoints.issue(position, undefined, false, true);
    this.queue.push({
      exclusive: true,
      ackLsn: undefined,
      run: async () => {
        const deletedKeys = await this.sink.deleteKeysUnderPrefix();
        await this.checkpoints.write(this.sink.newBatch(), checkpoint);
        this.events.emit('truncated', { deletedKeys });
      },
    });
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
    const pending = this.applier.pending;
    const ackLsn = maxLsn(pending.ackLsn, this.pendingAckLsn);
    pending.ackLsn = undefined;
    if (pending.writes.commands === 0) {
      this.commitsAfterLastBatch(pending);
      // Commits with no write of their own (all changes replayed, or set aside elsewhere) move only the
      // acknowledged position: a checkpoint write must cover it first, which waits for the next interval.
      if (ackLsn !== undefined) this.acknowledgeWithoutWrites(ackLsn);
      return;
    }
    this.pendingAckLsn = undefined;
    const batch = this.applier.takeBatch();
    const { rows, transactions } = batch;
    const position = batch.lastChange() ?? this.checkpoints.issuedPosition;
    // A batch that ends no transaction acknowledges nothing: replicas need not confirm it, and its WAIT would
    // stall the writer connection for nothing (a large COPY is hundreds of such batches). The next WAIT
    // covers it: WAIT waits for everything Redis applied before it.
    const checkpoint = this.checkpoints.issue(position, ackLsn, ackLsn !== undefined);
    const { encoded, ready } = this.encoded(batch.writes);
    this.queue.push({
      exclusive: false,
      ackLsn,
      ready,
      run: async () => {
        const writes = encoded();
        const started = performance.now();
        const commands = writes.commands;
        await this.checkpoints.write(writes, checkpoint);
        const writtenAt = performance.now();
        batch.written = true;
        if (ackLsn !== undefined) this.writtenAcks.push({ ackLsn, writtenAt });
        const durationMs = writtenAt - started;
        this.events.emit('batch-written', { writes: commands, rows, transactions, durationMs, buildMs: batch.buildMs });
        // Read at confirmation, not at push: commits that arrived after this batch's writes may have joined it.
        if (batch.commitTimesMs.length > 0) this.events.emit('transactions-visible', { commitTimesMs: batch.commitTimesMs });
      },
    });
    this.lastQueuedBatch = batch;
    // The part of this chunk spent so far was this batch's; what follows in it is the next one's. Taken after
    // push, which starts the write: sending is the write stage's.
    if (this.chunkStartedAt !== undefined) {
      const now = performance.now();
      batch.buildMs += now - this.chunkStartedAt;
      this.chunkStartedAt = now;
    }
  }

  /**
   * The batch's RESP: at once with the built-in split; with a distribution service, once it answered (`ready`),
   * asked now so that several batches' requests are in flight while earlier batches are written.
   */
  private encoded(writes: WriteBatch | DeferredWrites): { encoded: () => WriteBatch; ready: Promise<void> | undefined } {
    if (!(writes instanceof DeferredWrites)) return { encoded: () => writes, ready: undefined };
    const target = this.sink.newBatch();
    const ready = writes.encodeInto(target, this.keyPrefixBytes, this.settings.strategy, this.distributionAbort.signal, (refused) =>
      this.setAsideRefused(refused),
    );
    ready.catch(() => undefined); // the queue observes it; this only avoids an unhandled rejection before then
    return { encoded: () => target, ready };
  }

  /** A job the distribution service refused or answered wrongly: its dead letter is in the batch; say so. */
  private setAsideRefused({ jobId, reason, lsn }: RefusedJob): void {
    this.logger.warn({ jobId, lsn: formatLsn(lsn), reason }, 'row set aside as a dead letter');
    this.events.emit('dead-letter', { jobId, reason, lsn });
  }

  /**
   * Commits in a batch with no writes (a transaction's last change filled the batch before it): their writes
   * are in the last queued batch, so they become visible with it, or now if Redis confirmed it already.
   */
  private commitsAfterLastBatch(pending: PendingBatch): void {
    if (pending.commitTimesMs.length === 0) return;
    const commitTimesMs = pending.commitTimesMs;
    pending.commitTimesMs = [];
    const last = this.lastQueuedBatch;
    if (last !== undefined && !last.written) last.commitTimesMs.push(...commitTimesMs);
    else this.events.emit('transactions-visible', { commitTimesMs });
  }

  /** `ackLsn` is safe once the tasks before it succeed; it is acknowledged when a checkpoint write covers it. */
  private acknowledgeWithoutWrites(ackLsn: Lsn): void {
    if (ackLsn <= this.checkpoints.coveredAckLsn) {
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
    if (ackLsn <= this.checkpoints.coveredAckLsn) {
      this.queue.push({ exclusive: false, ackLsn, run: async () => undefined });
      return;
    }
    const checkpoint = this.checkpoints.issue(this.checkpoints.issuedPosition, ackLsn, true);
    this.lastAckWriteAt = performance.now();
    this.queue.push({ exclusive: false, ackLsn, run: () => this.checkpoints.write(this.sink.newBatch(), checkpoint) });
  }

  private confirm(lsn: Lsn): void {
    if (lsn <= this.confirmedLsn) return;
    this.confirmedLsn = lsn;
    // 'acknowledged' means PostgreSQL was told; a closed connection tells it nothing.
    if (this.connection?.sendStatus(lsn) !== true) return;
    let writtenAt: number | undefined;
    while (this.writtenAcks.length > 0 && this.writtenAcks[0]!.ackLsn <= lsn) writtenAt = this.writtenAcks.shift()!.writtenAt;
    this.events.emit('acknowledged', { lsn, sinceWrittenMs: writtenAt === undefined ? undefined : performance.now() - writtenAt });
  }

  private onKeepalive(walEnd: Lsn, replyRequested: boolean): void {
    if (this.stopping) return;
    // Between transactions, with nothing waiting to be flushed, everything the server sent before this
    // keepalive is handled once the writes already queued succeed, so its position can be acknowledged
    // after them (and after a checkpoint write that covers it): an idle slot must not hold back WAL.
    const idle = this.applier.idle && !this.replaying && this.held.length === 0;
    if (idle && walEnd > this.confirmedLsn && walEnd > (this.pendingAckLsn ?? 0n)) this.acknowledgeWithoutWrites(walEnd);
    if (replyRequested) this.connection?.sendStatus(this.confirmedLsn);
  }

  /**
   * Ends the session, so that the next one streams, once the slot is within a quarter of the threshold of the
   * server's position (the next session measures the same distance to choose its protocol). Caught up is the
   * slot's confirmed position close to the server's, asked of the server: an idle stream says only that the
   * walsender has nothing for us now, while it may still be reading through WAL without changes for us.
   * Asked between transactions only, so that the next session does not receive one again.
   */
  private async switchToStreamingIfCaughtUp(): Promise<void> {
    const idle = this.applier.idle && !this.replaying && this.held.length === 0;
    if (!idle || this.catchUpChecking || !this.switchToStreamingWhenCaughtUp || this.stopping) return;
    this.catchUpChecking = true;
    let behindBytes: number;
    try {
      behindBytes = await slotLagBytes(this.db, this.settings.slotName);
    } catch {
      return; // asked again at the next tick
    } finally {
      this.catchUpChecking = false;
    }
    if (!this.switchToStreamingWhenCaughtUp || this.stopping || behindBytes > CATCH_UP_WITHOUT_STREAMING_BYTES / 4) return;
    this.switchToStreamingWhenCaughtUp = false;
    this.switchingToStreaming = true;
    this.logger.info({ lsn: formatLsn(this.confirmedLsn), behindBytes }, 'caught up: restarting the session with streamed transactions');
    await this.stop();
  }

  private applyBackpressure(queued: number): void {
    const limit = this.queueLimit();
    if (queued <= limit / 2) this.releaseRoomWaiter();
    const connection = this.connection;
    if (connection === undefined || this.stopping) return;
    if (!this.paused && queued >= limit) {
      this.paused = true;
      connection.pause();
      this.events.emit('backpressure', { paused: true });
    } else if (this.paused && queued <= limit / 2) {
      this.paused = false;
      // A replay keeps reading paused until it ends (see replay()).
      if (!this.replaying) connection.resume();
      this.events.emit('backpressure', { paused: false });
    }
  }
}

function maxLsn(a: Lsn | undefined, b: Lsn | undefined): Lsn | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}

async function serverVersionNumber(db: Kysely<Database>): Promise<number> {
  const { rows } = await sql<{ version: number }>`select current_setting('server_version_num')::int as version`.execute(db);
  return rows[0]!.version;
}

/** WAL bytes between the slot's confirmed position and the server's current one (0 for a slot not there yet). */
async function slotLagBytes(db: Kysely<Database>, slotName: string): Promise<number> {
  return Number((await readSlot(db, slotName))?.lagBytes ?? 0n);
}

/** The server's logical_decoding_work_mem, in kB. */
async function decodingWorkMemKb(db: Kysely<Database>): Promise<number> {
  const { rows } = await sql<{ kb: number }>`select setting::int as kb from pg_settings where name = 'logical_decoding_work_mem'`.execute(
    db,
  );
  return rows[0]!.kb;
}
