import { randomBytes } from 'node:crypto';
import type { Logger } from '../logger.js';
import type { Lsn } from '../lsn.js';
import { formatCheckpoint, parseCheckpoint, type Checkpoint } from '../sink/checkpoint.js';
import type { CheckpointProblem, CheckpointWrite, Sink, WriteOutcome } from '../sink/sink.js';
import type { WriteBatch } from '../sink/write-batch.js';
import type { ConsumerEvents } from './consumer-events.js';
import { RebuildRequestedError, RedisStateLostError, RedisWentBackError } from './session-errors.js';

// The checkpoint one session writes, in stream order: what each write sets, what Redis must hold just before
// it (so a checkpoint that vanished or went back is noticed), and which acknowledged positions a write already
// issued covers. Nothing is acknowledged to PostgreSQL here: the session does that once a write succeeded.

/** A position (commit LSN, index) of a change, without the checkpoint's other fields. */
export type ChangePosition = Pick<Checkpoint, 'commitLsn' | 'index'>;

/** A checkpoint write's text, and the text Redis must hold when the write arrives. */
export type IssuedCheckpoint = CheckpointWrite;

export class CheckpointKeeper {
  /** Written into every checkpoint this session writes: a checkpoint with another token was written by someone else. */
  readonly writerToken = randomBytes(4).toString('hex');
  /** The checkpoint text Redis must hold once every write issued so far is applied: what the next SET … GET must answer. */
  private expectedText: string | undefined;
  /** Counts checkpoint writes issued, so that a periodic read can tell whether one happened meanwhile. */
  private writesIssued = 0;
  /** The change position of the last checkpoint issued. */
  private position: ChangePosition = { commitLsn: 0n, index: -1 };
  /** The acknowledged position of the last checkpoint issued: nothing beyond it may be acknowledged before a write moves it. */
  private issuedAckLsn: Lsn = 0n;
  /**
   * Positions up to this one may be acknowledged without a write of their own: a checkpoint write already
   * issued covers them, and (with --redis-min-replicas) waits for the replicas.
   */
  private covered: Lsn = 0n;
  /** True while a batch waits for replicas (--redis-min-replicas): its acknowledgement is held. */
  private replicasBehind = false;

  constructor(
    private readonly sink: Sink,
    private readonly minReplicas: number,
    private readonly events: ConsumerEvents,
    private readonly logger: Logger,
    private readonly isStopping: () => boolean,
  ) {}

  /** The change position of the last checkpoint issued. */
  get issuedPosition(): ChangePosition {
    return this.position;
  }

  /** Positions up to this one are covered by a checkpoint write already issued. */
  get coveredAckLsn(): Lsn {
    return this.covered;
  }

  /** Starts from the checkpoint Redis holds, `text`; returns it parsed (the session skips what it covers). */
  adopt(text: string, slotConfirmedLsn: Lsn): Checkpoint {
    const checkpoint = parseCheckpoint(text);
    this.expectedText = text;
    this.position = { commitLsn: checkpoint.commitLsn, index: checkpoint.index };
    // A checkpoint of an older version has no acknowledged position: PostgreSQL's own is what it covered.
    this.issuedAckLsn = checkpoint.ackLsn ?? slotConfirmedLsn;
    // The checkpoint read may never have reached a replica; what PostgreSQL was told did.
    this.covered = this.minReplicas > 0 ? slotConfirmedLsn : this.issuedAckLsn;
    return checkpoint;
  }

  /**
   * The checkpoint text of the next write, in stream order, and the text Redis must hold just before it.
   * Its acknowledged position never goes back.
   */
  issue(position: ChangePosition, ackLsn: Lsn | undefined, waitForReplicas: boolean, everySlot = false): IssuedCheckpoint {
    if (ackLsn !== undefined && ackLsn > this.issuedAckLsn) this.issuedAckLsn = ackLsn;
    if (waitForReplicas || this.minReplicas === 0) this.covered = this.issuedAckLsn;
    this.position = position;
    const text = formatCheckpoint({ ...position, ackLsn: this.issuedAckLsn, writer: this.writerToken });
    const expectedPrevious = this.expectedText;
    this.expectedText = text;
    this.writesIssued++;
    return { text, expectedPrevious, waitForReplicas, everySlot };
  }

  /**
   * Writes `writes` with the checkpoint; checks that Redis held the checkpoint this session wrote before
   * (else it lost its state or went back in time); with --redis-min-replicas, returns only once enough
   * replicas confirmed. Only then may the task's position be acknowledged.
   */
  async write(writes: WriteBatch, checkpoint: IssuedCheckpoint): Promise<void> {
    const reply = await this.sink.write(writes, checkpoint);
    if (reply.redirects > 0) this.events.emit('redis-redirected', { transactions: reply.redirects });
    if (reply.problem !== undefined) await this.reportProblem(reply.problem);
    await this.awaitReplicas(reply);
  }

  /**
   * Reads the checkpoint: gone means Redis lost its state or a resync was requested; another text than the
   * one this session wrote last (with nothing in flight, `quiet`) means Redis went back in time or someone
   * else wrote it. Calls `fail` then.
   */
  verify(quiet: () => boolean, fail: (error: Error) => void): void {
    const expected = this.expectedText;
    const issued = this.writesIssued;
    const quietBefore = quiet();
    this.sink.checkCheckpoint(expected).then(
      (problem) => {
        if (problem?.kind === 'lost') this.lostError().then(fail, fail);
        else if (problem !== undefined && quietBefore && issued === this.writesIssued && quiet()) {
          this.reportProblem(problem).catch(fail);
        }
      },
      () => undefined, // Redis unreachable: the next write fails and says so
    );
  }

  /** Throws the problem's error; a checkpoint that went back first asks for a rebuild. */
  private async reportProblem(problem: CheckpointProblem): Promise<never> {
    if (problem.kind === 'lost') throw await this.lostError();
    return this.wentBack(problem.expected, problem.found);
  }

  /** The checkpoint vanished: a resync someone asked for (budget-cdc resync), or Redis lost its state. */
  private async lostError(): Promise<Error> {
    const request = await this.sink.readRebuildRequest().catch(() => undefined);
    return request?.cause === 'requested' ? new RebuildRequestedError(request.detail) : new RedisStateLostError();
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
  private async awaitReplicas(reply: WriteOutcome): Promise<void> {
    const required = this.minReplicas;
    let replicas = reply.replicas;
    if (replicas === undefined || required === 0) return;
    while (replicas < required) {
      if (!this.replicasBehind) {
        this.replicasBehind = true;
        this.logger.warn({ replicas, required }, 'Redis replicas have not confirmed the last batch: holding its acknowledgement');
      }
      this.events.emit('replicas-behind', { replicas, required });
      if (this.isStopping())
        throw new Error('stopped while waiting for Redis replicas: the batch is not acknowledged and will be replayed');
      replicas = await this.sink.waitForReplicas(required);
    }
    if (this.replicasBehind) {
      this.replicasBehind = false;
      this.logger.info({ replicas, required }, 'Redis replicas confirmed: acknowledging again');
    }
    this.events.emit('replicas-confirmed', { replicas, required });
  }
}
