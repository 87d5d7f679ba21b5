import type { Kysely } from 'kysely';
import { checkReplicationReady } from '../db/check-database.js';
import type { Database } from '../db/database.js';
import { contractProblems, readTableContract, type TableContract } from '../db/table-contract.js';
import { PermanentError } from '../errors.js';
import type { Logger } from '../logger.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { openReplicationConnection, type ReplicationConnection } from '../replication/replication-connection.js';
import { describeBackend, describeSlotOwner, tryLockSlot } from '../replication/slot-owner.js';
import { createSlot, dropSlot, readSlot, type CreatedSlot, type SlotState } from '../replication/slot.js';
import type { ReplayPosition } from '../sink/cluster-write-batch.js';
import { EVEN_SPLIT, type BudgetStrategy } from '../budget/budget-strategy.js';
import type { RebuildCause } from '../sink/rebuild-record.js';
import type { Sink, StoredCheckpoint } from '../sink/sink.js';
import type { ConsumerEvents } from './consumer-events.js';
import { resyncFromSnapshot } from './resync.js';
import { StandbyError } from './session-errors.js';

// The start of a replication session, before it streams: take the slot (or stand by), fence earlier writers
// off Redis, check the database and the table, then decide from the slot and the checkpoint whether Redis
// must first be rebuilt from the table, and do it.

export interface SessionSettings {
  databaseUrl: string;
  slotName: string;
  publicationName: string;
  keyPrefix: string;
  batchSize: number;
  /** Replicas that must confirm a write (WAIT) before its position is acknowledged. */
  redisMinReplicas: number;
  /** The budget rule: the built-in even split or a distribution service; the stream and rebuilds use it alike. */
  strategy: BudgetStrategy;
  /** Ask for streamed transactions (protocol 2) when the server has them (PostgreSQL 14 and later). */
  streaming: boolean;
}

/** Why a session must rebuild Redis before it streams. */
interface RebuildNeed {
  cause: RebuildCause;
  reason: string;
}

/** Where a session streams from: the checkpoint Redis holds (written by a rebuild when one was needed), and the slot's position. */
export interface StreamStart {
  checkpointText: string;
  /** On a cluster, up to where a replayed change must be checked against its own slot (see StoredCheckpoint). */
  replayThrough: ReplayPosition | undefined;
  slotConfirmedLsn: Lsn;
  slotCreated: boolean;
}

/** Emits 'table-described' with the contract's problems, each with what to do. */
export function emitTableDescribed(
  events: ConsumerEvents,
  publicationName: string,
  source: 'table' | 'stream',
  contract: TableContract,
): void {
  const { replicaIdentity, missingColumns } = contract;
  events.emit('table-described', { source, replicaIdentity, missingColumns, problems: contractProblems(contract, publicationName) });
}

export class SessionStarter {
  constructor(
    private readonly settings: SessionSettings,
    private readonly db: Kysely<Database>,
    private readonly sink: Sink,
    private readonly events: ConsumerEvents,
    private readonly logger: Logger,
    /** The session's token, written into the checkpoint a rebuild sets. */
    private readonly writerToken: string,
    /** Aborts a rebuild's requests to the distribution service when the session ends. */
    private readonly signal: AbortSignal,
  ) {}

  /**
   * Takes the slot on `connection` and makes Redis ready to stream from it. Throws a StandbyError, having
   * done nothing, when another process holds the slot.
   */
  async prepare(connection: ReplicationConnection): Promise<StreamStart> {
    const { slotName, publicationName } = this.settings;
    if (!(await tryLockSlot(connection, slotName))) {
      throw new StandbyError(slotName, await describeSlotOwner(this.db, slotName).catch(() => undefined));
    }
    await this.sink.reconnectIfEnded();
    await this.closeEarlierWriters();
    // Checked by every session, not once: someone may alter the publication or the table while we run.
    await checkReplicationReady(this.db, publicationName);
    const contract = await readTableContract(this.db, publicationName);
    if (contract !== undefined) emitTableDescribed(this.events, publicationName, 'table', contract);
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
    let replayThrough: ReplayPosition | undefined;
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
      if (need === undefined) await this.checkSameDistribution();
      checkpointText = need === undefined ? stored!.text : await this.resyncOnTemporarySlot(need, slot.confirmedFlushLsn ?? 0n);
      if (need === undefined) replayThrough = stored!.replayThrough;
    }
    if (slot === undefined || slot.confirmedFlushLsn === undefined) {
      throw new Error(`replication slot ${slotName} vanished while starting: is another process dropping it?`);
    }
    return { checkpointText, replayThrough, slotConfirmedLsn: slot.confirmedFlushLsn, slotCreated };
  }

  /**
   * The keys were built with one budget rule; a session with another would mix two rules in Redis, and the
   * checkpoint would skip every job already there. Changing the rule takes a rebuild, which `budget-cdc resync`
   * asks for. A history without a recorded rule predates the setting: the even split.
   */
  private async checkSameDistribution(): Promise<void> {
    const recorded = (await this.sink.readRebuildHistory()).distribution ?? EVEN_SPLIT.name;
    const configured = this.settings.strategy.name;
    if (recorded === configured) return;
    throw new PermanentError(
      `Redis holds budgets computed with distribution ${recorded}, but this consumer is set to ${configured} ` +
        '(--distribution / BUDGET_CDC_DISTRIBUTION): changing the budget rule needs a rebuild of every key; with no consumer running, ' +
        `run "budget-cdc resync", then start the consumer with the new setting; or set it back to ${recorded}`,
    );
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
  private async rebuildNeed(stored: StoredCheckpoint | undefined, slot: SlotState): Promise<RebuildNeed | undefined> {
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
      strategy: this.settings.strategy,
      signal: this.signal,
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
    await this.sink.recordRebuild(need.cause, need.reason, this.settings.strategy.name);
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
}
