import type { Job, JobFigures } from '../budget/job.js';
import { isCovered, type Checkpoint } from './checkpoint.js';
import { hashSlotOfBytes } from './hash-slot.js';
import { isPlainJobIdText } from './job-value.js';
import { WriteBatch } from './write-batch.js';

// A batch for a Redis Cluster: the same RESP as WriteBatch, plus where each command starts and the hash slot of
// its key, so that the cluster writer can send each slot's commands as one transaction with that slot's
// checkpoint. It also drops a replayed change's command when its slot's checkpoint already covers it: after a
// crash between two slots' transactions, some slots hold writes the others lack, and a replay must not write an
// older value over a newer one there.

/** A change's position (commit LSN, index), as the checkpoint names it. */
export type ReplayPosition = Pick<Checkpoint, 'commitLsn' | 'index'>;

export class SlottedWriteBatch extends WriteBatch {
  /** Byte offset of each command in the buffer, in order. */
  readonly starts: number[] = [];
  /** Hash slot of each command's key. */
  readonly slots: number[] = [];
  /**
   * The position of the change being added, set while a replay may still meet changes that some slots hold
   * already (see ChangeApplier#startAfter); undefined otherwise.
   */
  replayPosition: ReplayPosition | undefined;

  constructor(
    deadLetterKey: string,
    /** What each slot held when the session started (its checkpoint), for the replay filter; empty when unknown. */
    private readonly slotCheckpoints: ReadonlyArray<Checkpoint | undefined>,
    /** The buffer's size: a cluster batch is cut at its sink's batchBytes, and must not grow (copy) on the way. */
    bufferBytes: number,
  ) {
    super(deadLetterKey, bufferBytes);
  }

  override set(key: string, value: string, expiresAtMs: number): void {
    const start = this.length;
    super.set(key, value, expiresAtMs);
    this.record(start);
  }

  override setJob(keyPrefix: Buffer, source: Buffer, start: number, end: number, job: JobFigures): void {
    const commandStart = this.length;
    super.setJob(keyPrefix, source, start, end, job);
    this.record(commandStart);
  }

  override setJobWithDaily(keyPrefix: Buffer, job: Job, dailyCents: readonly number[]): void {
    // Other job_ids go through set(), which records them itself.
    if (!isPlainJobIdText(job.jobId)) return super.setJobWithDaily(keyPrefix, job, dailyCents);
    const start = this.length;
    super.setJobWithDaily(keyPrefix, job, dailyCents);
    this.record(start);
  }

  override del(key: string): void {
    const start = this.length;
    super.del(key);
    this.record(start);
  }

  override deadLetter(entry: string): void {
    const start = this.length;
    super.deadLetter(entry);
    this.record(start);
  }

  /**
   * Records the commands written from `start` on (one change's, on one key), or takes them back when the change
   * is a replay that their slot's checkpoint covers.
   */
  private record(start: number): void {
    const buffer = this.buffer;
    const first = this.starts.length;
    let at = start;
    while (at < this.length) {
      // *<arguments>\r\n then, per argument, $<length>\r\n<bytes>\r\n; the key is the second argument.
      this.starts.push(at);
      const argumentCount = readDecimal(buffer, at + 1);
      at = decimalEnd + 2;
      let slot = -1;
      for (let argument = 0; argument < argumentCount; argument++) {
        const length = readDecimal(buffer, at + 1);
        at = decimalEnd + 2;
        if (argument === 1) slot = hashSlotOfBytes(buffer, at, at + length);
        at += length + 2;
      }
      this.slots.push(slot);
    }
    const position = this.replayPosition;
    if (position !== undefined && isCovered(this.slotCheckpoints[this.slots[first]!], position.commitLsn, position.index)) {
      this.commands -= this.starts.length - first;
      this.starts.length = first;
      this.slots.length = first;
      this.length = start;
    }
  }
}

/** Where the last readDecimal stopped (the "\r" after the digits): no object per number on the hot path. */
let decimalEnd = 0;

function readDecimal(buffer: Buffer, at: number): number {
  let value = 0;
  let i = at;
  for (let byte = buffer[i]!; byte >= 0x30 && byte <= 0x39; byte = buffer[++i]!) value = value * 10 + byte - 0x30;
  decimalEnd = i;
  return value;
}
