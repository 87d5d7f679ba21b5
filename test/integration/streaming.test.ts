import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObservedConsumer } from '../../src/commands/observed-consumer.js';
import { startCli, stopCli, type CliProcess } from '../support/cli-process.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { startPostgres, type PostgresServer } from '../support/postgres-server.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// Transactions PostgreSQL streams while they run (protocol 2, streaming 'on'), on a server of its own whose
// logical_decoding_work_mem is the least there is (64 kB), so that a few thousand rows are streamed. Nothing of a
// streamed transaction may reach Redis before its commit, nor anything of one that aborts, nor of a rolled-back
// savepoint; interleaved ones end each as they should; the spool files go.

const STREAM_ROWS = 20_000;
/** The size for a rolled-back streamed transaction: spooled to disk, then dropped. */
const ROLLBACK_ROWS = 500_000;

describe('streamed transactions (protocol 2)', () => {
  let postgres: PostgresServer;
  let redis: RedisServer;
  let fx: PipelineFixture;
  let consumer: ObservedConsumer;
  let streamedCommits = 0;

  beforeAll(async () => {
    [postgres, redis] = await Promise.all([startPostgres({ extraSettings: { logical_decoding_work_mem: '64kB' } }), startRedis()]);
    fx = await makePipelineFixture(postgres.url, redis.url, 'streaming');
    consumer = await fx.startConsumer();
    consumer.events.on('stream-committed', () => streamedCommits++);
    await waitFor(() => fx.confirmedLsn(), { message: 'the slot to be created' });
  }, 60_000);

  afterAll(async () => {
    await fx?.close();
    await Promise.all([postgres?.stop(), redis?.stop()]);
  });

  async function keysUnderPrefix(): Promise<number> {
    return (await fx.redis.keys(`${fx.config.keyPrefix}*`)).length;
  }

  /** The spool files of this process's consumer: none once every streamed transaction ended. */
  function spoolFiles(): string[] {
    const folder = join(tmpdir(), 'budget-cdc-spool', fx.config.slotName, String(process.pid));
    try {
      return readdirSync(folder);
    } catch {
      return [];
    }
  }

  it('writes a streamed transaction only at its commit, all of it, and removes its spool', async () => {
    const before = streamedCommits;
    const writer = new pg.Client({ connectionString: fx.database.url });
    await writer.connect();
    try {
      await writer.query('begin');
      await writer.query(
        `insert into jobs (job_id, days_online, budget) select 'big-' || i, 1 + i % 30, i * 0.37 from generate_series(1, ${STREAM_ROWS}) i`,
      );
      // Streamed already (the server decodes while the transaction runs): spooled, not written.
      await waitFor(() => spoolFiles().length > 0, { message: 'the transaction to be streamed into a spool file' });
      expect(await keysUnderPrefix()).toBe(0);
      await writer.query('commit');
    } finally {
      await writer.end();
    }
    await fx.waitForConfirmed();
    expect(streamedCommits).toBe(before + 1);
    expect(await keysUnderPrefix()).toBe(STREAM_ROWS);
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect(spoolFiles()).toEqual([]);
  });

  it('replays every kind of change of a streamed transaction in its place, across an ALTER TABLE in it', async () => {
    const before = streamedCommits;
    await fx.sql.query('begin');
    try {
      await fx.sql.query(
        `insert into jobs (job_id, days_online, budget) select 'mix-' || i, 1 + i % 20, i * 0.13 from generate_series(1, 5000) i`,
      );
      // Off the bulk-load byte path: job_ids JSON must escape, jobs offline already (no key: a DEL).
      await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'mix"q-' || i, 3, 7 from generate_series(1, 200) i`);
      await fx.sql.query(
        `insert into jobs (job_id, days_online, budget, created_at) select 'mix-offline-' || i, 2, 5, now() - interval '10 days' from generate_series(1, 200) i`,
      );
      // Changes to rows inserted a moment before in the same transaction: they must come after them.
      await fx.sql.query(`update jobs set budget = 1234.56 where job_id in ('mix-1', 'mix-2', 'mix"q-1')`);
      await fx.sql.query(`update jobs set job_id = 'mix-renamed' where job_id = 'mix-3'`);
      await fx.sql.query(`delete from jobs where job_id = 'mix-5000'`);
      // A new description of the table mid-transaction: the Inserts after it are read with it.
      await fx.sql.query('alter table jobs add column note text');
      await fx.sql.query(
        `insert into jobs (job_id, days_online, budget, note) select 'mix-after-alter-' || i, 4, 9, 'n' from generate_series(1, 3000) i`,
      );
      await fx.sql.query('commit');
    } catch (error) {
      await fx.sql.query('rollback');
      throw error;
    }
    try {
      await fx.waitForConfirmed();
      expect(streamedCommits).toBe(before + 1);
      expect(await fx.getJob('mix-1')).toMatchObject({ budget: '1234.56' });
      expect(await fx.getJob('mix"q-1')).toMatchObject({ budget: '1234.56' });
      expect(await fx.getJob('mix-3')).toBeNull();
      expect(await fx.getJob('mix-renamed')).not.toBeNull();
      expect(await fx.getJob('mix-5000')).toBeNull();
      expect(await fx.getJob('mix-offline-1')).toBeNull();
      expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
      expect(spoolFiles()).toEqual([]);
    } finally {
      await fx.sql.query('alter table jobs drop column note');
    }
  });

  it(`leaves no trace of a streamed transaction of ${ROLLBACK_ROWS} rows that rolls back`, { timeout: 120_000 }, async () => {
    const keysBefore = await keysUnderPrefix();
    await fx.sql.query('begin');
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget) select 'rolled-back-' || i, 5, 10 from generate_series(1, ${ROLLBACK_ROWS}) i`,
    );
    await fx.sql.query(`update jobs set budget = budget + 1 where job_id like 'big-1%'`);
    await waitFor(() => spoolFiles().length > 0, { message: 'the transaction to be streamed into a spool file' });
    await fx.sql.query('rollback');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('after-rollback', 2, 1.00)`);
    await fx.waitForConfirmed();
    expect(await fx.getJob('after-rollback')).not.toBeNull();
    expect(await keysUnderPrefix()).toBe(keysBefore + 1);
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    await waitFor(() => spoolFiles().length === 0, { message: 'the aborted transaction spool to be removed' });
  });

  it('drops only the changes of a savepoint rolled back inside a streamed transaction', async () => {
    const before = streamedCommits;
    await fx.sql.query('begin');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'kept-a-' || i, 3, 3 from generate_series(1, 5000) i`);
    await fx.sql.query('savepoint s1');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'dropped-' || i, 3, 3 from generate_series(1, 5000) i`);
    await fx.sql.query(`update jobs set budget = 999 where job_id like 'kept-a-1%'`);
    await fx.sql.query('savepoint s2');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('nested-dropped', 3, 3)`);
    await fx.sql.query('rollback to savepoint s1');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'kept-b-' || i, 3, 3 from generate_series(1, 5000) i`);
    await fx.sql.query('commit');
    await fx.waitForConfirmed();
    expect(await fx.getJob('dropped-1')).toBeNull();
    expect(await fx.getJob('nested-dropped')).toBeNull();
    expect(await fx.getJob('kept-a-1')).toMatchObject({ budget: '3.00' });
    expect(await fx.getJob('kept-b-5000')).not.toBeNull();
    expect(streamedCommits).toBe(before + 1);
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect(spoolFiles()).toEqual([]);
  });

  it('ends two interleaved streamed transactions each as they end: one commits, one aborts', async () => {
    const before = streamedCommits;
    const [one, two] = [new pg.Client({ connectionString: fx.database.url }), new pg.Client({ connectionString: fx.database.url })];
    await Promise.all([one.connect(), two.connect()]);
    try {
      await one.query('begin');
      await two.query('begin');
      for (let round = 0; round < 4; round++) {
        await one.query(`insert into jobs (job_id, days_online, budget) select 'one-${round}-' || i, 4, 8 from generate_series(1, 3000) i`);
        await two.query(`insert into jobs (job_id, days_online, budget) select 'two-${round}-' || i, 4, 8 from generate_series(1, 3000) i`);
      }
      await waitFor(() => spoolFiles().length >= 2, { message: 'both transactions to be streamed' });
      await two.query('rollback');
      await one.query('commit');
    } finally {
      await Promise.all([one.end(), two.end()]);
    }
    await fx.waitForConfirmed();
    expect(await fx.getJob('one-3-3000')).not.toBeNull();
    expect(await fx.getJob('two-0-1')).toBeNull();
    expect(streamedCommits).toBe(before + 1);
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect(spoolFiles()).toEqual([]);
  });

  it('applies a TRUNCATE inside a streamed transaction at its place, and the rows after it', async () => {
    const before = streamedCommits;
    await fx.sql.query('begin');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'pre-' || i, 3, 3 from generate_series(1, 4000) i`);
    await fx.sql.query('truncate jobs');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'post-' || i, 3, 3 from generate_series(1, 4000) i`);
    await fx.sql.query('commit');
    await fx.waitForConfirmed();
    expect(await keysUnderPrefix()).toBe(4000);
    expect(streamedCommits).toBe(before + 1);
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
  });

  it('catches up with protocol 1 when far behind, then restarts its session with streamed transactions', { timeout: 120_000 }, async () => {
    await consumer.stop();
    // 70 MB of WAL the consumer does not ask for (logical messages): behind by more than the threshold (64 MiB).
    for (let i = 0; i < 7; i++) await fx.sql.query(`select pg_logical_emit_message(false, 'filler', repeat('x', 10000000))`);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('while-away', 2, 1.00)`);
    const sessions: boolean[] = [];
    const behind = await fx.startConsumer();
    consumer = behind; // stopped by the next test, whatever this one finds
    behind.events.on('session-started', ({ streamedTransactions }) => sessions.push(streamedTransactions));
    let streamed = 0;
    behind.events.on('stream-committed', () => streamed++);
    await waitFor(() => sessions.length >= 2, { timeoutMs: 60_000, message: 'a second session after catching up' });
    expect(sessions.slice(0, 2)).toEqual([false, true]);
    expect(await fx.getJob('while-away')).not.toBeNull();
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'after-switch-' || i, 3, 3 from generate_series(1, 5000) i`);
    await fx.waitForConfirmed();
    expect(streamed).toBe(1);
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
  });

  it(
    'converges after kill -9 of the CLI consumer while a transaction is streamed and while it is replayed',
    { timeout: 120_000 },
    async () => {
      await consumer.stop();
      const env = { ...fx.cliEnv(), LOG_LEVEL: 'warn', BUDGET_CDC_HTTP_PORT: '0', BUDGET_CDC_BATCH_SIZE: '500' };
      const slotFolder = join(tmpdir(), 'budget-cdc-spool', fx.config.slotName);
      const pidFolders = (): string[] => {
        try {
          return readdirSync(slotFolder);
        } catch {
          return [];
        }
      };
      const run = (): CliProcess => startCli(['run'], env);
      const writer = new pg.Client({ connectionString: fx.database.url });
      await writer.connect();
      let cli = run();
      try {
        await fx.waitForConfirmed();
        // 1. Killed while the transaction is being streamed: its spool file is there, nothing written.
        await writer.query('begin');
        await writer.query(
          `insert into jobs (job_id, days_online, budget) select 'killed-' || i, 1 + i % 9, i * 0.11 from generate_series(1, 60000) i`,
        );
        const killedPid = String(cli.child.pid);
        await waitFor(() => pidFolders().includes(killedPid), { message: 'the consumer to spool the streamed transaction' });
        cli.child.kill('SIGKILL');
        await cli.closed;
        expect(await fx.getJob('killed-1')).toBeNull();
        // 2. Started again, then killed while it replays the committed transaction into Redis.
        cli = run();
        await writer.query('commit');
        await waitFor(async () => (await keysUnderPrefix()) > 1000, { timeoutMs: 60_000, message: 'the replay to write keys' });
        cli.child.kill('SIGKILL');
        await cli.closed;
        // 3. Started again: it converges, and the folders of the killed processes are gone.
        cli = run();
        await fx.waitForConfirmed(undefined, 90_000);
        expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
        expect(pidFolders().filter((pid) => pid !== String(cli.child.pid))).toEqual([]);
        const history = await fx.redis.hgetall(`budget-cdc:rebuilds:${fx.config.keyPrefix}`);
        expect(history['new-slot']).toBe('1');
        expect(Object.keys(history).filter((field) => !['last', 'distribution', 'new-slot'].includes(field))).toEqual([]);
      } finally {
        await writer.end();
        await stopCli(cli);
      }
    },
  );
});
