import type { JobFigures } from '../budget/job.js';
import { RowError } from '../errors.js';
import type { Logger } from '../logger.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { JobChangeDecoder, makeJobColumnRanges, type JobChange } from '../replication/job-changes.js';
import { parseJob, readJobFigures } from '../replication/job-row.js';
import { decodePgoutput } from '../replication/pgoutput-decoder.js';
import { isCovered, type Checkpoint } from '../sink/checkpoint.js';
import type { ReplayPosition, SlottedWriteBatch } from '../sink/cluster-write-batch.js';
import { isPlainJobId } from '../sink/job-value.js';
import type { WriteBatch } from '../sink/write-batch.js';
import type { ChangePosition } from './checkpoint-keeper.js';
import type { ConsumerEvents } from './consumer-events.js';
import { DeferredWrites } from './deferred-writes.js';
import { PendingBatch } from './pending-batch.js';
import { emitTableDescribed } from './session-start.js';

// What each replicated change does to the batch being built: decode (the bulk-load path straight from the
// bytes), skip what the checkpoint covers, apply the budget rule, set aside what cannot be processed. The
// session sends the batches and acknowledges; this file never talks to Redis or PostgreSQL.

/** What the applier asks of the session. */
export interface ApplierHost {
  /** Sends the batch now: it is full, or a TRUNCATE must come after it. */
  flush(): void;
  /** Sends the batch once the current burst of socket data is processed (a commit), so small transactions share one. */
  scheduleFlush(): void;
  /** Removes every key under the prefix after the batches before it; `position` is the TRUNCATE's. */
  truncate(position: ChangePosition): void;
}

export interface ApplierSettings {
  keyPrefix: string;
  publicationName: string;
  batchSize: number;
  /**
   * A batch is sent once its RESP encoding reaches this many bytes, whatever its command count: long values (a
   * 3650-day job is 36 kB) must not make batches, and so memory, grow with them. The sink's Sink#batchBytes.
   */
  maxBatchBytes: number;
}

export class ChangeApplier {
  private readonly decoder = new JobChangeDecoder();
  /** The batch being built, handed over by takeBatch(). */
  private current: PendingBatch;
  private inTransaction = false;
  /** Current transaction: its commit position and the index of its last change. */
  private transactionLsn: Lsn = 0n;
  private changeIndex = -1;
  /** When the current transaction committed on the server (ms since 1970), from its Begin. */
  private transactionCommitTimeMs = 0;
  /** Changes at or before this are already in Redis (a replay after a restart): skipped. */
  private skipThrough: Checkpoint | undefined;
  /**
   * On a cluster, changes after skipThrough up to this one may be in some slots already: each is checked
   * against its own slot's checkpoint as it is written (SlottedWriteBatch#replayPosition).
   */
  private checkSlotsThrough: ReplayPosition | undefined;
  /** Scratch space of the bulk-load path (applyInsertFromBytes), reused for every row. */
  private readonly insertRanges = makeJobColumnRanges();
  private readonly insertFigures: JobFigures = { budgetCents: 0, daysOnline: 0, createdAtMs: 0, expiresAtMs: 0 };
  private readonly keyPrefixBytes: Buffer;

  constructor(
    private readonly settings: ApplierSettings,
    private readonly newBatch: () => WriteBatch | DeferredWrites,
    private readonly events: ConsumerEvents,
    private readonly logger: Logger,
    private readonly host: ApplierHost,
  ) {
    this.current = new PendingBatch(newBatch());
    this.keyPrefixBytes = Buffer.from(settings.keyPrefix);
  }

  /** Skips the changes `checkpoint` covers: they are in Redis already; on a cluster, up to `replayThrough` slot by slot. */
  startAfter(checkpoint: Checkpoint, replayThrough?: ReplayPosition): void {
    this.skipThrough = checkpoint;
    this.checkSlotsThrough = replayThrough;
  }

  /** The batch being built. */
  get pending(): PendingBatch {
    return this.current;
  }

  /** Hands the batch over and starts an empty one. */
  takeBatch(): PendingBatch {
    const batch = this.current;
    this.current = new PendingBatch(this.newBatch());
    return batch;
  }

  /** Between transactions with nothing waiting to be sent: everything received so far is in a batch already sent. */
  get idle(): boolean {
    return !this.inTransaction && this.current.writes.commands === 0 && this.current.ackLsn === undefined;
  }

  /** One pgoutput message (an XLogData payload at `offset`). */
  applyMessage(data: Buffer, offset: number, lsn: Lsn): void {
    if (this.applyInsertFromBytes(data, offset, lsn)) return;
    const change = this.decoder.toJobChange(decodePgoutput(data, offset, lsn), lsn);
    if (change !== undefined) this.apply(change, lsn);
  }

