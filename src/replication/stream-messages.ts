import { DecodeError } from '../errors.js';
import type { Lsn } from '../lsn.js';

// The messages of pgoutput protocol 2 that frame a streamed transaction (PostgreSQL 14 and later, with
// streaming 'on'): a transaction larger than logical_decoding_work_mem is sent while it runs, in blocks between
// Stream Start and Stream Stop, and ends with Stream Commit or Stream Abort. Inside a block every change message
// carries, right after its type byte, the xid of the (sub)transaction that made it.
// https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html

/** Milliseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch for replication timestamps. */
const POSTGRES_EPOCH_OFFSET_MS = 946_684_800_000;

export const STREAM_START = 0x53; // S
export const STREAM_STOP = 0x45; // E
export const STREAM_COMMIT = 0x63; // c
export const STREAM_ABORT = 0x41; // A

/** Message types that carry an xid after their type byte inside a stream block. */
const WITH_XID_IN_STREAM = new Set([
  0x49, // I: insert
  0x55, // U: update
  0x44, // D: delete
  0x54, // T: truncate
  0x52, // R: relation
  0x59, // Y: type
  0x4d, // M: logical decoding message
]);

export type StreamControl =
  | { tag: 'stream-start'; xid: number; firstSegment: boolean }
  | { tag: 'stream-stop' }
  /** commitTimeMs: when the transaction committed on the server, in milliseconds since 1970 (its clock). */
  | { tag: 'stream-commit'; xid: number; commitLsn: Lsn; endLsn: Lsn; commitTimeMs: number }
  /** subxid equals xid when the whole transaction aborted; otherwise only that subtransaction did. */
  | { tag: 'stream-abort'; xid: number; subxid: number };

/** The stream framing message at `offset`, or undefined for any other message. */
export function decodeStreamControl(buffer: Buffer, offset: number, lsn: Lsn): StreamControl | undefined {
  const kind = buffer[offset];
  const need = (length: number): void => {
    if (offset + length > buffer.length) throw new DecodeError(`pgoutput: stream message 0x${kind!.toString(16)} truncated`, lsn);
  };
  switch (kind) {
    case STREAM_START:
      need(6);
      return { tag: 'stream-start', xid: buffer.readUInt32BE(offset + 1), firstSegment: buffer[offset + 5] === 1 };
    case STREAM_STOP:
      return { tag: 'stream-stop' };
    case STREAM_COMMIT: {
      need(30);
      const micros = buffer.readInt32BE(offset + 22) * 2 ** 32 + buffer.readUInt32BE(offset + 26);
      return {
        tag: 'stream-commit',
        xid: buffer.readUInt32BE(offset + 1),
        // offset + 5: flags, unused
        commitLsn: buffer.readBigUInt64BE(offset + 6),
        endLsn: buffer.readBigUInt64BE(offset + 14),
        commitTimeMs: micros / 1000 + POSTGRES_EPOCH_OFFSET_MS,
      };
    }
    case STREAM_ABORT:
      need(9);
      return { tag: 'stream-abort', xid: buffer.readUInt32BE(offset + 1), subxid: buffer.readUInt32BE(offset + 5) };
    default:
      return undefined;
  }
}

/**
 * For a message inside a stream block: the xid of the (sub)transaction it belongs to, or undefined for a message
 * without one (an Origin), which the consumer has no use for inside a block.
 */
export function streamedChangeXid(buffer: Buffer, offset: number, lsn: Lsn): number | undefined {
  if (!WITH_XID_IN_STREAM.has(buffer[offset]!)) return undefined;
  if (offset + 5 > buffer.length) throw new DecodeError('pgoutput: streamed change truncated before its xid', lsn);
  return buffer.readUInt32BE(offset + 1);
}
