import type { BudgetStrategy } from '../budget/budget-strategy.js';
import type { Job } from '../budget/job.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { SlottedWriteBatch, type ReplayPosition } from '../sink/cluster-write-batch.js';
import { jobValueLength } from '../sink/job-value.js';
import type { WriteBatch } from '../sink/write-batch.js';

// A batch's writes while a distribution service computes its budgets (issue 14). A job's SET cannot be encoded
// before the service answers, and the writes around it must keep their WAL order (a rename's DEL, another
// update of the same job, a dead letter): so the changes are kept as a list, in order, and encoded into a
// WriteBatch once every answer is in, whatever order the answers came back in. Memory stays bounded: a batch
// is cut at the session's batch size and byte estimate, as an encoded one is.

type DeferredWrite =
  | { kind: 'set'; job: Job; lsn: Lsn; replay: ReplayPosition | undefined }
  | { kind: 'del'; key: string; replay: ReplayPosition | undefined }
  | { kind: 'dead-letter'; entry: string; replay: ReplayPosition | undefined };

/** A job the service refused, or whose answer failed the checks: set aside with `reason`. */
export interface RefusedJob {
  jobId: string;
  reason: string;
  lsn: Lsn;
}

/** Bytes a SET carries besides its key and value (RESP framing, PXAT and the expiry), for the byte estimate. */
const SET_OVERHEAD_BYTES = 64;

export class DeferredWrites {
  /** Redis commands the batch will hold, as WriteBatch counts them (a dead letter is LPUSH and LTRIM). */
  commands = 0;
  /** An estimate of the encoded bytes (a service's amounts may be longer or shorter than the even split's). */
  length = 0;
  /** On a cluster, the position of the change being added while a replay may meet changes some slots hold (see SlottedWriteBatch). */
  replayPosition: ReplayPosition | undefined;
  private readonly writes: DeferredWrite[] = [];
  private jobCount = 0;

  /** The SET of `job` (a change at `lsn`), its amounts to come from the service. */
  setJobLater(keyPrefix: Buffer, job: Job, lsn: Lsn): void {
    this.writes.push({ kind: 'set', job, lsn, replay: this.replayPosition });
    this.jobCount++;
    this.commands++;
    this.length += keyPrefix.length + job.jobId.length * 2 + jobValueLength(job, job.jobId.length) + SET_OVERHEAD_BYTES;
  }

  del(key: string): void {
    this.writes.push({ kind: 'del', key, replay: this.replayPosition });
    this.commands++;
    this.length += key.length + 32;
  }

  deadLetter(entry: string): void {
    this.writes.push({ kind: 'dead-letter', entry, replay: this.replayPosition });
    this.commands += 2;
    this.length += entry.length + 64;
  }

  /** Jobs waiting for the service's amounts. */
  get jobs(): number {
    return this.jobCount;
  }

  /**
   * Asks `strategy` for every job's amounts, then encodes the writes into `target` in their order. A job the
   * service refused, or answered wrongly, gets no value: its key is deleted (an older value would be for an
   * older row) and it goes to the dead letters with the reason; `onRefused` is told. Rejects only when
   * `signal` aborts: failures of the service as a whole are retried inside distribute().
   */
  async encodeInto(
    target: WriteBatch,
    keyPrefix: Buffer,
    strategy: BudgetStrategy,
    signal: AbortSignal,
    onRefused: (refused: RefusedJob) => void,
  ): Promise<void> {
    const jobs: Job[] = [];
    for (const write of this.writes) if (write.kind === 'set') jobs.push(write.job);
    const checks = jobs.length === 0 ? [] : await strategy.distribute(jobs, signal);
    const slotted = target instanceof SlottedWriteBatch ? target : undefined;
    const prefix = keyPrefix.toString();
    let next = 0;
    for (const write of this.writes) {
      if (slotted !== undefined) slotted.replayPosition = write.replay;
      switch (write.kind) {
        case 'set': {
          const check = checks[next++]!;
          if (check.ok) {
            target.setJobWithDaily(keyPrefix, write.job, check.dailyCents);
            break;
          }
          const { jobId } = write.job;
          target.del(prefix + jobId);
          const entry = { job_id: jobId, lsn: formatLsn(write.lsn), reason: check.reason, at: new Date().toISOString() };
          target.deadLetter(JSON.stringify(entry));
          onRefused({ jobId, reason: check.reason, lsn: write.lsn });
          break;
        }
        case 'del':
          target.del(write.key);
          break;
        case 'dead-letter':
          target.deadLetter(write.entry);
          break;
      }
    }
    if (slotted !== undefined) slotted.replayPosition = undefined;
  }
}
