import { formatLsn, parseLsn, type Lsn } from '../replication/lsn.js';

/**
 * The position of the last change Redis holds: (the LSN of its transaction's commit record, its index in the
 * transaction). Rows of one COPY or multi-row INSERT share an LSN of their own, so a change is named by its
 * transaction and its place in it, never by its own LSN. Stored in Redis in the same MULTI/EXEC as the
 * writes it covers, so Redis holds the writes and their checkpoint, or neither.
 */
export interface Checkpoint {
  commitLsn: Lsn;
  /** Index of the change in its transaction; -1 means "before the first change of commitLsn". */
  index: number;
}

/** True when the change (commitLsn, index) is at or before the checkpoint, i.e. Redis already has it. */
export function isCovered(checkpoint: Checkpoint | undefined, commitLsn: Lsn, index: number): boolean {
  if (checkpoint === undefined) return false;
  return commitLsn < checkpoint.commitLsn || (commitLsn === checkpoint.commitLsn && index <= checkpoint.index);
}

export function formatCheckpoint(checkpoint: Checkpoint): string {
  return `${formatLsn(checkpoint.commitLsn)}#${checkpoint.index}`;
}

export function parseCheckpoint(text: string): Checkpoint {
  const hash = text.indexOf('#');
  const index = Number(text.slice(hash + 1));
  if (hash < 0 || !Number.isInteger(index) || index < -1) throw new Error(`not a checkpoint (expected "16/B374D848#12"): "${text}"`);
  return { commitLsn: parseLsn(text.slice(0, hash)), index };
}
