import { closeSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { XLOG_FRAME_HEAD_BYTES, xlogFrameLength } from '../replication/xlog-frame.js';
import { streamedChangeXid } from '../replication/stream-messages.js';

// The changes of a streamed transaction (pgoutput protocol 2), kept until its Stream Commit or Stream Abort. A
// transaction streamed because it is large (a bulk COPY of millions of rows) must not live in memory: up to
// MEMORY_BYTES stay in a buffer, the rest goes to a file of the session's spool folder, read back in chunks at
// commit. The changes are kept as the server framed them (xlog-frame.ts), and consecutive frames of a socket chunk
// are copied as one run: while a COPY runs, this is the consumer's share of its two cores, so the work per change
// is done at the Stream Commit instead (the subtransaction of each change is read then, so that the abort of a
// subtransaction drops exactly its changes).

/** Bytes of frames a spool keeps in memory before it writes them to its file. */
const MEMORY_BYTES = 1024 * 1024;
/** Bytes read from the file at a time on replay: whole frames only are handed out. */
const READ_BYTES = 1024 * 1024;
/** The CopyData head, which gives a frame's length. */
const LENGTH_HEAD_BYTES = 5;

/**
 * One spooled change: its message, laid out as protocol 1 has it (type byte, no xid), is `buffer[start, end)`.
 * The same object is handed out for every change (read it before asking for the next): a million-row transaction
 * makes no million objects.
 */
export interface SpooledChange {
  buffer: Buffer;
  start: number;
  end: number;
  subxid: number;
}

export class StreamSpool {
  private memory = Buffer.allocUnsafe(MEMORY_BYTES);
  private memoryLength = 0;
  private fd: number | undefined;
  private fileBytes = 0;
  /** Frames added but not copied yet: `runBuffer[runStart, runEnd)`, in the stream's current chunk. */
  private runBuffer: Buffer | undefined;
  private runStart = 0;
  private runEnd = 0;
  /** Changes spooled. */
  changes = 0;
  private readonly path: string;

  constructor(
    private readonly folder: string,
    readonly xid: number,
  ) {
    this.path = join(folder, `xid-${xid}-${process.pid}.spool`);
  }

  /**
   * Adds the change framed as `buffer[frameStart, frameEnd)`. A frame right after the previous one in the same
   * buffer extends the run to copy; the run is copied at the latest by copyRun(), which must be called before the
   * buffer's bytes may change (the stream's chunk ends). Its LSN is not read: a replayed change is named by its
   * transaction's commit LSN (dead letters), which costs no BigInt per row.
   */
  addFrame(buffer: Buffer, frameStart: number, frameEnd: number): void {
    if (buffer !== this.runBuffer || frameStart !== this.runEnd) {
      this.copyRun();
      this.runBuffer = buffer;
      this.runStart = frameStart;
    }
    this.runEnd = frameEnd;
    this.changes++;
  }

  /** Copies the frames added since the last copy into the spool. */
  copyRun(): void {
    const run = this.runBuffer;
    if (run === undefined) return;
    this.runBuffer = undefined;
    const bytes = this.runEnd - this.runStart;
    if (this.memoryLength + bytes > this.memory.length) {
      this.writeToFile(this.memory, 0, this.memoryLength);
      this.memoryLength = 0;
      if (bytes > this.memory.length) {
        // A run larger than the whole buffer goes to the file as it is.
        this.writeToFile(run, this.runStart, bytes);
        return;
      }
    }
    run.copy(this.memory, this.memoryLength, this.runStart, this.runEnd);
    this.memoryLength += bytes;
  }

  /** The spooled changes in order, a chunk of the file at a time, then those still in memory. */
  *read(): Generator<SpooledChange> {
    this.copyRun();
    const change: SpooledChange = { buffer: this.memory, start: 0, end: 0, subxid: 0 };
    if (this.fd !== undefined) {
      let chunk = Buffer.allocUnsafe(READ_BYTES);
      let carried = 0; // bytes of an incomplete frame at the start of chunk, from the previous read
      for (let position = 0; position < this.fileBytes;) {
        const bytesRead = readSync(this.fd, chunk, carried, chunk.length - carried, position);
        if (bytesRead === 0) throw new Error(`spool file ${this.path} ended early`);
        position += bytesRead;
        const available = carried + bytesRead;
        let at = 0;
        while (available - at >= LENGTH_HEAD_BYTES && available - at >= xlogFrameLength(chunk, at)) {
          const frameEnd = at + xlogFrameLength(chunk, at);
          if (changeAt(change, chunk, at, frameEnd)) yield change;
          at = frameEnd;
        }
        carried = available - at;
        // A new buffer (the changes handed out point into this one), large enough for the incomplete frame.
        const needed = carried >= LENGTH_HEAD_BYTES ? xlogFrameLength(chunk, at) : 0;
        const next = Buffer.allocUnsafe(Math.max(READ_BYTES, needed));
        chunk.copy(next, 0, at, available);
        chunk = next;
      }
      if (carried > 0) throw new Error(`spool file ${this.path} ends inside a frame`);
    }
    const memory = this.memory;
    for (let at = 0; at < this.memoryLength;) {
      const frameEnd = at + xlogFrameLength(memory, at);
      if (changeAt(change, memory, at, frameEnd)) yield change;
      at = frameEnd;
    }
  }

  /** Deletes the file and frees the memory (after the commit's replay, or an abort). */
  remove(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
      rmSync(this.path, { force: true });
    }
    this.runBuffer = undefined;
    this.memory = Buffer.alloc(0);
    this.memoryLength = 0;
  }

  private writeToFile(source: Buffer, start: number, length: number): void {
    if (length === 0) return;
    if (this.fd === undefined) {
      mkdirSync(this.folder, { recursive: true });
      this.fd = openSync(this.path, 'w+', 0o600);
    }
    let written = 0;
    while (written < length) {
      written += writeSync(this.fd, source, start + written, length - written, this.fileBytes + written);
    }
    this.fileBytes += length;
  }
}

/**
 * Points `change` at the message of the frame `buffer[frameStart, frameEnd)`, in protocol 1's layout: its type
 * byte is copied over the last byte of its xid, which the message then starts at. Returns false for a message
 * without an xid (an Origin), which the consumer has no use for.
 */
function changeAt(change: SpooledChange, buffer: Buffer, frameStart: number, frameEnd: number): boolean {
  const subxid = streamedChangeXid(buffer, frameStart, frameEnd);
  if (subxid === undefined) return false;
  const messageStart = frameStart + XLOG_FRAME_HEAD_BYTES;
  buffer[messageStart + 4] = buffer[messageStart]!;
  change.buffer = buffer;
  change.start = messageStart + 4;
  change.end = frameEnd;
  change.subxid = subxid;
  return true;
}
