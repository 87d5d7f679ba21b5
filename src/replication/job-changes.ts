import { formatLsn, type Lsn } from '../lsn.js';
import { CONTRACT_COLUMNS, type ReplicaIdentity } from '../db/table-contract.js';
import type { PgoutputMessage, RelationColumn, TupleValue } from './pgoutput-decoder.js';

/** A jobs row as pgoutput sends it: every column as PostgreSQL's text output. */
export interface JobRow {
  jobId: string;
  daysOnline: string;
  budget: string;
  createdAt: string;
}

/** What happened to the jobs table, in commit order; the rest of the code speaks only these. */
export type JobChange =
  /** previousJobIdMissing: why the old job_id of an UPDATE is unknown (REPLICA IDENTITY not FULL): a rename leaves the old key. */
  | { tag: 'upsert'; row: JobRow; previousJobId: string | undefined; previousJobIdMissing?: string }
  | { tag: 'delete'; jobId: string }
  | { tag: 'truncate' }
  /**
   * A row change the contract cannot describe (a contract column renamed or dropped, a DELETE without the
   * old job_id): set aside with `reason`; `jobId` when it is known.
   */
  | { tag: 'unreadable'; jobId: string | undefined; reason: string }
  /**
   * The server described the jobs table (before its first change of a session, and after ALTER TABLE):
   * `missingColumns` lists the contract columns it lacks; while any is missing its rows are unreadable.
   */
  | { tag: 'table'; replicaIdentity: ReplicaIdentity; missingColumns: string[] }
  /** commitLsn: where the transaction's commit record starts; with the change's index it names a change. */
  | { tag: 'begin'; commitLsn: Lsn; commitTimeMs: number }
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

/** The jobs relation as the server last described it. */
interface JobsRelation {
  replicaIdentity: ReplicaIdentity;
  columns: RelationColumn[];
  /** Where the contract columns are; undefined while one is missing. */
  positions: ColumnPositions | undefined;
  /** Why its rows cannot be read, while a contract column is missing. */
  problem: string | undefined;
}

/** A row the contract cannot describe; caught in toJobChange and turned into an 'unreadable' change. */
class UnreadableRow extends Error {
  constructor(
    readonly reason: string,
    readonly jobId: string | undefined,
  ) {
    super(reason);
  }
}

/**
 * Turns pgoutput messages into JobChanges. Keeps the description of the jobs relation, which the server
 * sends (Relation message) before the first change of each session and after a schema change.
 */
export class JobChangeDecoder {
  private readonly jobRelations = new Map<number, JobsRelation>();
  /** Positions of the relations whose contract columns are all there: the bulk-load path reads only these. */
  private readonly readableRelations = new Map<number, ColumnPositions>();

  toJobChange(message: PgoutputMessage, lsn: Lsn): JobChange | undefined {
    try {
      return this.decode(message, lsn);
    } catch (error) {
      if (!(error instanceof UnreadableRow)) throw error;
      return { tag: 'unreadable', jobId: error.jobId, reason: error.reason };
    }
  }

