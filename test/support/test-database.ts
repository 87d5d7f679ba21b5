import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { waitFor } from './wait-for.js';

const SECOND = 1000;
const SLOT_DROP_TIMEOUT_MS = 30 * SECOND;
// PostgreSQL truncates identifiers at 63 bytes; the rest is left for "_" and the random suffix.
const NAME_PREFIX_MAX_LENGTH = 50;

/** A database of its own for one test file, on the shared server. */
export interface TestDatabase {
  url: string;
  /** Drops the database's replication slots, then the database, even with sessions still connected. */
  drop(): Promise<void>;
}

/** Creates a fresh, empty database whose name starts with `name` (reduced to [a-z0-9_]) plus a random suffix. */
export async function createTestDatabase(adminUrl: string, name: string): Promise<TestDatabase> {
  const prefix =
    name
      .toLowerCase()
      .replace(/[^a-z0-9_]+/g, '_')
      .slice(0, NAME_PREFIX_MAX_LENGTH) || 'test';
  const databaseName = `${prefix}_${randomBytes(4).toString('hex')}`;
  // Safe to quote as is: the name holds only [a-z0-9_].
  await withAdminClient(adminUrl, (client) => client.query(`create database "${databaseName}"`));
  const url = new URL(adminUrl);
  url.pathname = `/${databaseName}`;
  return {
    url: url.toString(),
    drop: () =>
      withAdminClient(adminUrl, async (client) => {
        // A database with replication slots cannot be dropped, and an active slot cannot be dropped either.
        await waitFor(() => dropReplicationSlots(client, databaseName), {
          timeoutMs: SLOT_DROP_TIMEOUT_MS,
          message: `the replication slots of database ${databaseName} to be dropped`,
        });
        await client.query(`drop database if exists "${databaseName}" with (force)`);
      }),
  };
}

/** One attempt: ends the walsenders holding slots of the database and drops the free slots; true when none is left. */
async function dropReplicationSlots(client: pg.Client, databaseName: string): Promise<boolean> {
  const { rows } = await client.query<{ slot_name: string; active_pid: number | null }>(
    'select slot_name, active_pid from pg_replication_slots where database = $1',
    [databaseName],
  );
  if (rows.length === 0) return true;
  for (const slot of rows) {
    if (slot.active_pid !== null) {
      await client.query('select pg_terminate_backend($1)', [slot.active_pid]);
      continue;
    }
    try {
      await client.query('select pg_drop_replication_slot($1)', [slot.slot_name]);
    } catch (error) {
      // Someone else dropped it or took it meanwhile; the next attempt sees the new state.
      if (!isOneOf(error, [UNDEFINED_OBJECT, OBJECT_IN_USE])) throw error;
    }
  }
  return false;
}

const UNDEFINED_OBJECT = '42704';
const OBJECT_IN_USE = '55006';

function isOneOf(error: unknown, codes: string[]): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && codes.includes(code);
}

async function withAdminClient<T>(adminUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, application_name: 'budget-cdc-test-database' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