  /**
   * The path of bulk loads: an Insert into jobs goes from the message bytes into the batch as one SET,
   * with no strings or objects per row (with a distribution service, into the list of jobs to ask about, with
   * one string and one object per row: no decoded row, no text parsed). Returns false, having done nothing, for every other message and
   * for a row not in the plain form PostgreSQL prints (a job_id JSON must escape, a row to set aside, a
   * job already offline): apply() handles those, with the same result.
   */
  private applyInsertFromBytes(data: Buffer, offset: number, lsn: Lsn): boolean {
    const ranges = this.insertRanges;
    const figures = this.insertFigures;
    if (!this.decoder.locateInsert(data, offset, ranges)) return false;
    if (!isPlainJobId(data, ranges.jobIdStart, ranges.jobIdEnd)) return false;
    if (!readJobFigures(data, ranges, figures) || figures.expiresAtMs <= Date.now()) return false;
    if (!this.countChange()) return true;
    this.moveBatchCheckpoint();
    const writes = this.current.writes;
    if (writes instanceof DeferredWrites) {
      // A distribution service answers later: the job goes in the list with its figures, read from the bytes all
      // the same (a plain job_id is ASCII: latin1 reads it as it is).
      const { budgetCents, daysOnline, createdAtMs, expiresAtMs } = figures;
      const jobId = data.toString('latin1', ranges.jobIdStart, ranges.jobIdEnd);
      writes.setJobLater(this.keyPrefixBytes, { jobId, budgetCents, daysOnline, createdAtMs, expiresAtMs }, lsn);
    } else {
      writes.setJob(this.keyPrefixBytes, data, ranges.jobIdStart, ranges.jobIdEnd, figures);
    }
    this.flushIfFull();
    return true;
  }

  /** A streamed transaction's replay starts (its Stream Commit): as a Begin with its commit position and time. */
  beginStreamed(commitLsn: Lsn, commitTimeMs: number): void {
    this.apply({ tag: 'begin', commitLsn, commitTimeMs }, commitLsn);
  }

  /** A streamed transaction's replay ends: as its Commit. */
  commitStreamed(endLsn: Lsn): void {
    this.apply({ tag: 'commit', endLsn }, endLsn);
  }

  /** Counts a change of the current transaction; false when the checkpoint covers it (a replay): skip it. */
  private countChange(): boolean {
    this.changeIndex++;
    if (this.skipThrough !== undefined) {
      if (isCovered(this.skipThrough, this.transactionLsn, this.changeIndex)) return false;
      this.skipThrough = undefined; // the stream is in commit order: nothing after this is covered
    }
    if (this.checkSlotsThrough !== undefined) this.checkSlots();
    this.current.rows++;
    return true;
  }

  /** Tells the cluster batch the change's position while some slot may hold it already; clears it after. */
  private checkSlots(): void {
    const writes = this.current.writes as SlottedWriteBatch | DeferredWrites;
    if (isCovered(this.checkSlotsThrough, this.transactionLsn, this.changeIndex)) {
      writes.replayPosition = { commitLsn: this.transactionLsn, index: this.changeIndex };
    } else {
      writes.replayPosition = undefined;
      this.checkSlotsThrough = undefined;
    }
  }

  /** The batch now holds the current change: its checkpoint is that change's. */
  private moveBatchCheckpoint(): void {
    this.current.lastChangeLsn = this.transactionLsn;
    this.current.lastChangeIndex = this.changeIndex;
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
          this.current.writes.del(prefix + change.previousJobId);
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
        const writes = this.current.writes;
        if (job.expiresAtMs <= Date.now()) writes.del(prefix + job.jobId);
        else if (writes instanceof DeferredWrites) writes.setJobLater(this.keyPrefixBytes, job, lsn);
        else writes.setJobOf(this.keyPrefixBytes, job);
        // The new value is right; what may be wrong is an old key nobody can name: set aside to say so.
        if (change.previousJobIdMissing !== undefined) this.setAside(job.jobId, change.previousJobIdMissing, lsn);
        break;
      }
      case 'unreadable':
        this.setAside(change.jobId, change.reason, lsn);
        break;
      case 'table':
        // The stream's description says nothing of the publication: the stream comes through it.
        emitTableDescribed(this.events, this.settings.publicationName, 'stream', {
          replicaIdentity: change.replicaIdentity,
          missingColumns: change.missingColumns,
          inPublication: true,
        });
        break;
      case 'delete':
        this.current.writes.del(this.settings.keyPrefix + change.jobId);
        break;
      case 'truncate':
        // A replayed TRUNCATE empties every slot, also of later writes some slots held: from here on every
        // change is written again, whatever its slot held.
        if (this.checkSlotsThrough !== undefined) {
          this.checkSlotsThrough = undefined;
          (this.current.writes as SlottedWriteBatch | DeferredWrites).replayPosition = undefined;
        }
        this.host.truncate({ commitLsn: this.transactionLsn, index: this.changeIndex });
        break;
      case 'begin':
        this.inTransaction = true;
        this.transactionLsn = change.commitLsn;
        this.transactionCommitTimeMs = change.commitTimeMs;
        this.changeIndex = -1;
        break;
      case 'commit':
        this.inTransaction = false;
        this.current.transactions++;
        // Freshness only of transactions that wrote something now: not of empty ones, nor of a replay after a
        // restart (skipThrough still set means the checkpoint covered every change), whose commit is long past.
        if (this.changeIndex >= 0 && this.skipThrough === undefined) this.current.commitTimesMs.push(this.transactionCommitTimeMs);
        this.current.ackLsn = change.endLsn;
        this.host.scheduleFlush();
        break;
      case 'message':
        break;
    }
    this.flushIfFull();
  }

  private flushIfFull(): void {
    if (this.current.writes.commands >= this.settings.batchSize || this.current.writes.length >= this.settings.maxBatchBytes)
      this.host.flush();
  }

  /** Puts a change aside as a dead letter (job_id null when the change did not carry it), in the batch of its position. */
  private setAside(jobId: string | undefined, reason: string, lsn: Lsn): void {
    const entry = JSON.stringify({ job_id: jobId ?? null, lsn: formatLsn(lsn), reason, at: new Date().toISOString() });
    this.current.writes.deadLetter(entry);
    this.logger.warn({ jobId, lsn: formatLsn(lsn), reason }, 'row set aside as a dead letter');
    this.events.emit('dead-letter', { jobId, reason, lsn });
  }
}