  private decode(message: PgoutputMessage, lsn: Lsn): JobChange | undefined {
    switch (message.tag) {
      case 'insert': {
        const relation = this.jobRelations.get(message.relationId);
        if (relation === undefined) return undefined;
        const columns = this.readable(relation, message.newTuple);
        return { tag: 'upsert', row: this.row(relation, columns, message.newTuple, undefined), previousJobId: undefined };
      }
      case 'update': {
        const relation = this.jobRelations.get(message.relationId);
        if (relation === undefined) return undefined;
        const columns = this.readable(relation, message.newTuple);
        const row = this.row(relation, columns, message.newTuple, message.oldTuple);
        const oldJobId = message.oldTuple?.[columns.jobId];
        if (typeof oldJobId === 'string') return { tag: 'upsert', row, previousJobId: oldJobId };
        // Without REPLICA IDENTITY FULL the server logs the old job_id only when the primary key changed.
        return { tag: 'upsert', row, previousJobId: undefined, previousJobIdMissing: missingOldJobId(relation, 'UPDATE') };
      }
      case 'delete': {
        const relation = this.jobRelations.get(message.relationId);
        if (relation === undefined) return undefined;
        const columns = this.readable(relation, message.oldTuple);
        const jobId = message.oldTuple[columns.jobId];
        if (typeof jobId !== 'string') throw new UnreadableRow(missingOldJobId(relation, 'DELETE', message.oldTuple), undefined);
        return { tag: 'delete', jobId };
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
        if (message.name !== TABLE_NAME) {
          this.jobRelations.delete(message.relationId);
          this.readableRelations.delete(message.relationId);
          return undefined;
        }
        return this.describe(message.relationId, message.replicaIdentity, message.columns, lsn);
      case 'begin':
        return { tag: 'begin', commitLsn: message.finalLsn, commitTimeMs: message.commitTimeMs };
      case 'origin':
      case 'type':
        return undefined;
    }
  }

  private describe(relationId: number, replicaIdentity: ReplicaIdentity, columns: RelationColumn[], lsn: Lsn): JobChange {
    const index = (name: string): number => columns.findIndex((c) => c.name === name);
    const missingColumns = CONTRACT_COLUMNS.filter((name) => index(name) < 0);
    let positions: ColumnPositions | undefined;
    let problem: string | undefined;
    if (missingColumns.length === 0) {
      const found = { jobId: index('job_id'), daysOnline: index('days_online'), budget: index('budget'), createdAt: index('created_at') };
      positions = { ...found, last: Math.max(found.jobId, found.daysOnline, found.budget, found.createdAt) };
      this.readableRelations.set(relationId, positions);
    } else {
      this.readableRelations.delete(relationId);
      problem =
        `the jobs table had no column ${missingColumns.join(', ')} when this row was written (as of WAL position ${formatLsn(lsn)}), ` +
        'renamed or dropped: restore the column, then run "budget-cdc resync" to load what was set aside';
    }
    this.jobRelations.set(relationId, { replicaIdentity, columns, positions, problem });
    return { tag: 'table', replicaIdentity, missingColumns };
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
    const columns = this.readableRelations.get(buffer.readUInt32BE(offset + 1));
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

  /** The contract columns' positions, or throws UnreadableRow while the table lacks one. */
  private readable(relation: JobsRelation, tuple: TupleValue[]): ColumnPositions {
    if (relation.positions !== undefined) return relation.positions;
    const jobIdAt = relation.columns.findIndex((c) => c.name === 'job_id');
    const jobId = jobIdAt < 0 ? undefined : tuple[jobIdAt];
    throw new UnreadableRow(relation.problem!, typeof jobId === 'string' ? jobId : undefined);
  }

  private row(relation: JobsRelation, columns: ColumnPositions, tuple: TupleValue[], oldTuple: TupleValue[] | undefined): JobRow {
    const jobId = tuple[columns.jobId] ?? oldTuple?.[columns.jobId];
    // An UPDATE that leaves a TOASTed value alone sends it as "unchanged"; with REPLICA IDENTITY FULL the
    // old tuple carries it in full.
    const value = (index: number, name: string): string => {
      const v = tuple[index] === undefined && oldTuple !== undefined ? oldTuple[index] : tuple[index];
      if (typeof v === 'string') return v;
      throw new UnreadableRow(
        v === null
          ? `jobs.${name} arrived null: the column must be NOT NULL (run "budget-cdc migrate" to see what differs)`
          : `jobs.${name} arrived unchanged (TOASTed) without the old row: ${identityAdvice(relation)}`,
        typeof jobId === 'string' ? jobId : undefined,
      );
    };
    return {
      jobId: value(columns.jobId, 'job_id'),
      daysOnline: value(columns.daysOnline, 'days_online'),
      budget: value(columns.budget, 'budget'),
      createdAt: value(columns.createdAt, 'created_at'),
    };
  }
}

/** Why an UPDATE or DELETE came without the old job_id, naming the row by the identity it came with. */
function missingOldJobId(relation: JobsRelation, command: 'UPDATE' | 'DELETE', oldTuple?: TupleValue[]): string {
  const identity = (oldTuple ?? [])
    .map((value, i) => (typeof value === 'string' ? `${relation.columns[i]?.name ?? `column ${i + 1}`}=${value}` : undefined))
    .filter((part) => part !== undefined);
  const row = identity.length === 0 ? '' : ` (the row with ${identity.join(', ')})`;
  const effect = command === 'DELETE' ? "the job's key stays in Redis" : 'if job_id changed, the old key stays in Redis';
  return `${command} arrived without the old job_id${row}: ${effect}; ${identityAdvice(relation)}`;
}

function identityAdvice(relation: JobsRelation): string {
  return (
    `jobs has REPLICA IDENTITY ${relation.replicaIdentity.toUpperCase()}, not FULL: run "budget-cdc migrate" ` +
    '(or ALTER TABLE jobs REPLICA IDENTITY FULL), then "budget-cdc resync" to remove stale keys'
  );
}
