import { withDatabase } from '../src/db/database.js';
import { migrate } from '../src/db/migrate.js';
import { createTestDatabase } from '../test/support/test-database.js';
import { PUBLICATION } from './bench-context.js';

/**
 * Runs `fn` on a new database of the bench server, with the jobs table and the publication when `migrated`,
 * and drops the database (and its slots) afterwards.
 */
export async function withFreshDatabase<T>(
  adminUrl: string,
  name: string,
  options: { migrated: boolean },
  fn: (databaseUrl: string) => Promise<T>,
): Promise<T> {
  const database = await createTestDatabase(adminUrl, name);
  try {
    if (options.migrated) await withDatabase(database.url, (db) => migrate(db, PUBLICATION));
    return await fn(database.url);
  } finally {
    await database.drop();
  }
}
