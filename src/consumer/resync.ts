import pg from 'pg';
import { parseJob } from '../replication/job-row.js';
import { RowError } from '../errors.js';
import type { JobRow } from '../replication/job-changes.js';
import { formatLsn, type Lsn } from '../lsn.js';
import type { Sink } from '../sink/sink.js';
import type { BudgetStrategy } from '../budget/budget-strategy.js';
import { DeferredWrites } from './deferred-writes.js';

/** Rows read from the table per round trip: bounds memory whatever the table's size. */
const RESYNC_FETCH_ROWS = 5_000;
const SNAPSHOT_NAME = /^[0-9A-Fa-f-]+$/;

export interface ResyncProgress {
  /** Alive rows in the snapshot, known once counted. */
  totalRows: number;
  rowsDone: number;
}

export interface ResyncResult {
  rowsWritten: number;
  deadLetters: number;
  staleKeysDeleted: number;
}

/**
 * Rebuilds the job keys from the table as of an exported snapshot (see createSlot): deletes keys under the
 * prefix whose job is gone or offline, then writes every row still alive. Only alive rows are read: the
 * backfill is bounded by the TTL. The caller then sets the checkpoint to the snapshot's position, so the
 * stream skips every transaction the snapshot already holds.
 */
export async function resyncFromSnapshot(options: {
  databaseUrl: string;
  snapshotName: string;
  snapshotLsn: Lsn;
  sink: Sink;
  /** The budget rule, the stream's: a distribution service is asked for each fetched page's jobs. */
  strategy: BudgetStrategy;
  /** Aborts the requests to a distribution service (the session ended). */
  signal: AbortSignal;
  onProgress?: (progress: ResyncProgress) => void | Promise<void>;
}): Promise<ResyncResult> {
  const { sink, snapshotName, strategy } = options;
  if (!SNAPSHOT_NAME.test(snapshotName)) throw new Error(`unexpected snapshot name "${snapshotName}"`);
  const client = new pg.Client({
    connectionString: options.databaseUrl,
    application_name: 'budget-cdc resync',
    // The same text forms the replication stream uses, so rows parse the same way.
    options: '-c DateStyle=ISO -c TimeZone=UTC',
  });
  client.on('error', () => undefined); // a lost connection surfaces as the failed query
  await client.connect();
  try {
    await client.query('begin isolation level repeatable read read only');
    await client.query(`set transaction snapshot '${snapshotName}'`);
    // Stale keys first: every key written below is alive in the snapshot, so only keys that were there
    // before need checking, and on a first start or after Redis lost its state there are none.
    const staleKeysDeleted = await deleteStaleKeys(client, sink);
    // The dead letters are the table's unprocessable rows as of this snapshot, set aside again below: kept, they
    // would be listed once more at every rebuild.
    await sink.resetDeadLetters();
    const alive = `from jobs where created_at + days_online * interval '1 day' > clock_timestamp()`;
    const count = await client.query<{ n: string }>(`select count(*)::text as n ${alive}`);
    const progress: ResyncProgress = { totalRows: Number(count.rows[0]!.n), rowsDone: 0 };
    await options.onProgress?.(progress);
    await client.query(`declare alive_jobs no scroll cursor for select job_id, days_online::text, budget::text, created_at::text ${alive}`);
    let rowsWritten = 0;
    let deadLetters = 0;
    const now = Date.now();
    const keyPrefix = Buffer.from(sink.keyPrefix);
    // One batch is written while the next is read: the table and Redis work at the same time.
    let writing: Promise<void> | undefined;
    for (;;) {
      const { rows } = await client.query<{ job_id: string; days_online: string; budget: string; created_at: string }>(
        `fetch ${RESYNC_FETCH_ROWS} from alive_jobs`,
      );
      if (rows.length === 0) break;
      const batch = sink.newBatch();
      // With a distribution service the page's jobs wait for its answers (in order, as on the stream).
      const writes = strategy.builtIn ? batch : new DeferredWrites();
      for (const row of rows) {
        const jobRow: JobRow = { jobId: row.job_id, daysOnline: row.days_online, budget: row.budget, createdAt: row.created_at };
        try {
          const job = parseJob(jobRow);
          if (job.expiresAtMs <= now) continue;
          if (writes instanceof DeferredWrites) writes.setJobLater(keyPrefix, job, options.snapshotLsn);
          else writes.setJobOf(keyPrefix, job);
          rowsWritten++;
        } catch (error) {
          if (!(error instanceof RowError)) throw error;
          deadLetters++;
          const entry = { job_id: row.job_id, lsn: formatLsn(options.snapshotLsn), reason: error.message, at: new Date().toISOString() };
          writes.deadLetter(JSON.stringify(entry));
        }
      }
      if (writes instanceof DeferredWrites) {
        await writes.encodeInto(batch, keyPrefix, strategy, options.signal, () => {
          rowsWritten--;
          deadLetters++;
        });
      }
      await writing;
      writing = sink.writeWithoutCheckpoint(batch).then(async () => {
        progress.rowsDone += rows.length;
        await options.onProgress?.(progress);
      });
      // Observed here so that a failure while the next rows are read is not an unhandled rejection;
      // the next `await writing` still throws it.
      writing.catch(() => undefined);
    }
    await writing;
    await client.query('close alive_jobs');
    await client.query('commit');
    return { rowsWritten, deadLetters, staleKeysDeleted };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Deletes keys under the prefix whose job is not alive in the snapshot; memory stays bounded (one SCAN page
 * checked while the next is read).
 */
async function deleteStaleKeys(client: pg.Client, sink: Sink): Promise<number> {
  let deleted = 0;
  const pages = sink.scanKeysUnderPrefix();
  let nextPage = pages.next();
  for (;;) {
    const page = await nextPage;
    if (page.done === true) break;
    nextPage = pages.next();
    // Observed at once so that a SCAN failing while this page is checked is not an unhandled rejection;
    // the next `await nextPage` still throws it.
    nextPage.catch(() => undefined);
    const keys = page.value;
    const jobIds = keys.map((key) => key.slice(sink.keyPrefix.length));
    const { rows } = await client.query<{ job_id: string }>(
      `select job_id from jobs where job_id = any($1) and created_at + days_online * interval '1 day' > clock_timestamp()`,
      [jobIds],
    );
    const alive = new Set(rows.map((r) => r.job_id));
    const stale = keys.filter((_, i) => !alive.has(jobIds[i]!));
    if (stale.length > 0) await sink.deleteKeys(stale);
    deleted += stale.length;
  }
  return deleted;
}
