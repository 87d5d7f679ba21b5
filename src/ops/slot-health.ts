import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { parseLsn, type Lsn } from '../lsn.js';

/** What PostgreSQL says of a slot's health, read in one statement. */
export interface SlotHealth {
  /** pg_current_wal_lsn(): where the server's WAL ends now. */
  walLsn: Lsn;
  exists: boolean;
  active: boolean;
  confirmedLsn: Lsn | undefined;
  /** WAL written since the slot's confirmed position. */
  lagBytes: bigint | undefined;
  /** WAL the server keeps for the slot (from its restart_lsn). */
  retainedBytes: bigint | undefined;
  /** reserved, extended, unreserved or lost. */
  walStatus: string | null;
  /** WAL that can still be written before the slot is in danger of being lost (max_slot_wal_keep_size); null when unlimited. */
  safeWalSizeBytes: bigint | undefined;
}

/** Reads the slot's row of pg_replication_slots with the server's WAL position; `exists` is false when there is no such slot. */
export async function readSlotHealth(db: Kysely<Database>, slotName: string): Promise<SlotHealth> {
  const result = await sql<{
    wal_lsn: string;
    exists: boolean;
    active: boolean | null;
    confirmed_flush_lsn: string | null;
    lag_bytes: string | null;
    retained_bytes: string | null;
    wal_status: string | null;
    safe_wal_size: string | null;
  }>`
    select pg_current_wal_lsn()::text as wal_lsn, s.slot_name is not null as exists, s.active,
           s.confirmed_flush_lsn::text, (pg_current_wal_lsn() - s.confirmed_flush_lsn)::text as lag_bytes,
           (pg_current_wal_lsn() - s.restart_lsn)::text as retained_bytes, s.wal_status, s.safe_wal_size::text
    from (select 1) as one left join pg_replication_slots s on s.slot_name = ${slotName}`.execute(db);
  const row = result.rows[0]!;
  return {
    walLsn: parseLsn(row.wal_lsn),
    exists: row.exists,
    active: row.active === true,
    confirmedLsn: row.confirmed_flush_lsn === null ? undefined : parseLsn(row.confirmed_flush_lsn),
    lagBytes: row.lag_bytes === null ? undefined : BigInt(row.lag_bytes),
    retainedBytes: row.retained_bytes === null ? undefined : BigInt(row.retained_bytes),
    walStatus: row.wal_status,
    safeWalSizeBytes: row.safe_wal_size === null ? undefined : BigInt(row.safe_wal_size),
  };
}
