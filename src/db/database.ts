import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';

/** The tables budget-cdc reads, as kysely sees them. */
export interface Database {
  jobs: {
    id: string;
    job_id: string;
    days_online: number;
    budget: string;
    created_at: Date;
  };
}

/** A kysely instance over a small pool (makePool); close it with `destroy()`. */
export function makeDatabase(databaseUrl: string, applicationName = 'budget-cdc'): Kysely<Database> {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: makePool(databaseUrl, applicationName) }) });
}

/**
 * The pool under makeDatabase. A client whose server went away (a restart, a network drop) emits 'error';
 * unhandled, that would end the process. pg-pool handles it only for idle clients, so every client gets a
 * listener of its own for the moments it is checked out between queries: then the query that uses it next
 * fails instead, and the pool drops the broken client when it comes back.
 */
export function makePool(databaseUrl: string, applicationName: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2, application_name: applicationName });
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** Runs `fn` with a kysely instance that is destroyed afterwards, whatever happens. */
export async function withDatabase<T>(databaseUrl: string, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  const db = makeDatabase(databaseUrl);
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}
