import { closeSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

// The changes of a streamed transaction (pgoutput protocol 2), kept until its Stream Commit or Stream Abort. A
// transaction streamed because it is large (a bulk COPY of millions of rows) must not live in memory: up to
// MEMORY_BYTES of records stay in a buffer, the rest goes to a file of the session's spool folder, read back in
// chunks at commit. Each record is one change message as protocol 1 lays it out (the xid taken out), with the
// subtransaction that made it, so that the abort of a subtransaction drops exactly its changes.

/** Bytes of records a spool keeps in memory before it writes them to its file. */
const MEMORY_BYTES = 1024 * 1024;
/** Bytes read from the file at a time on replay: whole records only are handed out. */
const READ_BYTES = 1024 * 1024;
/** Record head: length of the message, subtransaction xid. */
const HEAD_BYTES = 8;

/**
 * One spooled change: its message (protocol 1 layout) is `buffer[start, end)`. The same object is handed out for
 * every record (read it before asking for the next): a million-row transaction makes no million objects.
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
   * Adds the change at `buffer[offset, end)` (type byte, xid, rest) without its xid. Its LSN is not kept: a
   * replayed change is named by its transaction's commit LSN (dead letters), which costs no BigInt per row.
   */
  add(buffer: Buffer, offset: number, subxid: number): void {
    const messageBytes = buffer.length - offset - 4;
    const recordBytes = HEAD_BYTES + messageBytes;
    if (this.memoryLength + recordBytes > this.memory.length) {
      this.writeMemoryToFile();
      // A record larger than the whole buffer (a job_id of megabytes) gets a buffer of its own size.
      if (recordBytes > this.memory.length) this.memory = Buffer.allocUnsafe(recordBytes);
    }
    const memory = this.memory;
    let at = this.memoryLength;
    memory.writeUInt32BE(messageBytes, at);
    memory.writeUInt32BE(subxid, at + 4);
    at += HEAD_BYTES;
    memory[at] = buffer[offset]!;
    buffer.copy(memory, at + 1, offset + 5);
    this.memoryLength = at + messageBytes;
    this.changes++;
  }

  /** The spooled changes in order, a chunk of the file at a time, then those still in memory. */
  *read(): Generator<SpooledChange> {
    const change: SpooledChange = { buffer: this.memory, start: 0, end: 0, subxid: 0 };
    if (this.fd !== undefined) {
      let chunk = Buffer.allocUnsafe(READ_BYTES);
      let carried = 0; // bytes of an incomplete record at the start of chunk, from the previous read
      for (let position = 0; position < this.fileBytes;) {
        const bytesRead = readSync(this.fd, chunk, carried, chunk.length - carried, position);
        if (bytesRead === 0) throw new Error(`spool file ${this.path} ended early`);
        position += bytesRead;
        const available = carried + bytesRead;
        let at = 0;
        while (available - at >= HEAD_BYTES && available - at >= HEAD_BYTES + chunk.readUInt32BE(at)) {
          yield recordAt(change, chunk, at);
          at = change.end;
        }
        carried = available - at;
        // A new buffer (the records handed out point into this one), large enough for the incomplete record.
        const needed = carried >= HEAD_BYTES ? HEAD_BYTES + chunk.readUInt32BE(at) : 0;
        const next = Buffer.allocUnsafe(Math.max(READ_BYTES, needed));
        chunk.copy(next, 0, at, available);
        chunk = next;
      }
      if (carried > 0) throw new Error(`spool file ${this.path} ends inside a record`);
    }
    const memory = this.memory;
    for (let at = 0; at < this.memoryLength;) {
      yield recordAt(change, memory, at);
      at = change.end;
    }
  }

  /** Deletes the file and frees the memory (after the commit's replay, or an abort). */
  remove(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
      rmSync(this.path, { force: true });
    }
    this.memory = Buffer.alloc(0);
    this.memoryLength = 0;
  }

  private writeMemoryToFile(): void {
    if (this.memoryLength === 0) return;
    if (this.fd === undefined) {
      mkdirSync(this.folder, { recursive: true });
      this.fd = openSync(this.path, 'w+', 0o600);
    }
    let written = 0;
    while (written < this.memoryLength) {
      written += writeSync(this.fd, this.memory, written, this.memoryLength - written, this.fileBytes + written);
    }
    this.fileBytes += this.memoryLength;
    this.memoryLength = 0;
  }
}

/** Points `change` at the record at `at` of `buffer`. */
function recordAt(change: SpooledChange, buffer: Buffer, at: number): SpooledChange {
  change.buffer = buffer;
  change.start = at + HEAD_BYTES;
  change.end = at + HEAD_BYTES + buffer.readUInt32BE(at);
  change.subxid = buffer.readUInt32BE(at + 4);
  return change;
}
