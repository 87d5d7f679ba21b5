import type { Lsn } from '../lsn.js';
import type { WriteBatch } from '../sink/write-batch.js';
import type { ChangePosition } from './checkpoint-keeper.js';
import type { DeferredWrites } from './deferred-writes.js';

/** The batch a session is building: its writes and what they stand for, handed over whole when flushed. */
export class PendingBatch {
  /** End of the last transaction whose writes are all in this batch or earlier; undefined if none. */
  ackLsn: Lsn | undefined;
  /** Changes applied and commits seen, for the 'batch-written' event. */
  rows = 0;
  transactions = 0;
  /**
   * The position of the last change in `writes` (its transaction's commit LSN, its index): the batch's
   * checkpoint. Two fields, not an object: they are set for every row of a bulk load.
   */
  lastChangeLsn: Lsn | undefined;
  lastChangeIndex = -1;
  /**
   * When each transaction whose last write is in this batch committed (ms since 1970, PostgreSQL's clock): its
   * freshness is measured once Redis confirms the batch. One entry per transaction, none per row.
   */
  commitTimesMs: number[] = [];
  /** Time spent decoding, budgeting and encoding this batch's changes (ms): socket bursts, not waits. */
  buildMs = 0;
  /** Set once Redis confirmed the batch: a commit arriving after it (in an empty batch) is fresh at once. */
  written = false;

  constructor(readonly writes: WriteBatch | DeferredWrites) {}

  /** The batch's checkpoint position; undefined when it holds no change (only commits). */
  lastChange(): ChangePosition | undefined {
    return this.lastChangeLsn === undefined ? undefined : { commitLsn: this.lastChangeLsn, index: this.lastChangeIndex };
  }
}
