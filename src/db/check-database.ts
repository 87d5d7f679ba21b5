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

/**
 * What streaming needs of the server and the role, checked by `run` before it changes anything (migrations, the
 * publication): logical WAL, a free replication slot (or the slot already there), a free WAL sender, and the
 * REPLICATION attribute. Each problem names the setting to change; all are reported at once.
 */
export async function checkStreamingPrerequisites(db: Kysely<Database>, slotName: string): Promise<void> {
  const result = await sql<{
    wal_level: string;
    max_replication_slots: number;
    slots_used: number;
    has_slot: boolean;
    max_wal_senders: number;
    senders_used: number;
    can_replicate: boolean;
    role: string;
  }>`
    select current_setting('wal_level') as wal_level,
           current_setting('max_replication_slots')::int as max_replication_slots,
           (select count(*)::int from pg_replication_slots) as slots_used,
           exists (select 1 from pg_replication_slots where slot_name = ${slotName}) as has_slot,
           current_setting('max_wal_senders')::int as max_wal_senders,
           (select count(*)::int from pg_stat_activity where backend_type = 'walsender') as senders_used,
           coalesce((select rolreplication or rolsuper from pg_roles where rolname = current_user), false) as can_replicate,
           current_user as role`.execute(db);
  const row = result.rows[0]!;
  const problems: string[] = [];
  if (row.wal_level !== 'logical') {
    problems.push(`PostgreSQL has wal_level=${row.wal_level}: set wal_level=logical in postgresql.conf and restart PostgreSQL`);
  }
  if (!row.has_slot && row.slots_used >= row.max_replication_slots) {
    problems.push(
      `all ${row.max_replication_slots} replication slots are taken (max_replication_slots): raise it and restart PostgreSQL, ` +
        'or drop a slot nobody uses (see "Dropping the slot safely" in docs/operations.md)',
    );
  }
  if (row.senders_used >= row.max_wal_senders) {
    problems.push(`all ${row.max_wal_senders} WAL senders are busy (max_wal_senders): raise it and restart PostgreSQL`);
  }
  if (!row.can_replicate) {
    problems.push(
      `role ${row.role} may not stream changes: ALTER ROLE ${row.role} REPLICATION, or use the role "budget-cdc migrate --create-role" makes`,
    );
  }
  if (problems.length > 0) throw new SetupError(`cannot stream from PostgreSQL, nothing was changed: ${problems.join('; ')}`);
}
