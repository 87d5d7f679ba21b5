import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DecodeError } from '../errors.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { isAlive } from '../process-alive.js';
import { decodeStreamControl, STREAM_STOP, streamedChangeXid } from '../replication/stream-messages.js';
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
  private blockXid: number | undefined;

  /** `folder` holds this process's spool files; see spoolFolderOf. */
  constructor(private readonly folder: string) {}

  /** Streamed transactions neither committed nor aborted yet. */
  get openCount(): number {
    return this.open.size;
  }

  route(data: Buffer, offset: number, lsn: Lsn): Routed {
    if (this.blockXid !== undefined) {
      if (data[offset] === STREAM_STOP) {
        this.blockXid = undefined;
        return TAKEN;
      }
      const subxid = streamedChangeXid(data, offset, lsn);
      // A message without an xid (an Origin) says nothing the consumer uses.
      if (subxid !== undefined) this.open.get(this.blockXid)!.spool.add(data, offset, subxid);
      return TAKEN;
    }
    const control = decodeStreamControl(data, offset, lsn);
    if (control === undefined) return ORDINARY;
    switch (control.tag) {
      case 'stream-start': {
        if (!this.open.has(control.xid)) {
          mkdirSync(this.folder, { recursive: true });
          this.open.set(control.xid, { spool: new StreamSpool(this.folder, control.xid), abortedSubxids: new Set() });
        }
        this.blockXid = control.xid;
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

  /**
   * Drops every open transaction's spool, and the folder: the session ends, and the server sends them again to
   * the next one.
   */
  closeAll(): void {
    for (const stream of this.open.values()) stream.spool.remove();
    this.open.clear();
    this.blockXid = undefined;
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
