import { DecodeError } from '../errors.js';
import type { Lsn } from './lsn.js';
import type { PgoutputMessage, TupleValue } from './pgoutput-decoder.js';

/** A jobs row as pgoutput sends it: every column as PostgreSQL's text output. */
export interface JobRow {
  jobId: string;
  daysOnline: string;
  budget: string;
  createdAt: string;
}

/** What happened to the jobs table, in commit order; the rest of the code speaks only these. */
export type JobChange =
  | { tag: 'upsert'; row: JobRow; previousJobId: string | undefined }
  | { tag: 'delete'; jobId: string }
  | { tag: 'truncate' }
  /** commitLsn: where the transaction's commit record starts; with the change's index it names a change. */
  | { tag: 'begin'; commitLsn: Lsn }
  | { tag: 'commit'; endLsn: Lsn }
  | { tag: 'message'; prefix: string; content: Buffer };

/**
 * Where the jobs columns of one Insert message lie in its buffer, as [start, end) byte ranges of their
 * text: filled by JobChangeDecoder#locateInsert, one object reused for every message.
 */
export interface JobColumnRanges {
  jobIdStart: number;
  jobIdEnd: number;
  daysOnlineStart: number;
  daysOnlineEnd: number;
  budgetStart: number;
  budgetEnd: number;
  createdAtStart: number;
  createdAtEnd: number;
}

/** A JobColumnRanges to fill. */
export function makeJobColumnRanges(): JobColumnRanges {
  return {
    jobIdStart: 0,
    jobIdEnd: 0,
    daysOnlineStart: 0,
    daysOnlineEnd: 0,
    budgetStart: 0,
    budgetEnd: 0,
    createdAtStart: 0,
    createdAtEnd: 0,
  };
}

const INSERT = 0x49; // I
const NEW_TUPLE = 0x4e; // N
const TEXT_VALUE = 0x74; // t
const NULL_VALUE = 0x6e; // n
const UNCHANGED_VALUE = 0x75; // u
/** Insert header: kind (1), relation id (4), 'N' (1), column count (2). */
const INSERT_HEADER_BYTES = 8;

interface ColumnPositions {
  jobId: number;
  daysOnline: number;
  budget: number;
  createdAt: number;
  /** The highest of the four positions. */
  last: number;
}

const TABLE_NAME = 'jobs';

/**
 * Turns pgoutput messages into JobChanges. Keeps the column positions of the jobs relation, which the
 * server describes (Relation message) before the first change of each session and after a schema change.
 */
export class JobChangeDecoder {
  private readonly jobRelations = new Map<number, ColumnPositions>();

  toJobChange(message: PgoutputMessage, lsn: Lsn): JobChange | undefined {
    switch (message.tag) {
      case 'insert': {
        const columns = this.columnsOf(message.relationId);
        return columns && { tag: 'upsert', row: this.row(columns, message.newTuple, undefined, lsn), previousJobId: undefined };
      }
      case 'update': {
        const columns = this.columnsOf(message.relationId);
        if (columns === undefined) return undefined;
        const previousJobId = message.oldTuple === undefined ? undefined : this.text(message.oldTuple, columns.jobId, 'job_id', lsn);
        return { tag: 'upsert', row: this.row(columns, message.newTuple, message.oldTuple, lsn), previousJobId };
      }
      case 'delete': {
        const columns = this.columnsOf(message.relationId);
        return columns && { tag: 'delete', jobId: this.text(message.oldTuple, columns.jobId, 'job_id', lsn) };
      }
      case 'truncate':
        return message.relationIds.some((id) => this.jobRelations.has(id)) ? { tag: 'truncate' } : undefined;
      case 'commit':
        return { tag: 'commit', endLsn: message.endLsn };
      case 'message':
        return { tag: 'message', prefix: message.prefix, content: message.content };
      case 'relation':
        // The server follows a table by id: after ALTER TABLE jobs RENAME it describes the same id under
        // the new name, and that table is no longer ours.
        if (message.name === TABLE_NAME) this.jobRelations.set(message.relationId, this.positions(message.columns, lsn));
        else this.jobRelations.delete(message.relationId);
        return undefined;
      case 'begin':
        return { tag: 'begin', commitLsn: message.finalLsn };
      case 'origin':
      case 'type':
        return undefined;
    }
  }

