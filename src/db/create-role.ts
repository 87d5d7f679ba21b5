import { sql, type Kysely } from 'kysely';
import type { Database } from './database.js';

/** The tables the consumer reads: jobs, and the migrator's records (`run` checks that the schema is up to date). */
const CONSUMER_TABLES = ['jobs', 'budget_cdc_migration', 'budget_cdc_migration_lock'];

export interface CreateRoleResult {
  created: boolean;
  passwordSet: boolean;
}

/**
 * Creates (or brings up to date) the role the consumer runs as, with no more than it needs: LOGIN and
 * REPLICATION (to create, read and drop its slot), USAGE on the schema, and SELECT on the jobs table and the
 * migrator's tables. No superuser, no write access. Run it as the owner of the tables, after the migrations.
 * The name was validated by the caller; the password is sent as an escaped literal, since ALTER ROLE takes no
 * parameters.
 */
export async function createConsumerRole(db: Kysely<Database>, roleName: string, password: string | undefined): Promise<CreateRoleResult> {
  return db.transaction().execute(async (trx) => {
    const existing = await sql<{ exists: boolean }>`select exists (select 1 from pg_roles where rolname = ${roleName}) as exists`.execute(
      trx,
    );
    const created = existing.rows[0]?.exists !== true;
    if (created) await sql`create role ${sql.id(roleName)}`.execute(trx);
    await sql`alter role ${sql.id(roleName)} with login replication nosuperuser nocreatedb nocreaterole`.execute(trx);
    if (password !== undefined) await sql`alter role ${sql.id(roleName)} with password ${sql.lit(password)}`.execute(trx);
    await sql`grant usage on schema ${sql.id(await currentSchema(trx))} to ${sql.id(roleName)}`.execute(trx);
    for (const table of CONSUMER_TABLES) await sql`grant select on table ${sql.id(table)} to ${sql.id(roleName)}`.execute(trx);
    return { created, passwordSet: password !== undefined };
  });
}

async function currentSchema(db: Kysely<Database>): Promise<string> {
  const result = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  return result.rows[0]!.schema;
}
