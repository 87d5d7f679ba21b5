import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { ensurePublication, type PublicationChange } from './publication.js';
import type { Database } from './database.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../db/migrations/', import.meta.url));
const MIGRATION_FILE = /^\d{4}_[a-z0-9_]+\.sql$/;

/** Numbered, forward-only SQL files of db/migrations, applied in name order. */
class SqlFileMigrationProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => MIGRATION_FILE.test(f)).sort();
    const migrations: Record<string, Migration> = {};
    for (const file of files) {
      const text = await readFile(MIGRATIONS_DIR + file, 'utf8');
      migrations[file.replace(/\.sql$/, '')] = { up: async (db) => void (await sql.raw(text).execute(db)) };
    }
    return migrations;
  }
}

export interface MigrateResult {
  applied: string[];
  publication: PublicationChange;
}

/**
 * Brings the schema up to date and makes sure the publication exists. Safe to run twice and concurrently:
 * kysely's migrator takes an advisory lock and records applied files in budget_cdc_migration.
 */
export async function migrate(db: Kysely<Database>, publicationName: string): Promise<MigrateResult> {
  const migrator = new Migrator({
    db,
    provider: new SqlFileMigrationProvider(),
    migrationTableName: 'budget_cdc_migration',
    migrationLockTableName: 'budget_cdc_migration_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed: ${errorMessage(error)}`, { cause: error });
  }
  const applied = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  const publication = await ensurePublication(db, publicationName);
  return { applied, publication };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
