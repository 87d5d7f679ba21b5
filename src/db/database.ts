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

/** A kysely instance over a small pool; close it with `destroy()`. */
export function makeDatabase(databaseUrl: string, applicationName = 'budget-cdc'): Kysely<Database> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2, application_name: applicationName });
  // An idle client whose server went away (restart, network drop) emits 'error' on the pool; unhandled, that
  // would end the process. The pool drops such a client itself, and the next query connects again.
  pool.on('error', () => undefined);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
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