  /**
   * For an Insert into jobs whose four columns came as text, records in `ranges` where they lie in
   * `buffer` and returns true. Returns false for any other message, and for one that is not well formed:
   * decodePgoutput and toJobChange then handle it, or say what is wrong. This is the path of every row
   * of a bulk load, so it reads the message in place and allocates nothing.
   */
  locateInsert(buffer: Buffer, offset: number, ranges: JobColumnRanges): boolean {
    const end = buffer.length;
    if (end - offset < INSERT_HEADER_BYTES || buffer[offset] !== INSERT || buffer[offset + 5] !== NEW_TUPLE) return false;
    const columns = this.jobRelations.get(buffer.readUInt32BE(offset + 1));
    if (columns === undefined) return false;
    const count = buffer.readUInt16BE(offset + 6);
    if (count <= columns.last) return false;
    let at = offset + INSERT_HEADER_BYTES;
    for (let i = 0; i < count; i++) {
      if (at >= end) return false;
      const kind = buffer[at++];
      if (kind === NULL_VALUE || kind === UNCHANGED_VALUE) {
        if (i === columns.jobId || i === columns.daysOnline || i === columns.budget || i === columns.createdAt) return false;
        continue;
      }
      if (kind !== TEXT_VALUE || end - at < 4) return false;
      const length = buffer.readUInt32BE(at);
      at += 4;
      if (end - at < length) return false;
      if (i === columns.jobId) {
        ranges.jobIdStart = at;
        ranges.jobIdEnd = at + length;
      } else if (i === columns.daysOnline) {
        ranges.daysOnlineStart = at;
        ranges.daysOnlineEnd = at + length;
      } else if (i === columns.budget) {
        ranges.budgetStart = at;
        ranges.budgetEnd = at + length;
      } else if (i === columns.createdAt) {
        ranges.createdAtStart = at;
        ranges.createdAtEnd = at + length;
      }
      at += length;
    }
    return at === end;
  }

  private columnsOf(relationId: number): ColumnPositions | undefined {
    // The publication may hold other tables an operator added; only jobs matters here.
    return this.jobRelations.get(relationId);
  }

  private positions(columns: { name: string }[], lsn: Lsn): ColumnPositions {
    const find = (name: string): number => {
      const index = columns.findIndex((c) => c.name === name);
      if (index < 0) {
        throw new DecodeError(`the jobs table has no column ${name}: run "budget-cdc migrate" or restore the table's contract`, lsn);
      }
      return index;
    };
    const positions = { jobId: find('job_id'), daysOnline: find('days_online'), budget: find('budget'), createdAt: find('created_at') };
    return { ...positions, last: Math.max(positions.jobId, positions.daysOnline, positions.budget, positions.createdAt) };
  }

  private row(columns: ColumnPositions, tuple: TupleValue[], oldTuple: TupleValue[] | undefined, lsn: Lsn): JobRow {
    // An UPDATE that leaves a TOASTed value alone sends it as "unchanged"; with REPLICA IDENTITY FULL the
    // old tuple carries it in full.
    const value = (index: number, name: string): string => {
      const v = tuple[index];
      return v === undefined && oldTuple !== undefined ? this.text(oldTuple, index, name, lsn) : this.text(tuple, index, name, lsn);
    };
    return {
      jobId: value(columns.jobId, 'job_id'),
      daysOnline: value(columns.daysOnline, 'days_online'),
      budget: value(columns.budget, 'budget'),
      createdAt: value(columns.createdAt, 'created_at'),
    };
  }

  private text(tuple: TupleValue[], index: number, name: string, lsn: Lsn): string {
    const value = tuple[index];
    if (typeof value !== 'string') {
      throw new DecodeError(
        `jobs.${name} arrived ${value === null ? 'null' : 'unchanged (TOAST)'}; the table must have NOT NULL columns and REPLICA IDENTITY FULL: run "budget-cdc migrate"`,
        lsn,
      );
    }
    return value;
  }
}
