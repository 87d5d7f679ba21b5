import { REPLICA_IDENTITY_LETTERS, type ReplicaIdentity } from '../db/table-contract.js';
import { DecodeError } from '../errors.js';
import type { Lsn } from '../lsn.js';

/** Milliseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch for replication timestamps. */
const POSTGRES_EPOCH_OFFSET_MS = 946_684_800_000;

// Decoder of the pgoutput logical replication protocol, version 1 (PostgreSQL 10+), text format.
// https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html
// Streaming of in-progress transactions (version 2+) is not requested, so every change received
// belongs to a committed transaction and comes between its Begin and its Commit.

/** A column value: text, null, or undefined for an unchanged TOASTed value the server did not resend. */
export type TupleValue = string | null | undefined;

export interface RelationColumn {
  name: string;
  typeOid: number;
  isKey: boolean;
}

export type PgoutputMessage =
  /** commitTimeMs: when the transaction committed on the server, in milliseconds since 1970 (its clock). */
  | { tag: 'begin'; finalLsn: Lsn; commitTimeMs: number; xid: number }
  | { tag: 'commit'; commitLsn: Lsn; endLsn: Lsn }
  | {
      tag: 'relation';
      relationId: number;
      schema: string;
      name: string;
      replicaIdentity: ReplicaIdentity;
      columns: RelationColumn[];
    }
  | { tag: 'insert'; relationId: number; newTuple: TupleValue[] }
  | { tag: 'update'; relationId: number; oldTuple: TupleValue[] | undefined; newTuple: TupleValue[] }
  | { tag: 'delete'; relationId: number; oldTuple: TupleValue[] }
  | { tag: 'truncate'; relationIds: number[] }
  | { tag: 'message'; prefix: string; content: Buffer; transactional: boolean }
  | { tag: 'origin' }
  | { tag: 'type' };

/**
 * Decodes one pgoutput message starting at `offset` of `buffer` (the payload of an XLogData message).
 * `lsn` is only used to say where a malformed message was.
 */
export function decodePgoutput(buffer: Buffer, offset: number, lsn: Lsn): PgoutputMessage {
  const reader = new MessageReader(buffer, offset, lsn);
  const kind = reader.byte();
  switch (kind) {
    case 0x49 /* I */: {
      const relationId = reader.int32();
      reader.expectByte(0x4e /* N */, 'insert');
      return { tag: 'insert', relationId, newTuple: reader.tuple() };
    }
    case 0x55 /* U */: {
      const relationId = reader.int32();
      let marker = reader.byte();
      let oldTuple: TupleValue[] | undefined;
      if (marker === 0x4b /* K */ || marker === 0x4f /* O */) {
        oldTuple = reader.tuple();
        marker = reader.byte();
      }
      if (marker !== 0x4e /* N */) throw reader.error(`update without a new tuple (marker ${marker})`);
      return { tag: 'update', relationId, oldTuple, newTuple: reader.tuple() };
    }
    case 0x44 /* D */: {
      const relationId = reader.int32();
      const marker = reader.byte();
      if (marker !== 0x4b /* K */ && marker !== 0x4f /* O */) throw reader.error(`delete without an old tuple (marker ${marker})`);
      return { tag: 'delete', relationId, oldTuple: reader.tuple() };
    }
    case 0x42 /* B */: {
      const finalLsn = reader.int64();
      const commitTimeMs = reader.timestampMs();
      return { tag: 'begin', finalLsn, commitTimeMs, xid: reader.int32() };
    }
    case 0x43 /* C */: {
      reader.skip(1); // flags, unused
      const commitLsn = reader.int64();
      return { tag: 'commit', commitLsn, endLsn: reader.int64() };
    }
    case 0x52 /* R */: {
      const relationId = reader.int32();
      const schema = reader.cstring();
      const name = reader.cstring();
      const identityByte = reader.byte();
      const replicaIdentity = REPLICA_IDENTITY_LETTERS[String.fromCharCode(identityByte)];
      if (replicaIdentity === undefined) throw reader.error(`unknown replica identity setting ${identityByte}`);
      const count = reader.int16();
      const columns: RelationColumn[] = [];
      for (let i = 0; i < count; i++) {
        const flags = reader.byte();
        const columnName = reader.cstring();
        const typeOid = reader.int32();
        reader.skip(4); // type modifier
        columns.push({ name: columnName, typeOid, isKey: (flags & 1) === 1 });
      }
      return { tag: 'relation', relationId, schema, name, replicaIdentity, columns };
    }
    case 0x54 /* T */: {
      const count = reader.int32();
      reader.skip(1); // CASCADE / RESTART IDENTITY flags: the effect on our table is the same
      const relationIds: number[] = [];
      for (let i = 0; i < count; i++) relationIds.push(reader.int32());
      return { tag: 'truncate', relationIds };
    }
    case 0x4d /* M */: {
      const transactional = (reader.byte() & 1) === 1;
      reader.skip(8); // LSN of the message
      const prefix = reader.cstring();
      const length = reader.int32();
      return { tag: 'message', prefix, transactional, content: reader.bytes(length) };
    }
    case 0x4f /* O */:
      return { tag: 'origin' };
    case 0x59 /* Y */:
      return { tag: 'type' };
    default:
      throw reader.error(`unknown pgoutput message type 0x${kind.toString(16)}`);
  }
}

