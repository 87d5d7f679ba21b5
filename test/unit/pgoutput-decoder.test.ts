import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../src/errors.js';
import { JobChangeDecoder, makeJobColumnRanges, type JobColumnRanges, type JobRow } from '../../src/replication/job-changes.js';
import { formatLsn, parseLsn, type Lsn } from '../../src/lsn.js';
import { decodePgoutput, type PgoutputMessage, type TupleValue } from '../../src/replication/pgoutput-decoder.js';

// Messages are built byte by byte from the protocol's description, not from the decoder:
// https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html

const TEXT_OID = 25;
const INT4_OID = 23;
const NUMERIC_OID = 1700;
const TIMESTAMPTZ_OID = 1184;
const JOBS_RELATION_ID = 16_385;
const OTHER_RELATION_ID = 16_400;
const LSN = 0x16_b374_d848n;

/** Appends protocol fields (big-endian integers, zero-terminated strings) and gives the bytes. */
class MessageBuilder {
  private readonly parts: Buffer[] = [];

  char(c: string): this {
    return this.int8(c.charCodeAt(0));
  }

  int8(n: number): this {
    this.parts.push(Buffer.from([n]));
    return this;
  }

  int16(n: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    this.parts.push(b);
    return this;
  }

  int32(n: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    this.parts.push(b);
    return this;
  }

  int64(n: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(n);
    this.parts.push(b);
    return this;
  }

  string(s: string): this {
    this.parts.push(Buffer.from(s, 'utf8'), Buffer.from([0]));
    return this;
  }

  bytes(b: Buffer): this {
    this.parts.push(b);
    return this;
  }

