import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ObservedConsumer as Consumer } from '../../src/commands/observed-consumer.js';
import { formatLsn } from '../../src/lsn.js';
import { parseCheckpoint } from '../../src/sink/checkpoint.js';
import { checkpointKey } from '../../src/sink/internal-keys.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { startPostgres, type PostgresServer } from '../support/postgres-server.js';
import { waitFor } from '../support/wait-for.js';

// "Keepalives are answered with … the server's position … when nothing is in flight": a slot whose tables
// are idle must not hold back the WAL that other tables write. This file writes hundreds of megabytes of
// WAL, so it has a PostgreSQL of its own, one whose checkpoints recycle WAL early and whose walsender
// sends keepalives often.

const SECOND = 1000;
const MB = 1024n * 1024n;
const WAL_TO_WRITE = 256n * MB;
const RETAINED_LIMIT = 64n * MB;
/** ~1 kB rows, 20 000 per transaction: about 22 MB of WAL each. */
const FILLER_INSERT = `insert into filler (x) select repeat(md5(g::text), 32) from generate_series(1, 20000) g`;

describe('an idle slot does not hold back WAL', () => {
  let pgServer: PostgresServer;
  let fx: PipelineFixture;
  let consumer: Consumer;

  beforeAll(async () => {
    pgServer = await startPostgres({
      extraSettings: { wal_sender_timeout: '10s', max_wal_size: '64MB', min_wal_size: '32MB', checkpoint_timeout: '30s' },
    });
    fx = await makePipelineFixture(pgServer.url, inject('redisUrl'), 'idle_slot');
    consumer = await fx.startConsumer();
    await waitFor(() => fx.confirmedLsn(), { message: 'the slot to be created' });
  });

  afterAll(async () => {
    await fx?.close();
    await pgServer?.stop();
  });

  /** pg_current_wal_lsn() - restart_lsn: the WAL the server keeps for the slot. */
  async function retainedBytes(): Promise<bigint> {
    const { rows } = await fx.sql.query<{ retained: string | null }>(
      `select (pg_current_wal_lsn() - restart_lsn)::text as retained from pg_replication_slots where slot_name = $1`,
      [fx.config.slotName],
    );
    const retained = rows[0]?.retained;
    if (retained === undefined || retained === null) throw new Error(`slot ${fx.config.slotName} is missing or has no restart_lsn`);
    return BigInt(retained);
  }

  it('keeps the retained WAL under 64 MB while 256 MB are written to a table outside the publication', async () => {
    let failures = 0;
    consumer.events.on('session-failed', () => failures++);
    // No false alarm: acknowledging the filler's WAL moves the checkpoint first, and Redis never looks older.
    const rebuilds: string[] = [];
    consumer.events.on('resync-started', ({ cause }) => rebuilds.push(cause));
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('before-filler', 2, 10.00)`);
    await fx.waitForConfirmed();
    const confirmedBefore = (await fx.confirmedLsn())!;

    await fx.sql.query('create table filler (x text)');
    const start = await fx.currentLsn();
    let written = 0n;
    while (written < WAL_TO_WRITE) {
      await fx.sql.query(FILLER_INSERT);
      // Emptying the table keeps the data directory small; the WAL is what counts.
      await fx.sql.query('truncate filler');
      written = (await fx.currentLsn()) - start;
    }
    // A checkpoint logs the running transactions, from which the walsender learns a newer restart point.
    await fx.sql.query('checkpoint');

    let retained = await retainedBytes();
    try {
      retained = await waitFor(
        async () => {
          retained = await retainedBytes();
          return retained < RETAINED_LIMIT ? retained : undefined;
        },
        { timeoutMs: 30 * SECOND, intervalMs: 200, message: 'the slot to let the WAL go' },
      );
    } catch (error) {
      throw new Error(
        `${(error as Error).message}: the slot still retains ${retained / MB} MB after ${written / MB} MB were written ` +
          `(confirmed ${formatLsn((await fx.confirmedLsn()) ?? 0n)}, was ${formatLsn(confirmedBefore)})`,
        { cause: error },
      );
    }
    expect(retained).toBeLessThan(RETAINED_LIMIT);
    expect(written).toBeGreaterThanOrEqual(WAL_TO_WRITE);
    // The confirmed position moved over the filler WAL, though no change of jobs was in it.
    expect((await fx.confirmedLsn())! - confirmedBefore).toBeGreaterThan(WAL_TO_WRITE - RETAINED_LIMIT);

    // And jobs still streams.
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('after-filler', 4, 10.00)`);
    await fx.waitForConfirmed(undefined, 20 * SECOND);
    expect(await fx.getJob('after-filler')).toMatchObject({ job_id: 'after-filler', daily: ['2.50', '2.50', '2.50', '2.50'] });
    expect(failures).toBe(0);
    expect(rebuilds).toEqual([]);
    // The checkpoint in Redis covers the acknowledged position (it is written before the acknowledgement).
    // (Read in this order: the checkpoint only moves ahead of the slot.)
    const confirmed = (await fx.confirmedLsn())!;
    const checkpoint = parseCheckpoint((await fx.redis.get(checkpointKey(fx.config.keyPrefix)))!);
    expect(checkpoint.ackLsn).toBeGreaterThanOrEqual(confirmed);
  });
});
