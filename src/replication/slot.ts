import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { parseLsn, type Lsn } from '../lsn.js';
import type { ReplicationConnection } from './replication-connection.js';

/** What PostgreSQL says of our slot (pg_replication_slots), with the WAL it holds back. */
export interface SlotState {
  slotName: string;
  plugin: string;
  database: string;
  active: boolean;
  activePid: number | null;
  confirmedFlushLsn: Lsn | undefined;
  restartLsn: Lsn | undefined;
  /** pg_current_wal_lsn() - confirmed_flush_lsn: WAL written since the last acknowledged change. */
  lagBytes: bigint | undefined;
  /** pg_current_wal_lsn() - restart_lsn: WAL the server keeps for this slot. */
  retainedBytes: bigint | undefined;
  /** reserved, extended, unreserved or lost (max_slot_wal_keep_size). */
  walStatus: string | null;
}

/** Reads the slot's row of pg_replication_slots; undefined when there is no such slot. */
export async function readSlot(db: Kysely<Database>, slotName: string): Promise<SlotState | undefined> {
  const result = await sql<{
    plugin: string;
    database: string;
    active: boolean;
    active_pid: number | null;
    confirmed_flush_lsn: string | null;
    restart_lsn: string | null;
    lag_bytes: string | null;
    retained_bytes: string | null;
    wal_status: string | null;
  }>`
    select plugin, database, active, active_pid, confirmed_flush_lsn::text, restart_lsn::text,
           (pg_current_wal_lsn() - confirmed_flush_lsn)::text as lag_bytes,
           (pg_current_wal_lsn() - restart_lsn)::text as retained_bytes, wal_status
    from pg_replication_slots where slot_name = ${slotName}`.execute(db);
  const row = result.rows[0];
  if (row === undefined) return undefined;
  return {
    slotName,
    plugin: row.plugin,
    database: row.database,
    active: row.active,
    activePid: row.active_pid,
    confirmedFlushLsn: row.confirmed_flush_lsn === null ? undefined : parseLsn(row.confirmed_flush_lsn),
    restartLsn: row.restart_lsn === null ? undefined : parseLsn(row.restart_lsn),
    lagBytes: row.lag_bytes === null ? undefined : BigInt(row.lag_bytes),
    retainedBytes: row.retained_bytes === null ? undefined : BigInt(row.retained_bytes),
    walStatus: row.wal_status,
  };
}

export interface CreatedSlot {
  /** The slot decodes transactions whose commit record starts at or after this position. */
  consistentPoint: Lsn;
  /**
   * A snapshot that sees exactly the transactions committed before consistentPoint. Usable by
   * `SET TRANSACTION SNAPSHOT` until the next command on the replication connection that created it.
   */
  snapshotName: string;
}

/**
 * Creates a logical slot (pgoutput) on the replication connection, exporting its snapshot so the table
 * can be read exactly as of the slot's start. A temporary slot disappears with its connection.
 * Waits for transactions running at that moment to finish. Names were validated by loadConfig.
 */
export async function createSlot(connection: ReplicationConnection, slotName: string, temporary = false): Promise<CreatedSlot> {
  const rows = await connection.command<{ consistent_point: string; snapshot_name: string | null }>(
    `CREATE_REPLICATION_SLOT ${slotName}${temporary ? ' TEMPORARY' : ''} LOGICAL pgoutput (SNAPSHOT 'export')`,
  );
  const row = rows[0];
  if (row === undefined || row.snapshot_name === null) {
    throw new Error(`CREATE_REPLICATION_SLOT ${slotName} returned no consistent point and snapshot`);
  }
  return { consistentPoint: parseLsn(row.consistent_point), snapshotName: row.snapshot_name };
}

/** Drops a slot that is not active (e.g. one whose WAL is lost). */
export async function dropSlot(db: Kysely<Database>, slotName: string): Promise<void> {
  await sql`select pg_drop_replication_slot(${slotName})`.execute(db);
}
