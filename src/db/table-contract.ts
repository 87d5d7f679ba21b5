import { sql, type Kysely } from 'kysely';
import { SetupError } from '../errors.js';
import type { Database } from './database.js';

// The live state of what budget-cdc needs from the jobs table, beyond its migration records: other teams
// may rename a column, change the replica identity or take the table out of the publication at any time.

/** The columns budget-cdc reads, by their name in the table. */
export const CONTRACT_COLUMNS = ['job_id', 'days_online', 'budget', 'created_at'] as const;

/**
 * REPLICA IDENTITY of a table: what the old row of an UPDATE or DELETE carries. 'full': every column (what
 * budget-cdc needs to remove a renamed or deleted job's key); 'default': the primary key (id); 'index': the
 * columns of an index; 'nothing': none.
 */
export type ReplicaIdentity = 'full' | 'default' | 'index' | 'nothing';

/** pg_class.relreplident, which the Relation message of pgoutput carries as the same letter. */
export const REPLICA_IDENTITY_LETTERS: Record<string, ReplicaIdentity> = { f: 'full', d: 'default', i: 'index', n: 'nothing' };

export const REPAIR_REPLICA_IDENTITY = 'ALTER TABLE jobs REPLICA IDENTITY FULL';

export interface TableContract {
  replicaIdentity: ReplicaIdentity;
  /** Contract columns the table lacks (renamed or dropped). */
  missingColumns: string[];
  /** Whether the publication exists and publishes jobs. */
  inPublication: boolean;
}

/** Reads the contract's live state; undefined when there is no jobs table. */
export async function readTableContract(db: Kysely<Database>, publicationName: string): Promise<TableContract | undefined> {
  const result = await sql<{ relreplident: string; columns: string[]; in_publication: boolean }>`
    select c.relreplident,
           array(select attname::text from pg_attribute
                 where attrelid = c.oid and attnum > 0 and not attisdropped) as columns,
           exists (select 1 from pg_publication_tables
                   where pubname = ${publicationName} and schemaname = n.nspname and tablename = c.relname) as in_publication
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.oid = to_regclass('jobs')`.execute(db);
  const row = result.rows[0];
  if (row === undefined) return undefined;
  return {
    replicaIdentity: REPLICA_IDENTITY_LETTERS[row.relreplident] ?? 'nothing',
    missingColumns: CONTRACT_COLUMNS.filter((name) => !row.columns.includes(name)),
    inPublication: row.in_publication,
  };
}

/** What is wrong with the contract, each with what to do; empty when it holds. */
export function contractProblems(contract: TableContract, publicationName: string): string[] {
  const problems: string[] = [];
  if (contract.missingColumns.length > 0) {
    problems.push(
      `the jobs table has no column ${contract.missingColumns.join(', ')} (renamed or dropped): its changes are set aside as dead letters; ` +
        'restore the column, then run "budget-cdc resync"',
    );
  }
  if (contract.replicaIdentity !== 'full') {
    problems.push(
      `jobs has REPLICA IDENTITY ${contract.replicaIdentity.toUpperCase()}, not FULL: a renamed or deleted job keeps its key in Redis; ` +
        `run "budget-cdc migrate" (or ${REPAIR_REPLICA_IDENTITY}), then "budget-cdc resync"`,
    );
  }
  if (!contract.inPublication) {
    problems.push(`publication ${publicationName} does not publish jobs: run "budget-cdc migrate", then "budget-cdc resync"`);
  }
  return problems;
}

/**
 * Puts back what `migrate` can: REPLICA IDENTITY FULL. Returns what it changed. A missing column it cannot
 * guess (renamed to what? dropped with its data?): throws a SetupError that says what to restore.
 */
export async function repairTableContract(db: Kysely<Database>, publicationName: string): Promise<string[]> {
  const contract = await readTableContract(db, publicationName);
  if (contract === undefined) throw new SetupError('the jobs table does not exist after the migrations: was it dropped meanwhile?');
  if (contract.missingColumns.length > 0) {
    throw new SetupError(
      `the jobs table has no column ${contract.missingColumns.join(', ')}: someone renamed or dropped it; ` +
        `restore it (ALTER TABLE jobs RENAME COLUMN <new name> TO ${contract.missingColumns[0]}), then run "budget-cdc resync"`,
    );
  }
  const repaired: string[] = [];
  if (contract.replicaIdentity !== 'full') {
    await sql.raw(REPAIR_REPLICA_IDENTITY).execute(db);
    repaired.push(`replica identity ${contract.replicaIdentity} -> full`);
  }
  return repaired;
}
