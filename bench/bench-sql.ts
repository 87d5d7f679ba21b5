import pg from 'pg';

// The bench's own SQL statements, one function each.

/** Runs `fn` with a connected client that is closed afterwards. */
export async function withPgClient<T>(databaseUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'budget-cdc-bench' });
  // A server going away must end the bench with the query's error, not crash it from an 'error' event.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The end of the WAL written so far: after a commit, at or past that commit's end. */
export async function currentWalInsertLsn(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn');
  return rows[0]!.lsn;
}

export async function countJobs(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ count: string }>('select count(*)::text as count from jobs');
  return Number(rows[0]!.count);
}

export async function createPgoutputSlot(client: pg.Client, slotName: string): Promise<void> {
  await client.query(`select pg_create_logical_replication_slot($1, 'pgoutput')`, [slotName]);
}

/** The slot's state: whether it exists, whether a walsender holds it, and whether it confirmed `endLsn`. */
export async function readSlotProgress(
  client: pg.Client,
  slotName: string,
  endLsn = '0/0',
): Promise<{ exists: boolean; active: boolean; confirmedEnd: boolean }> {
  const { rows } = await client.query<{ active: boolean; confirmed_end: boolean | null }>(
    'select active, confirmed_flush_lsn >= $2::pg_lsn as confirmed_end from pg_replication_slots where slot_name = $1',
    [slotName, endLsn],
  );
  const row = rows[0];
  return { exists: row !== undefined, active: row?.active ?? false, confirmedEnd: row?.confirmed_end ?? false };
}

/**
 * Bytes of WAL the walsender of `slotName` has not sent yet (pg_current_wal_lsn() - sent_lsn of pg_stat_replication):
 * what it still has to decode before the consumer can see the server's last commit.
 */
export async function walNotSentBytes(client: pg.Client, slotName: string): Promise<number> {
  const { rows } = await client.query<{ behind: string | null }>(
    'select pg_wal_lsn_diff(pg_current_wal_lsn(), r.sent_lsn)::bigint as behind ' +
      'from pg_replication_slots s join pg_stat_replication r on r.pid = s.active_pid where s.slot_name = $1',
    [slotName],
  );
  const behind = rows[0]?.behind;
  if (behind === undefined || behind === null) throw new Error(`no walsender streams slot ${slotName}`);
  return Number(behind);
}

export async function serverVersion(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ server_version: string }>('show server_version');
  return rows[0]!.server_version;
}

/** What a walsender was doing when pg_stat_activity was read: its wait_event, in words. */
export const WALSENDER_ACTIVITIES = ['onCpu', 'waitingForWal', 'waitingForConsumer', 'otherWait'] as const;
export type WalsenderActivity = (typeof WALSENDER_ACTIVITIES)[number];

/**
 * What the walsender of `slotName` is doing: on CPU or queued for one (no wait event), waiting for WAL to be flushed,
 * waiting for the consumer to read (its socket is full), or another wait (reading WAL or its spill files).
 */
export async function walsenderActivity(client: pg.Client, slotName: string): Promise<WalsenderActivity> {
  const { rows } = await client.query<{ wait_event: string | null }>(
    'select a.wait_event from pg_replication_slots s join pg_stat_activity a on a.pid = s.active_pid where s.slot_name = $1',
    [slotName],
  );
  if (rows.length === 0) throw new Error(`no walsender streams slot ${slotName}`);
  switch (rows[0]!.wait_event) {
    case null:
      return 'onCpu';
    case 'WalSenderWaitForWAL':
    case 'WalSenderMain':
      return 'waitingForWal';
    case 'WalSenderWriteData':
      return 'waitingForConsumer';
    default:
      return 'otherWait';
  }
}

/** The server's WAL flushed so far: every commit that has returned is before it. */
export async function currentWalFlushLsn(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ lsn: string }>('select pg_current_wal_flush_lsn() as lsn');
  return rows[0]!.lsn;
}

/** Whether the walsender of `slotName` has sent everything before `lsn` (its sent_lsn in pg_stat_replication). */
export async function walSentUpTo(client: pg.Client, slotName: string, lsn: string): Promise<boolean> {
  const { rows } = await client.query<{ sent: boolean | null }>(
    'select r.sent_lsn >= $2::pg_lsn as sent ' +
      'from pg_replication_slots s join pg_stat_replication r on r.pid = s.active_pid where s.slot_name = $1',
    [slotName, lsn],
  );
  const sent = rows[0]?.sent;
  if (sent === undefined || sent === null) throw new Error(`no walsender streams slot ${slotName}`);
  return sent;
}
