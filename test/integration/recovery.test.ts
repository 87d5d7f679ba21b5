import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ObservedConsumer as Consumer } from '../../src/commands/observed-consumer.js';
import { checkpointKey } from '../../src/sink/internal-keys.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// Snapshots, replays, lost Redis state, lost slots and rows that cannot be processed.

describe('recovery', () => {
  let fx: PipelineFixture;
  let consumer: Consumer;

  async function expectRedisMatchesTable(): Promise<void> {
    await fx.waitForConfirmed();
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
  }

  beforeAll(async () => {
    fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), 'recovery');
  });

  afterAll(async () => {
    await fx?.close();
  });

  it('loads the rows a table already has when the slot is created, alive rows only', async () => {
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget) select 'pre-' || g, 1 + g % 20, g / 100.0 from generate_series(1, 3000) g`,
    );
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget, created_at) values ('pre-expired', 1, 1.00, now() - interval '5 days')`,
    );
    const resyncs: string[] = [];
    consumer = await fx.startConsumer();
    consumer.events.on('resync-finished', ({ rowsWritten }) => resyncs.push(String(rowsWritten)));
    await waitFor(() => fx.confirmedLsn(), { message: 'the slot to be created' });
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('post-snapshot', 2, 1.00)`);
    await expectRedisMatchesTable();
    expect(await fx.getJob('pre-3000')).not.toBeNull();
    expect(await fx.getJob('pre-expired')).toBeNull();
    expect(await fx.getJob('post-snapshot')).not.toBeNull();
  });

  it('skips what Redis already holds when the slot is replayed, so an older value never overwrites a newer one', async () => {
    // A copy of the slot at its current position: reading it later replays everything after this point.
    const replaySlot = `${fx.config.slotName}_replay`;
    await fx.sql.query('select pg_copy_logical_replication_slot($1, $2)', [fx.config.slotName, replaySlot]);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('replayed', 2, 1.00)`);
    await fx.sql.query(`update jobs set budget = 2.00 where job_id = 'replayed'`);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'replayed-' || g, 3, 3.00 from generate_series(1, 2500) g`);
    await fx.waitForConfirmed();
    await consumer.stop();
    expect((await fx.getJob('replayed'))!.budget).toBe('2.00');

    // Replaying: the old value 1.00 would be written first if replayed changes were applied.
    const written: number[] = [];
    const replay = await fx.startConsumer({ slotName: replaySlot });
    replay.events.on('batch-written', ({ writes }) => written.push(writes));
    await waitFor(async () => {
      const { rows } = await fx.sql.query<{ done: boolean }>(
        `select confirmed_flush_lsn >= pg_current_wal_insert_lsn() - 1000000 and confirmed_flush_lsn >= (
           select confirmed_flush_lsn from pg_replication_slots where slot_name = $2) as done
         from pg_replication_slots where slot_name = $1`,
        [replaySlot, fx.config.slotName],
      );
      return rows[0]?.done;
    });
    await replay.stop();
    expect(written).toEqual([]);
    expect((await fx.getJob('replayed'))!.budget).toBe('2.00');
    await fx.sql.query('select pg_drop_replication_slot($1)', [replaySlot]);
    consumer = await fx.startConsumer();
    await expectRedisMatchesTable();
  });

  it('notices that Redis lost its state (checkpoint gone) and rebuilds it from the table', async () => {
    const reasons: string[] = [];
    consumer.events.on('resync-started', ({ reason }) => reasons.push(reason));
    // What FLUSHALL or a restart without persistence does to our keys (the shared Redis must keep others).
    await fx.redis.del(checkpointKey(fx.config.keyPrefix));
    for await (const keys of fx.redis.scanStream({ match: fx.config.keyPrefix + '*', count: 1000 })) {
      if ((keys as string[]).length > 0) await fx.redis.del(...(keys as string[]));
    }
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('after-loss', 2, 1.00)`);
    await waitFor(() => reasons.length > 0, { message: 'the consumer to start a resync' });
    await waitFor(async () => (await fx.redis.exists(checkpointKey(fx.config.keyPrefix))) === 1, { message: 'the checkpoint to be back' });
    await expectRedisMatchesTable();
    expect(await fx.getJob('pre-1')).not.toBeNull();
    expect(await fx.getJob('after-loss')).not.toBeNull();
  });

  it('budget-cdc resync rebuilds Redis through the running consumer, removing stale keys, while the stream goes on', async () => {
    await fx.redis.set(fx.config.keyPrefix + 'stale-job', '{"job_id":"stale-job"}');
    await fx.redis.set(fx.config.keyPrefix + 'pre-5', '{"job_id":"pre-5","budget":"corrupted"}');
    const { stdout } = await promisify(execFile)(process.execPath, ['bin/budget-cdc.js', 'resync'], {
      env: {
        ...process.env,
        DATABASE_URL: fx.config.databaseUrl,
        REDIS_URL: fx.config.redisUrl,
        BUDGET_CDC_SLOT: fx.config.slotName,
        BUDGET_CDC_KEY_PREFIX: fx.config.keyPrefix,
      },
      timeout: 60_000,
    });
    expect(stdout).toMatch(/resync finished/);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('after-resync', 2, 1.00)`);
    await expectRedisMatchesTable();
    expect(await fx.redis.get(fx.config.keyPrefix + 'stale-job')).toBeNull();
    expect((await fx.getJob('pre-5'))!.budget).toBe('0.05');
  });

  it('a requested resync is no incident: no session failure, and its dead letters replace the ones before', async () => {
    const deadLetterKey = `budget-cdc:dead-letters:${fx.config.slotName}`;
    await fx.redis.del(deadLetterKey);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('resync-nan-1', 2, 'NaN'), ('resync-nan-2', 2, 'NaN')`);
    await fx.waitForConfirmed();
    expect(await fx.redis.llen(deadLetterKey)).toBe(2);
    const failures: string[] = [];
    consumer.events.on('session-failed', ({ error }) => failures.push(error.message));
    const env = {
      ...process.env,
      DATABASE_URL: fx.config.databaseUrl,
      REDIS_URL: fx.config.redisUrl,
      BUDGET_CDC_SLOT: fx.config.slotName,
      BUDGET_CDC_KEY_PREFIX: fx.config.keyPrefix,
    };
    for (let round = 1; round <= 2; round++) {
      const { stdout } = await promisify(execFile)(process.execPath, ['bin/budget-cdc.js', 'resync'], { env, timeout: 60_000 });
      expect(stdout).toMatch(/resync finished/);
      // The rebuild set the two rows aside again, in place of the letters before it.
      expect(await fx.redis.llen(deadLetterKey)).toBe(2);
    }
    expect(failures).toEqual([]);
    await fx.sql.query(`delete from jobs where job_id like 'resync-nan-%'`);
    await expectRedisMatchesTable();
  });

  it('recreates a dropped slot and resyncs, losing nothing written meanwhile', async () => {
    let resyncsFinished = 0;
    consumer.events.on('resync-finished', () => resyncsFinished++);
    const admin = new pg.Client({ connectionString: fx.database.url });
    await admin.connect();
    try {
      // Terminate the walsender and drop the slot before the consumer reconnects.
      await waitFor(
        async () => {
          const { rows } = await admin.query<{ active_pid: number | null }>(
            'select active_pid from pg_replication_slots where slot_name = $1',
            [fx.config.slotName],
          );
          if (rows.length === 0) return true;
          if (rows[0]!.active_pid !== null) await admin.query('select pg_terminate_backend($1)', [rows[0]!.active_pid]);
          await admin.query('select pg_drop_replication_slot($1)', [fx.config.slotName]);
          return true;
        },
        { message: 'the slot to be dropped' },
      );
    } finally {
      await admin.end();
    }
    await fx.sql.query(`update jobs set budget = 9.99 where job_id = 'pre-2'`);
    await fx.sql.query(`delete from jobs where job_id = 'pre-3'`);
    // The new slot confirms its start at once; Redis holds the table only once the resync has finished.
    await waitFor(() => resyncsFinished > 0, { message: 'the consumer to recreate the slot and resync' });
    await expectRedisMatchesTable();
    expect((await fx.getJob('pre-2'))!.budget).toBe('9.99');
    expect(await fx.getJob('pre-3')).toBeNull();
  });

  it('replaces a key someone turned into another type (a hash) with the job value: no error, no stall', async () => {
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('typed', 2, 1.00)`);
    await fx.waitForConfirmed();
    await fx.redis.del(fx.config.keyPrefix + 'typed');
    await fx.redis.hset(fx.config.keyPrefix + 'typed', 'someone', 'else');
    await fx.sql.query(`update jobs set budget = 4.00 where job_id = 'typed'`);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('after-typed', 2, 1.00)`);
    await expectRedisMatchesTable();
    expect(await fx.redis.type(fx.config.keyPrefix + 'typed')).toBe('string');
    expect((await fx.getJob('typed'))!.daily).toEqual(['2.00', '2.00']);
  });

  it('sets aside rows it cannot process as dead letters, and the stream goes on', async () => {
    const deadLetterKey = `budget-cdc:dead-letters:${fx.config.slotName}`;
    await fx.redis.del(deadLetterKey);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget, created_at) values ('bad-infinity', 2, 1.00, 'infinity')`);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('bad-nan', 2, 'NaN')`);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget, created_at) values ('bad-far', 2, 1.00, '200000-01-01')`);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('good-after-bad', 2, 1.00)`);
    await fx.waitForConfirmed();
    expect(await fx.getJob('good-after-bad')).not.toBeNull();
    const letters = (await fx.redis.lrange(deadLetterKey, 0, -1)).map(
      (e) => JSON.parse(e) as { job_id: string; reason: string; lsn: string },
    );
    expect(letters.map((l) => l.job_id).sort()).toEqual(['bad-far', 'bad-infinity', 'bad-nan']);
    expect(letters.find((l) => l.job_id === 'bad-infinity')!.reason).toMatch(/infinity/);
    expect(letters.find((l) => l.job_id === 'bad-nan')!.reason).toMatch(/NaN/);
    expect(letters.every((l) => /^[0-9A-F]+\/[0-9A-F]+$/.test(l.lsn))).toBe(true);
    expect(await fx.getJob('bad-infinity')).toBeNull();
  });
});
