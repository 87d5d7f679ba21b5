import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DecodeError } from '../errors.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { isAlive } from '../process-alive.js';
import { decodeStreamControl, isStreamControl, STREAM_STOP } from '../replication/stream-messages.js';
import { XLOG_FRAME_HEAD_BYTES, xlogFrameLsn } from '../replication/xlog-frame.js';
import { StreamSpool } from './stream-spool.js';

// The transactions pgoutput streams while they run (protocol 2, streaming 'on'): their blocks may interleave
// with each other and with ordinary transactions, so each one's changes go to a spool of its own until it ends.
// At its Stream Commit the session replays the spool as one transaction, in commit order with the rest, skipping
// the changes of subtransactions that aborted; at its Stream Abort the spool is dropped. Nothing of a streamed
// transaction reaches Redis before its commit, so the checkpoint and the acknowledgement work as for any other.

/** A streamed transaction that committed: its changes, and those to leave out. */
export interface CommittedStream {
  spool: StreamSpool;
  /** Subtransactions that aborted: their changes are not the transaction's. */
  abortedSubxids: ReadonlySet<number>;
  commitLsn: Lsn;
  endLsn: Lsn;
  commitTimeMs: number;
}

/** What became of a message: an ordinary one to apply, one the streams took, or the commit of a streamed transaction. */
export type Routed = { kind: 'ordinary' } | { kind: 'taken' } | { kind: 'commit'; stream: CommittedStream };

const ORDINARY: Routed = { kind: 'ordinary' };
const TAKEN: Routed = { kind: 'taken' };

interface OpenStream {
  spool: StreamSpool;
  abortedSubxids: Set<number>;
}

export class StreamedTransactions {
  private readonly open = new Map<number, OpenStream>();
  /** The transaction whose block is being received (between Stream Start and Stream Stop). */
  private block: OpenStream | undefined;

  /** `folder` holds this process's spool files; see spoolFolderOf. */
  constructor(private readonly folder: string) {}

  /** Streamed transactions neither committed nor aborted yet. */
  get openCount(): number {
    return this.open.size;
  }

  /** Routes the change framed as `buffer[frameStart, frameEnd)` (xlog-frame.ts). */
  route(buffer: Buffer, frameStart: number, frameEnd: number): Routed {
    const kind = buffer[frameStart + XLOG_FRAME_HEAD_BYTES];
    if (this.block !== undefined) {
      if (kind === STREAM_STOP) {
        this.block.spool.copyRun();
        this.block = undefined;
      } else {
        // Its subtransaction is read at the replay: while the transaction runs, the consumer does as little as it can.
        this.block.spool.addFrame(buffer, frameStart, frameEnd);
      }
      return TAKEN;
    }
    if (!isStreamControl(kind!)) return ORDINARY;
    const lsn = xlogFrameLsn(buffer, frameStart);
    const control = decodeStreamControl(buffer.subarray(frameStart + XLOG_FRAME_HEAD_BYTES, frameEnd), 0, lsn)!;
    switch (control.tag) {
      case 'stream-start': {
        let stream = this.open.get(control.xid);
        if (stream === undefined) {
          mkdirSync(this.folder, { recursive: true });
          stream = { spool: new StreamSpool(this.folder, control.xid), abortedSubxids: new Set() };
          this.open.set(control.xid, stream);
        }
        this.block = stream;
        return TAKEN;
      }
      case 'stream-stop':
        throw new DecodeError('pgoutput: Stream Stop outside a stream block', lsn);
      case 'stream-abort': {
        const stream = this.open.get(control.xid);
        if (stream === undefined) return TAKEN; // nothing of it was kept
        if (control.subxid === control.xid) {
          stream.spool.remove();
          this.open.delete(control.xid);
        } else {
          stream.abortedSubxids.add(control.subxid);
        }
        return TAKEN;
      }
      case 'stream-commit': {
        const stream = this.open.get(control.xid);
        if (stream === undefined) {
          throw new DecodeError(`pgoutput: Stream Commit of transaction ${control.xid}, never started (at ${formatLsn(lsn)})`, lsn);
        }
        this.open.delete(control.xid);
        const { commitLsn, endLsn, commitTimeMs } = control;
        return { kind: 'commit', stream: { ...stream, commitLsn, endLsn, commitTimeMs } };
      }
    }
  }

  /** The stream's chunk ends: the block being received copies the changes it took from it. */
  endChunk(): void {
    this.block?.spool.copyRun();
  }

  /**
   * Drops every open transaction's spool, and the folder: the session ends, and the server sends them again to
   * the next one.
   */
  closeAll(): void {
    for (const stream of this.open.values()) stream.spool.remove();
    this.open.clear();
    this.block = undefined;
    rmSync(this.folder, { recursive: true, force: true });
  }
}

/**
 * This process's spool folder for the slot; the folders of processes of the slot that are gone (a kill -9) are
 * removed on the way. Per process, not per slot: a hot standby on the same machine must not delete the files of
 * the active consumer.
 */
export function spoolFolderOf(slotName: string): string {
  const slotFolder = join(tmpdir(), 'budget-cdc-spool', slotName);
  let entries: string[] = [];
  try {
    entries = readdirSync(slotFolder);
  } catch {
    // no folder yet
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (pid === process.pid || (Number.isInteger(pid) && isAlive(pid))) continue;
    rmSync(join(slotFolder, entry), { recursive: true, force: true });
  }
  const folder = join(slotFolder, String(process.pid));
  // A session of this process that failed may have left files: their transactions come again in this session.
  rmSync(folder, { recursive: true, force: true });
  return folder;
}
