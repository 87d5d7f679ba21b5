import { sql, type Kysely } from 'kysely';
import type { Database } from './database.js';

export type PublicationChange = 'created' | 'jobs-added' | 'unchanged';

/**
 * Creates the publication on jobs (insert, update, delete, truncate) when missing, and adds jobs to it
 * when it exists without it (someone removed it). Returns what it did.
 * The name was validated by loadConfig; sql.id quotes it anyway.
 */
export async function ensurePublication(db: Kysely<Database>, publicationName: string): Promise<PublicationChange> {
  const existing = await sql<{ has_jobs: boolean }>`
    select exists (
      select 1 from pg_publication_tables
      where pubname = ${publicationName} and schemaname = current_schema() and tablename = 'jobs'
    ) as has_jobs
    from pg_publication where pubname = ${publicationName}`.execute(db);
  const row = existing.rows[0];
  if (row === undefined) {
    await sql`create publication ${sql.id(publicationName)} for table jobs
              with (publish = 'insert, update, delete, truncate')`.execute(db);
    return 'created';
  }
  if (!row.has_jobs) {
    await sql`alter publication ${sql.id(publicationName)} add table jobs`.execute(db);
    return 'jobs-added';
  }
  return 'unchanged';
}