/** Sequential reads over one message, with bounds checks that name the LSN on failure. */
class MessageReader {
  constructor(
    private readonly buffer: Buffer,
    private offset: number,
    private readonly lsn: Lsn,
  ) {}

  error(message: string): DecodeError {
    return new DecodeError(`pgoutput: ${message}`, this.lsn);
  }

  private need(length: number): void {
    if (this.offset + length > this.buffer.length) throw this.error(`message truncated at byte ${this.offset}`);
  }

  byte(): number {
    this.need(1);
    return this.buffer[this.offset++]!;
  }

  expectByte(expected: number, what: string): void {
    const got = this.byte();
    if (got !== expected) throw this.error(`${what}: expected 0x${expected.toString(16)}, got 0x${got.toString(16)}`);
  }

  int16(): number {
    this.need(2);
    const value = this.buffer.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(): number {
    this.need(4);
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  int64(): bigint {
    this.need(8);
    const value = this.buffer.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  /**
   * A replication timestamp (microseconds since 2000-01-01) as milliseconds since 1970. Read as two 32-bit
   * halves rather than a bigint: exact up to 2^53 µs (285 years), with no allocation per transaction.
   */
  timestampMs(): number {
    this.need(8);
    const micros = this.buffer.readInt32BE(this.offset) * 2 ** 32 + this.buffer.readUInt32BE(this.offset + 4);
    this.offset += 8;
    return micros / 1000 + POSTGRES_EPOCH_OFFSET_MS;
  }

  skip(length: number): void {
    this.need(length);
    this.offset += length;
  }

  bytes(length: number): Buffer {
    this.need(length);
    const value = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  cstring(): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) throw this.error('string without a terminating zero byte');
    const value = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return value;
  }

  tuple(): TupleValue[] {
    const count = this.int16();
    const values = new Array<TupleValue>(count);
    for (let i = 0; i < count; i++) {
      const kind = this.byte();
      if (kind === 0x74 /* t */) {
        const length = this.int32();
        this.need(length);
        values[i] = this.buffer.toString('utf8', this.offset, this.offset + length);
        this.offset += length;
      } else if (kind === 0x6e /* n */) {
        values[i] = null;
      } else if (kind === 0x75 /* u */) {
        values[i] = undefined;
      } else {
        // 'b' (binary) is only sent when the binary option is requested, which we never do.
        throw this.error(`unexpected tuple value kind 0x${kind.toString(16)}`);
      }
    }
    return values;
  }
}
