import { formatLsn, parseLsn, type Lsn } from '../lsn.js';

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
  /**
   * Every position the writer acknowledged to PostgreSQL is at or before this one: it is written before the
   * acknowledgement is sent. A slot confirmed beyond it means Redis went back in time (an older snapshot,
   * a promoted replica that missed writes). Undefined in checkpoints written before version 0.2.
   */
  ackLsn: Lsn | undefined;
  /** Who wrote it: a token of the session, so that a checkpoint written by anyone else is noticed. */
  writer: string | undefined;
}

/** True when the change (commitLsn, index) is at or before the checkpoint, i.e. Redis already has it. */
export function isCovered(checkpoint: Pick<Checkpoint, 'commitLsn' | 'index'> | undefined, commitLsn: Lsn, index: number): boolean {
  if (checkpoint === undefined) return false;
  return commitLsn < checkpoint.commitLsn || (commitLsn === checkpoint.commitLsn && index <= checkpoint.index);
}

/** "16/B374D848#12 ack=16/B3750000 writer=4f3a9c1e": the text stored in Redis. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  let text = `${formatLsn(checkpoint.commitLsn)}#${checkpoint.index}`;
  if (checkpoint.ackLsn !== undefined) text += ` ack=${formatLsn(checkpoint.ackLsn)}`;
  if (checkpoint.writer !== undefined) text += ` writer=${checkpoint.writer}`;
  return text;
}

const CHECKPOINT_TEXT = /^([0-9A-F]+\/[0-9A-F]+)#(-1|\d+)(?: ack=([0-9A-F]+\/[0-9A-F]+))?(?: writer=([0-9a-z]+))?$/i;

/** Parses the stored text; the older form without ack and writer ("16/B374D848#12") is accepted. */
export function parseCheckpoint(text: string): Checkpoint {
  const match = CHECKPOINT_TEXT.exec(text);
  const index = Number(match?.[2]);
  if (match === null || !Number.isSafeInteger(index)) {
    throw new Error(`not a checkpoint (expected "16/B374D848#12 ack=16/B3750000 writer=4f3a9c1e"): "${text}"`);
  }
  return {
    commitLsn: parseLsn(match[1]!),
    index,
    ackLsn: match[3] === undefined ? undefined : parseLsn(match[3]),
    writer: match[4],
  };
}
