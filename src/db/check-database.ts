import { sql, type Kysely } from 'kysely';
import { connectionError, SetupError } from '../errors.js';
import type { Database } from './database.js';

/** Where a database URL points, without its password, for messages. */
export function describeDatabaseUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  return `${url.hostname || 'localhost'}:${url.port || '5432'}${url.pathname || '/'}`;
}

/** Connects once, turning a connection failure into a ConnectionError that says which setting to check. */
export async function checkConnection(db: Kysely<Database>, databaseUrl: string): Promise<void> {
  try {
    await sql`select 1`.execute(db);
  } catch (error) {
    throw connectionError('PostgreSQL', describeDatabaseUrl(databaseUrl), 'DATABASE_URL or --database-url', error);
  }
}

/** Checks what `run` needs before it touches the slot: logical WAL, the jobs table, the publication. */
export async function checkReplicationReady(db: Kysely<Database>, publicationName: string): Promise<void> {
  const result = await sql<{ wal_level: string; has_jobs: boolean; has_publication: boolean }>`
    select current_setting('wal_level') as wal_level,
           to_regclass('jobs') is not null as has_jobs,
           exists (select 1 from pg_publication where pubname = ${publicationName}) as has_publication`.execute(db);
  const row = result.rows[0]!;
  if (row.wal_level !== 'logical') {
    throw new SetupError(`PostgreSQL has wal_level=${row.wal_level}: set wal_level=logical in postgresql.conf and restart PostgreSQL`);
  }
  if (!row.has_jobs || !row.has_publication) {
    throw new SetupError(
      `the ${row.has_jobs ? `publication ${publicationName}` : 'jobs table'} does not exist: run "budget-cdc migrate" first`,
    );
  }
}
