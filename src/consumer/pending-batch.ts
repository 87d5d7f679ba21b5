import type { Lsn } from '../lsn.js';
import type { WriteBatch } from '../sink/write-batch.js';
import type { ChangePosition } from './checkpoint-keeper.js';

/** The batch a session is building: its writes and what they stand for, handed over whole when flushed. */
export class PendingBatch {
  /** End of the last transaction whose writes are all in this batch or earlier; undefined if none. */
  ackLsn: Lsn | undefined;
  /** Changes applied and commits seen, for the 'batch-written' event. */
  rows = 0;
  transactions = 0;
  /** The position of the last change in `writes`: the batch's checkpoint; undefined when it holds none. */
  lastChange: ChangePosition | undefined;

  constructor(readonly writes: WriteBatch) {}
}
