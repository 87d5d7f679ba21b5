import { hostname } from 'node:os';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { ReplicationConnection } from './replication-connection.js';

// One process at a time consumes a slot: the one holding a session-level advisory lock named after the
// slot, taken on its replication connection before it reads the slot or touches Redis. The slot alone is
// not enough: a process resyncs before START_REPLICATION makes the slot active, and two resyncs at once
// could write an older snapshot's row over a newer one. The lock goes with the connection, so a process
// that dies (kill -9, a lost network) releases it, and a standby takes over.

/** The lock's first key: budget-cdc's namespace among advisory locks. */
const LOCK_NAMESPACE = 'budget-cdc';

/** What a consumer's replication connection calls itself in pg_stat_activity: it names the process for the standbys' logs. */
export function consumerApplicationName(): string {
  // application_name keeps 63 bytes.
  return `budget-cdc ${hostname()} pid ${process.pid}`.slice(0, 63);
}

/** Takes the slot's lock on the replication connection; false when another process holds it. Names were validated by loadConfig. */
export async function tryLockSlot(connection: ReplicationConnection, slotName: string): Promise<boolean> {
  const rows = await connection.command<{ locked: boolean | string }>(
    `select pg_try_advisory_lock(hashtext('${LOCK_NAMESPACE}'), hashtext('${slotName}')) as locked`,
  );
  // The replication protocol's simple queries come back as text.
  const locked = rows[0]?.locked;
  return locked === true || locked === 't';
}

/** Who holds the slot's lock: "pid 4242 (budget-cdc host-a pid 17) from 10.0.0.7", or undefined when nobody does now. */
export async function describeSlotOwner(db: Kysely<Database>, slotName: string): Promise<string | undefined> {
  const result = await sql<{ pid: number }>`
    select pid from pg_locks
    where locktype = 'advisory' and granted and objsubid = 2
      and classid = (hashtext(${LOCK_NAMESPACE})::bigint & 4294967295)::oid
      and objid = (hashtext(${slotName})::bigint & 4294967295)::oid`.execute(db);
  const pid = result.rows[0]?.pid;
  return pid === undefined ? undefined : describeBackend(db, pid);
}

/** A server process as "pid 4242 (its application_name) from 10.0.0.7"; undefined when it is gone. */
export async function describeBackend(db: Kysely<Database>, pid: number): Promise<string | undefined> {
  const result = await sql<{ application_name: string | null; client_addr: string | null }>`
    select application_name, host(client_addr) as client_addr from pg_stat_activity where pid = ${pid}`.execute(db);
  const row = result.rows[0];
  if (row === undefined) return undefined;
  return `pid ${pid}${row.application_name ? ` (${row.application_name})` : ''}${row.client_addr ? ` from ${row.client_addr}` : ''}`;
}