  /** TupleData: Int16 count, then per column 'n' (null), 'u' (unchanged TOAST) or 't' Int32 length + text. */
  tuple(values: TupleValue[]): this {
    this.int16(values.length);
    for (const value of values) {
      if (value === null) this.char('n');
      else if (value === undefined) this.char('u');
      else {
        const text = Buffer.from(value, 'utf8');
        this.char('t').int32(text.length).bytes(text);
      }
    }
    return this;
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const message = (): MessageBuilder => new MessageBuilder();

interface ColumnSpec {
  name: string;
  typeOid: number;
  isKey?: boolean;
}

const JOBS_COLUMNS: ColumnSpec[] = [
  { name: 'id', typeOid: 20, isKey: true },
  { name: 'job_id', typeOid: TEXT_OID },
  { name: 'days_online', typeOid: INT4_OID },
  { name: 'budget', typeOid: NUMERIC_OID },
  { name: 'created_at', typeOid: TIMESTAMPTZ_OID },
];

/** `identity`: pg_class.relreplident, 'f' (FULL, what migrate sets), 'd' (DEFAULT), 'i' (INDEX) or 'n' (NOTHING). */
function relationMessage(relationId: number, schema: string, name: string, columns: ColumnSpec[], identity = 'f'): Buffer {
  const m = message().char('R').int32(relationId).string(schema).string(name).char(identity).int16(columns.length);
  for (const column of columns) {
    m.int8(column.isKey === true ? 1 : 0)
      .string(column.name)
      .int32(column.typeOid)
      .int32(0xffffffff); // atttypmod -1
  }
  return m.build();
}

const insertMessage = (relationId: number, values: TupleValue[]): Buffer =>
  message().char('I').int32(relationId).char('N').tuple(values).build();

function decode(buffer: Buffer, lsn: Lsn = LSN): PgoutputMessage {
  return decodePgoutput(buffer, 0, lsn);
}

describe('decodePgoutput', () => {
  it('decodes Begin: final LSN, commit timestamp (µs since 2000) as ms since 1970, and xid', () => {
    // 2026-12-01T10:00:00.123456Z: 849,434,400.123456 s after 2000-01-01
    const commitMicros = 849_434_400_123_456n;
    const buffer = message().char('B').int64(0x1_0000_0200n).int64(commitMicros).int32(4_000_000_000).build();
    const begin = decode(buffer);
    expect(begin).toEqual({ tag: 'begin', finalLsn: 0x1_0000_0200n, commitTimeMs: expect.any(Number), xid: 4_000_000_000 });
    if (begin.tag !== 'begin') throw new Error('not a Begin');
    expect(new Date(Math.floor(begin.commitTimeMs)).toISOString()).toBe('2026-12-01T10:00:00.123Z');
    expect(begin.commitTimeMs).toBeCloseTo(Date.UTC(2026, 11, 1, 10, 0, 0, 123) + 0.456, 2);
  });

  it('decodes Commit: commit LSN and end LSN', () => {
    const buffer = message().char('C').int8(0).int64(0x16_b374_d800n).int64(0x16_b374_d848n).int64(789_000_000_000n).build();
    expect(decode(buffer)).toEqual({ tag: 'commit', commitLsn: 0x16_b374_d800n, endLsn: 0x16_b374_d848n });
  });

  it('decodes Relation: schema, name, replica identity, and each column with its type and key flag', () => {
    expect(decode(relationMessage(JOBS_RELATION_ID, 'public', 'jobs', JOBS_COLUMNS, 'd'))).toMatchObject({ replicaIdentity: 'default' });
    expect(decode(relationMessage(JOBS_RELATION_ID, 'public', 'jobs', JOBS_COLUMNS, 'n'))).toMatchObject({ replicaIdentity: 'nothing' });
    expect(decode(relationMessage(JOBS_RELATION_ID, 'public', 'jobs', JOBS_COLUMNS, 'i'))).toMatchObject({ replicaIdentity: 'index' });
    expect(decode(relationMessage(JOBS_RELATION_ID, 'public', 'jobs', JOBS_COLUMNS))).toEqual({
      tag: 'relation',
      relationId: JOBS_RELATION_ID,
      schema: 'public',
      name: 'jobs',
      replicaIdentity: 'full',
      columns: [
        { name: 'id', typeOid: 20, isKey: true },
        { name: 'job_id', typeOid: TEXT_OID, isKey: false },
        { name: 'days_online', typeOid: INT4_OID, isKey: false },
        { name: 'budget', typeOid: NUMERIC_OID, isKey: false },
        { name: 'created_at', typeOid: TIMESTAMPTZ_OID, isKey: false },
      ],
    });
  });

  it('decodes Insert with text and null values, multi-byte UTF-8 included', () => {
    const buffer = insertMessage(JOBS_RELATION_ID, ['1', 'jöb-€-1', null, '', '2026-11-29 10:00:00+00']);
    expect(decode(buffer)).toEqual({
      tag: 'insert',
      relationId: JOBS_RELATION_ID,
      newTuple: ['1', 'jöb-€-1', null, '', '2026-11-29 10:00:00+00'],
    });
  });

  it('decodes Update with an old tuple (O) and unchanged TOASTed values (u)', () => {
    const buffer = message()
      .char('U')
      .int32(JOBS_RELATION_ID)
      .char('O')
      .tuple(['1', 'job-1', '3', '100.00', '2026-11-29 10:00:00+00'])
      .char('N')
      .tuple(['1', undefined, '3', '200.00', '2026-11-29 10:00:00+00'])
      .build();
    const decoded = decode(buffer);
    expect(decoded).toEqual({
      tag: 'update',
      relationId: JOBS_RELATION_ID,
      oldTuple: ['1', 'job-1', '3', '100.00', '2026-11-29 10:00:00+00'],
      newTuple: ['1', undefined, '3', '200.00', '2026-11-29 10:00:00+00'],
    });
    // toEqual treats a hole and undefined alike; 'u' must be a present, undefined entry.
    expect(decoded.tag === 'update' && decoded.newTuple.length).toBe(5);
  });

  it('decodes Update with a key tuple (K) and without an old tuple', () => {
    const withKey = message().char('U').int32(JOBS_RELATION_ID).char('K').tuple(['1', null]).char('N').tuple(['1', 'b']).build();
    expect(decode(withKey)).toEqual({ tag: 'update', relationId: JOBS_RELATION_ID, oldTuple: ['1', null], newTuple: ['1', 'b'] });
    const withoutOld = message().char('U').int32(JOBS_RELATION_ID).char('N').tuple(['1', 'b']).build();
    expect(decode(withoutOld)).toEqual({ tag: 'update', relationId: JOBS_RELATION_ID, oldTuple: undefined, newTuple: ['1', 'b'] });
  });

  it('decodes Delete with a key tuple (K) or an old tuple (O)', () => {
    const key = message().char('D').int32(JOBS_RELATION_ID).char('K').tuple(['7', null, null, null, null]).build();
    expect(decode(key)).toEqual({ tag: 'delete', relationId: JOBS_RELATION_ID, oldTuple: ['7', null, null, null, null] });
    const old = message().char('D').int32(JOBS_RELATION_ID).char('O').tuple(['7', 'job-7', '1', '1.00', 'x']).build();
    expect(decode(old)).toEqual({ tag: 'delete', relationId: JOBS_RELATION_ID, oldTuple: ['7', 'job-7', '1', '1.00', 'x'] });
  });

  it('decodes Truncate with its relation ids', () => {
    const buffer = message().char('T').int32(2).int8(1 /* CASCADE */).int32(JOBS_RELATION_ID).int32(OTHER_RELATION_ID).build();
    expect(decode(buffer)).toEqual({ tag: 'truncate', relationIds: [JOBS_RELATION_ID, OTHER_RELATION_ID] });
  });

  it('decodes a logical decoding Message', () => {
    const content = Buffer.from('heartbeat');
    const buffer = message().char('M').int8(1).int64(LSN).string('budget-cdc').int32(content.length).bytes(content).build();
    const decoded = decode(buffer);
    expect(decoded).toMatchObject({ tag: 'message', prefix: 'budget-cdc', transactional: true });
    expect(decoded.tag === 'message' && decoded.content.toString()).toBe('heartbeat');
  });

  it('decodes at an offset, as XLogData carries the message after a 25-byte header', () => {
    const header = Buffer.alloc(25, 0xaa);
    const buffer = Buffer.concat([header, insertMessage(JOBS_RELATION_ID, ['x'])]);
    expect(decodePgoutput(buffer, 25, LSN)).toEqual({ tag: 'insert', relationId: JOBS_RELATION_ID, newTuple: ['x'] });
  });

  it('throws a DecodeError carrying the LSN for every truncation of a message', () => {
    const messages = [
      message().char('B').int64(1n).int64(2n).int32(3).build(),
      message().char('C').int8(0).int64(1n).int64(2n).int64(3n).build(),
      relationMessage(JOBS_RELATION_ID, 'public', 'jobs', JOBS_COLUMNS),
      insertMessage(JOBS_RELATION_ID, ['1', 'job-1', '3', '100.00', null]),
      message().char('U').int32(JOBS_RELATION_ID).char('O').tuple(['a', 'b']).char('N').tuple(['a', undefined]).build(),
      message().char('D').int32(JOBS_RELATION_ID).char('K').tuple(['7']).build(),
      message().char('T').int32(1).int8(0).int32(JOBS_RELATION_ID).build(),
    ];
    // The Commit ends with a timestamp the decoder does not need; only cuts before it must fail.
    const neededLength = (buffer: Buffer): number => (buffer[0] === 'C'.charCodeAt(0) ? buffer.length - 8 : buffer.length);
    for (const full of messages) {
      for (let length = 0; length < neededLength(full); length++) {
        const cut = full.subarray(0, length);
        let thrown: unknown;
        try {
          decodePgoutput(cut, 0, LSN);
        } catch (error) {
          thrown = error;
        }
        expect(thrown, `${String.fromCharCode(full[0]!)} cut to ${length} of ${full.length} bytes`).toBeInstanceOf(DecodeError);
        expect((thrown as DecodeError).lsn).toBe(LSN);
      }
    }
  });

  it('names the LSN of a value longer than the rest of the message', () => {
    const buffer = message().char('I').int32(JOBS_RELATION_ID).char('N').int16(1).char('t').int32(100).bytes(Buffer.from('short')).build();
    expect(() => decode(buffer, 0x2a_0000_0010n)).toThrow(DecodeError);
    try {
      decode(buffer, 0x2a_0000_0010n);
    } catch (error) {
      expect((error as DecodeError).lsn).toBe(0x2a_0000_0010n);
      expect((error as DecodeError).message).toMatch(/truncated/);
    }
  });

  it('rejects unknown message types and unknown tuple value kinds with a DecodeError', () => {
    expect(() => decode(message().char('Z').build())).toThrow(DecodeError);
    expect(() => decode(message().char('I').int32(1).char('N').int16(1).char('b').int32(1).int8(0).build())).toThrow(DecodeError);
    expect(() => decode(message().char('I').int32(1).char('X').tuple([]).build())).toThrow(DecodeError);
  });
});

describe('JobChangeDecoder', () => {
  const relation = (relationId: number, name: string, columns: ColumnSpec[], identity = 'f'): PgoutputMessage =>
    decode(relationMessage(relationId, 'public', name, columns, identity));

  function decoderWithJobs(columns: ColumnSpec[] = JOBS_COLUMNS, identity = 'f'): JobChangeDecoder {
    const decoder = new JobChangeDecoder();
    expect(decoder.toJobChange(relation(JOBS_RELATION_ID, 'jobs', columns, identity), LSN)).toMatchObject({ tag: 'table' });
    return decoder;
  }

  it('maps an insert to an upsert by column name', () => {
    const decoder = decoderWithJobs();
    const change = decoder.toJobChange(
      decode(insertMessage(JOBS_RELATION_ID, ['1', 'job-1', '3', '100.00', '2026-11-29 10:00:00+00'])),
      LSN,
    );
    expect(change).toEqual({
      tag: 'upsert',
      row: { jobId: 'job-1', daysOnline: '3', budget: '100.00', createdAt: '2026-11-29 10:00:00+00' },
      previousJobId: undefined,
    });
  });

  it('finds the columns by name when the table has them in another order, or has more', () => {
    const decoder = decoderWithJobs([
      { name: 'created_at', typeOid: TIMESTAMPTZ_OID },
      { name: 'note', typeOid: TEXT_OID },
      { name: 'budget', typeOid: NUMERIC_OID },
      { name: 'job_id', typeOid: TEXT_OID },
      { name: 'id', typeOid: 20, isKey: true },
      { name: 'days_online', typeOid: INT4_OID },
    ]);
    const change = decoder.toJobChange(
      decode(insertMessage(JOBS_RELATION_ID, ['2026-11-29 10:00:00+00', null, '7.50', 'job-2', '2', '30'])),
      LSN,
    );
    expect(change).toEqual({
      tag: 'upsert',
      row: { jobId: 'job-2', daysOnline: '30', budget: '7.50', createdAt: '2026-11-29 10:00:00+00' },
      previousJobId: undefined,
    });
  });

  it('takes an unchanged (TOASTed) job_id of an update from the old tuple', () => {
    const decoder = decoderWithJobs();
    const longId = 'long-' + 'x'.repeat(3000);
    const update = message()
      .char('U')
      .int32(JOBS_RELATION_ID)
      .char('O')
      .tuple(['1', longId, '2', '1.00', '2026-11-29 10:00:00+00'])
      .char('N')
      .tuple(['1', undefined, '2', '3.00', '2026-11-29 10:00:00+00'])
      .build();
    expect(decoder.toJobChange(decode(update), LSN)).toEqual({
      tag: 'upsert',
      row: { jobId: longId, daysOnline: '2', budget: '3.00', createdAt: '2026-11-29 10:00:00+00' },
      previousJobId: longId,
    });
  });

  it('reports the previous job_id of an update that renames the job', () => {
    const decoder = decoderWithJobs();
    const update = message()
      .char('U')
      .int32(JOBS_RELATION_ID)
      .char('O')
      .tuple(['1', 'old-id', '2', '1.00', '2026-11-29 10:00:00+00'])
      .char('N')
      .tuple(['1', 'new-id', '2', '1.00', '2026-11-29 10:00:00+00'])
      .build();
    expect(decoder.toJobChange(decode(update), LSN)).toMatchObject({ tag: 'upsert', row: { jobId: 'new-id' }, previousJobId: 'old-id' });
  });

  it('maps a delete to the job_id of the old tuple', () => {
    const decoder = decoderWithJobs();
    const del = message().char('D').int32(JOBS_RELATION_ID).char('O').tuple(['1', 'job-9', '2', '1.00', '2026-11-29 10:00:00+00']).build();
    expect(decoder.toJobChange(decode(del), LSN)).toEqual({ tag: 'delete', jobId: 'job-9' });
  });

  it('ignores changes of another relation, and truncates that do not include jobs', () => {
    const decoder = decoderWithJobs();
    expect(decoder.toJobChange(relation(OTHER_RELATION_ID, 'audit', [{ name: 'job_id', typeOid: TEXT_OID }]), LSN)).toBeUndefined();
    expect(decoder.toJobChange(decode(insertMessage(OTHER_RELATION_ID, ['job-1'])), LSN)).toBeUndefined();
    // A relation never described (e.g. before its Relation message) is not jobs either.
    expect(decoder.toJobChange(decode(insertMessage(99_999, ['x'])), LSN)).toBeUndefined();
    const truncateOther = message().char('T').int32(1).int8(0).int32(OTHER_RELATION_ID).build();
    expect(decoder.toJobChange(decode(truncateOther), LSN)).toBeUndefined();
    const truncateBoth = message().char('T').int32(2).int8(0).int32(OTHER_RELATION_ID).int32(JOBS_RELATION_ID).build();
    expect(decoder.toJobChange(decode(truncateBoth), LSN)).toEqual({ tag: 'truncate' });
  });

  it('sets aside an update whose unchanged job_id has no old tuple to take it from (REPLICA IDENTITY DEFAULT)', () => {
    const decoder = decoderWithJobs(JOBS_COLUMNS, 'd');
    const update = message()
      .char('U')
      .int32(JOBS_RELATION_ID)
      .char('N')
      .tuple(['1', undefined, '2', '3.00', '2026-11-29 10:00:00+00'])
      .build();
    expect(decoder.toJobChange(decode(update), LSN)).toEqual({
      tag: 'unreadable',
      jobId: undefined,
      reason: expect.stringMatching(/job_id arrived unchanged .*REPLICA IDENTITY DEFAULT, not FULL.*migrate.*resync/),
    });
  });

  it('applies an update without the old row (REPLICA IDENTITY DEFAULT), saying that the old key may stay', () => {
    const decoder = decoderWithJobs(JOBS_COLUMNS, 'd');
    const update = message()
      .char('U')
      .int32(JOBS_RELATION_ID)
      .char('N')
      .tuple(['1', 'new-id', '2', '3.00', '2026-11-29 10:00:00+00'])
      .build();
    expect(decoder.toJobChange(decode(update), LSN)).toEqual({
      tag: 'upsert',
      row: { jobId: 'new-id', daysOnline: '2', budget: '3.00', createdAt: '2026-11-29 10:00:00+00' },
      previousJobId: undefined,
      previousJobIdMissing: expect.stringMatching(/^UPDATE arrived without the old job_id: if job_id changed, the old key stays/),
    });
  });

  it('sets aside a delete that carries only the primary key (REPLICA IDENTITY DEFAULT), naming the row by it', () => {
    const decoder = decoderWithJobs(JOBS_COLUMNS, 'd');
    const del = message().char('D').int32(JOBS_RELATION_ID).char('K').tuple(['42', null, null, null, null]).build();
    expect(decoder.toJobChange(decode(del), LSN)).toEqual({
      tag: 'unreadable',
      jobId: undefined,
      reason: expect.stringMatching(
        /^DELETE arrived without the old job_id \(the row with id=42\): the job's key stays in Redis; jobs has REPLICA IDENTITY DEFAULT/,
      ),
    });
  });

  it('stops following a relation once the server describes it under another name (ALTER TABLE jobs RENAME)', () => {
    // The publication follows the table by OID, so after a rename the old jobs table keeps streaming, and
    // the server re-sends its Relation message with the new name before its next change.
    const decoder = decoderWithJobs();
    expect(decoder.toJobChange(relation(JOBS_RELATION_ID, 'jobs_archive', JOBS_COLUMNS), LSN)).toBeUndefined();
    expect(decoder.locateInsert(insertMessage(JOBS_RELATION_ID, ['1', 'a', '3', '1.00', 'x']), 0, makeJobColumnRanges())).toBe(false);
    const insert = decode(insertMessage(JOBS_RELATION_ID, ['1', 'archived-1', '3', '1.00', '2026-11-29 10:00:00+00']));
    expect(decoder.toJobChange(insert, LSN)).toBeUndefined();
    const truncate = message().char('T').int32(1).int8(0).int32(JOBS_RELATION_ID).build();
    expect(decoder.toJobChange(decode(truncate), LSN)).toBeUndefined();
  });

  it('passes Begin through with the commit LSN, and Commit with its end LSN', () => {
    const decoder = decoderWithJobs();
    const begin = message().char('B').int64(0x10n).int64(0n).int32(1).build();
    expect(decoder.toJobChange(decode(begin), LSN)).toEqual({ tag: 'begin', commitLsn: 0x10n, commitTimeMs: Date.UTC(2000, 0, 1) });
    const commit = message().char('C').int8(0).int64(0x10n).int64(0x18n).int64(0n).build();
    expect(decoder.toJobChange(decode(commit), LSN)).toEqual({ tag: 'commit', endLsn: 0x18n });
  });

  it('sets aside a row with a null job column, naming the column and the job', () => {
    const decoder = decoderWithJobs();
    const insert = decode(insertMessage(JOBS_RELATION_ID, ['1', 'job-1', null, '1.00', '2026-11-29 10:00:00+00']));
    expect(decoder.toJobChange(insert, 0x42n)).toEqual({
      tag: 'unreadable',
      jobId: 'job-1',
      reason: expect.stringMatching(/^jobs.days_online arrived null: the column must be NOT NULL/),
    });
  });

  it('sets aside the rows of a jobs table that lacks a contract column, until the server describes it whole again', () => {
    const decoder = new JobChangeDecoder();
    const renamed = JOBS_COLUMNS.map((c) => (c.name === 'budget' ? { ...c, name: 'budget_eur' } : c));
    expect(decoder.toJobChange(relation(JOBS_RELATION_ID, 'jobs', renamed), 0x42n)).toEqual({
      tag: 'table',
      replicaIdentity: 'full',
      missingColumns: ['budget'],
    });
    const row = ['1', 'job-1', '3', '1.00', '2026-11-29 10:00:00+00'];
    const insert = insertMessage(JOBS_RELATION_ID, row);
    // Neither path reads it: the bulk-load path leaves it to toJobChange, which sets it aside with the job_id.
    expect(decoder.locateInsert(insert, 0, makeJobColumnRanges())).toBe(false);
    expect(decoder.toJobChange(decode(insert), 0x50n)).toEqual({
      tag: 'unreadable',
      jobId: 'job-1',
      reason: expect.stringMatching(/^the jobs table had no column budget when this row was written \(as of WAL position 0\/42\).*resync/),
    });
    const del = message().char('D').int32(JOBS_RELATION_ID).char('O').tuple(row).build();
    expect(decoder.toJobChange(decode(del), LSN)).toMatchObject({ tag: 'unreadable', jobId: 'job-1' });
    // Renamed back: the next Relation message makes rows flow again.
    expect(decoder.toJobChange(relation(JOBS_RELATION_ID, 'jobs', JOBS_COLUMNS), LSN)).toEqual({
      tag: 'table',
      replicaIdentity: 'full',
      missingColumns: [],
    });
    expect(decoder.locateInsert(insert, 0, makeJobColumnRanges())).toBe(true);
    expect(decoder.toJobChange(decode(insert), LSN)).toMatchObject({ tag: 'upsert', row: { jobId: 'job-1', budget: '1.00' } });
  });

  it('sets aside the rows of a jobs table without job_id, with no job_id to name', () => {
    const decoder = decoderWithJobs(JOBS_COLUMNS.filter((c) => c.name !== 'job_id'));
    const insert = decode(insertMessage(JOBS_RELATION_ID, ['1', '3', '1.00', '2026-11-29 10:00:00+00']));
    expect(decoder.toJobChange(insert, LSN)).toMatchObject({
      tag: 'unreadable',
      jobId: undefined,
      reason: expect.stringMatching(/no column job_id/),
    });
  });
});

describe('JobChangeDecoder#locateInsert (the bulk-load path)', () => {
  function decoderWith(columns: ColumnSpec[]): JobChangeDecoder {
    const decoder = new JobChangeDecoder();
    decoder.toJobChange(decode(relationMessage(JOBS_RELATION_ID, 'public', 'jobs', columns)), LSN);
    return decoder;
  }

  function textsOf(buffer: Buffer, ranges: JobColumnRanges): JobRow {
    return {
      jobId: buffer.toString('utf8', ranges.jobIdStart, ranges.jobIdEnd),
      daysOnline: buffer.toString('utf8', ranges.daysOnlineStart, ranges.daysOnlineEnd),
      budget: buffer.toString('utf8', ranges.budgetStart, ranges.budgetEnd),
      createdAt: buffer.toString('utf8', ranges.createdAtStart, ranges.createdAtEnd),
    };
  }

  it('locates exactly the texts toJobChange reads, whatever the column order and extra columns', () => {
    const orders: ColumnSpec[][] = [
      JOBS_COLUMNS,
      [
        { name: 'created_at', typeOid: TIMESTAMPTZ_OID },
        { name: 'note', typeOid: TEXT_OID },
        { name: 'budget', typeOid: NUMERIC_OID },
        { name: 'job_id', typeOid: TEXT_OID },
        { name: 'days_online', typeOid: INT4_OID },
      ],
    ];
    for (const columns of orders) {
      fc.assert(
        fc.property(
          fc.array(fc.option(fc.string({ unit: 'grapheme', maxLength: 30 }), { nil: null }), {
            minLength: columns.length,
            maxLength: columns.length,
          }),
          (values) => {
            const decoder = decoderWith(columns);
            const buffer = insertMessage(JOBS_RELATION_ID, values);
            const ranges = makeJobColumnRanges();
            const located = decoder.locateInsert(buffer, 0, ranges);
            const jobColumnIsNull = ['job_id', 'days_online', 'budget', 'created_at'].some(
              (name) => values[columns.findIndex((c) => c.name === name)] === null,
            );
            expect(located).toBe(!jobColumnIsNull);
            if (located) {
              const change = decoder.toJobChange(decode(buffer), LSN);
              expect(change).toEqual({ tag: 'upsert', row: textsOf(buffer, ranges), previousJobId: undefined });
            }
          },
        ),
      );
    }
  });

  it('declines, without throwing, what the general decoder must handle or report', () => {
    const decoder = decoderWith(JOBS_COLUMNS);
    const ranges = makeJobColumnRanges();
    const row: TupleValue[] = ['1', 'job-1', '3', '100.00', '2026-11-29 10:00:00+00'];
    const insert = insertMessage(JOBS_RELATION_ID, row);
    expect(decoder.locateInsert(insert, 0, ranges)).toBe(true);
    // Another table, an unchanged (TOASTed) job column, a message cut short or with bytes left over.
    expect(decoder.locateInsert(insertMessage(OTHER_RELATION_ID, row), 0, ranges)).toBe(false);
    expect(
      decoder.locateInsert(insertMessage(JOBS_RELATION_ID, ['1', undefined, '3', '100.00', '2026-11-29 10:00:00+00']), 0, ranges),
    ).toBe(false);
    for (let length = 0; length < insert.length; length++) expect(decoder.locateInsert(insert.subarray(0, length), 0, ranges)).toBe(false);
    expect(decoder.locateInsert(Buffer.concat([insert, Buffer.from([0])]), 0, ranges)).toBe(false);
    // A row with fewer columns than the relation described.
    expect(decoder.locateInsert(insertMessage(JOBS_RELATION_ID, ['1', 'job-1', '3']), 0, ranges)).toBe(false);
    // Not an insert at all.
    expect(decoder.locateInsert(message().char('D').int32(JOBS_RELATION_ID).char('O').tuple(row).build(), 0, ranges)).toBe(false);
  });

  it('reads at an offset, as XLogData carries the message after a 25-byte header', () => {
    const decoder = decoderWith(JOBS_COLUMNS);
    const ranges = makeJobColumnRanges();
    const buffer = Buffer.concat([
      Buffer.alloc(25, 0xff),
      insertMessage(JOBS_RELATION_ID, ['1', 'job-7', '3', '100.00', '2026-11-29 10:00:00+00']),
    ]);
    expect(decoder.locateInsert(buffer, 25, ranges)).toBe(true);
    expect(textsOf(buffer, ranges).jobId).toBe('job-7');
  });
});

describe('parseLsn and formatLsn', () => {
  it.each([
    ['16/B374D848', 0x16_b374_d848n],
    ['0/0', 0n],
    ['0/1', 1n],
    ['1/0', 0x1_0000_0000n],
    ['FFFFFFFF/FFFFFFFF', 0xffff_ffff_ffff_ffffn],
  ])('round-trips %s', (text, lsn) => {
    expect(parseLsn(text)).toBe(lsn);
    expect(formatLsn(lsn)).toBe(text);
  });

  it('accepts lower case and leading zeros, and prints as PostgreSQL does', () => {
    expect(formatLsn(parseLsn('16/b374d848'))).toBe('16/B374D848');
    expect(formatLsn(parseLsn('00000016/0000D848'))).toBe('16/D848');
  });

  it('round-trips every 64-bit position', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn }), (lsn) => {
        const text = formatLsn(lsn);
        expect(text).toMatch(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/);
        expect(parseLsn(text)).toBe(lsn);
      }),
    );
  });

  it.each(['', '16', '16/', '/B374D848', '16/B374D848/0', 'G/0', '123456789/0', ' 16/B374D848'])('rejects %j', (text) => {
    expect(() => parseLsn(text)).toThrow(/not a WAL position/);
  });
});
