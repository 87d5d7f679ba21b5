import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ObservedConsumer as Consumer } from '../../src/commands/observed-consumer.js';
import { formatLsn, parseLsn, type Lsn } from '../../src/lsn.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { startPostgres, type PostgresServer } from '../support/postgres-server.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// "Failure means resume": a server restarted under the consumer ends the session, and the next session
// picks up at the slot's confirmed position by itself. This file restarts, crashes, pauses and stops
// servers of its own, because the other test files share theirs.

const SECOND = 1000;

/** A plain connection that a server restart may break: its 'error' event must not crash the test process. */
async function connectSql(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function currentLsn(sql: pg.Client): Promise<Lsn> {
  const { rows } = await sql.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn');
  return parseLsn(rows[0]!.lsn);
}

async function confirmedLsn(sql: pg.Client, slotName: string): Promise<Lsn> {
  const { rows } = await sql.query<{ lsn: string | null }>(
    'select confirmed_flush_lsn::text as lsn from pg_replication_slots where slot_name = $1',
    [slotName],
  );
  const lsn = rows[0]?.lsn;
  return lsn === undefined || lsn === null ? 0n : parseLsn(lsn);
}

/** Waits until the slot confirms `target`; on timeout, says where the slot and the server's WAL stood. */
async function waitForSlotToConfirm(sql: pg.Client, slotName: string, target: Lsn, timeoutMs: number): Promise<void> {
  try {
    await waitFor(async () => (await confirmedLsn(sql, slotName)) >= target, {
      timeoutMs,
      message: `slot ${slotName} to confirm ${formatLsn(target)}`,
    });
  } catch (error) {
    const { rows } = await sql.query(
      `select confirmed_flush_lsn::text as confirmed, active, pg_current_wal_flush_lsn()::text as flushed,
              pg_current_wal_insert_lsn()::text as inserted
       from pg_replication_slots where slot_name = $1`,
      [slotName],
    );
    throw new Error(`${(error as Error).message}; slot and WAL: ${JSON.stringify(rows[0])}`, { cause: error });
  }
}

interface SessionRecord {
  /** 'failed' and 'started', in the order the consumer reported them. */
  log: string[];
  /** The slot's confirmed position each started session resumed from. */
  resumedFrom: Lsn[];
}

function recordSessions(consumer: Consumer): SessionRecord {
  const record: SessionRecord = { log: [], resumedFrom: [] };
  consumer.events.on('session-failed', () => record.log.push('failed'));
  consumer.events.on('session-started', ({ confirmedLsn: lsn }) => {
    record.log.push('started');
    record.resumedFrom.push(lsn);
  });
  return record;
}

function startedAfterFailure(log: string[]): boolean {
  return firstStartAfterFailure(log) >= 0;
}

/** The index, among the started sessions, of the first one that started after a failure; -1 if none yet. */
function firstStartAfterFailure(log: string[]): number {
  const failed = log.indexOf('failed');
  const started = failed < 0 ? -1 : log.indexOf('started', failed);
  return started < 0 ? -1 : log.slice(0, started).filter((entry) => entry === 'started').length;
}

/** Becomes true on the next 'batch-written' event. */
function watchBatchWritten(consumer: Consumer): { written: boolean } {
  const state = { written: false };
  consumer.events.once('batch-written', () => (state.written = true));
  return state;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('reconnect: PostgreSQL restarts or crashes while a large transaction streams', () => {
  let pgServer: PostgresServer;
  let redisServer: RedisServer;
  let fx: PipelineFixture;
  let consumer: Consumer;
  let sql: pg.Client;

  beforeAll(async () => {
    pgServer = await startPostgres();
    // A Redis of this file's own too: the crash case pauses its writes.
    redisServer = await startRedis();
    fx = await makePipelineFixture(pgServer.url, redisServer.url, 'reconnect_pg');
    // The fixture's own connection dies with the restart; it must not take the test process with it.
    fx.sql.on('error', () => undefined);
    sql = fx.sql;
    consumer = await fx.startConsumer();
    await waitFor(() => fx.confirmedLsn(), { message: 'the slot to be created' });
  });

  afterAll(async () => {
    if (sql !== fx?.sql) await sql?.end().catch(() => undefined);
    await fx?.close();
    await pgServer?.stop();
    await redisServer?.stop();
  });

  it('reconnects by itself after a restart, resumes from the slot and ends with Redis equal to the table', async () => {
    const { log } = recordSessions(consumer);
    await sql.query(`insert into jobs (job_id, days_online, budget) values ('before-restart', 2, 10.00)`);
    await waitForSlotToConfirm(sql, fx.config.slotName, await currentLsn(sql), 20 * SECOND);

    // One transaction of 100k rows: the consumer sees it only after the commit, then writes it in ~100 batches.
    const firstBatch = watchBatchWritten(consumer);
    await sql.query(
      `insert into jobs (job_id, days_online, budget) select 'big-' || g, 1 + g % 30, g / 100.0 from generate_series(1, 100000) g`,
    );
    await waitFor(() => firstBatch.written, { message: 'the first batch of the big transaction' });
    expect(log).not.toContain('failed');

    // A fast shutdown: PostgreSQL lets its walsender finish sending, and waits for the client's confirmation.
    await pgServer.restart();
    sql = await connectSql(fx.database.url);
    await sql.query(
      `insert into jobs (job_id, days_online, budget) select 'after-' || g, 1 + g % 7, g / 10.0 from generate_series(1, 1000) g`,
    );
    await sql.query(`update jobs set budget = budget + 1 where job_id in ('before-restart', 'big-1', 'big-100000')`);
    await sql.query(`delete from jobs where job_id = 'big-2'`);
    const target = await currentLsn(sql);

    await waitFor(() => startedAfterFailure(log), { message: 'a session-failed, then a session-started' });
    await waitForSlotToConfirm(sql, fx.config.slotName, target, 30 * SECOND);
    expect(await compareRedisWithTable(sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect(await fx.getJob('after-1000')).toMatchObject({ job_id: 'after-1000', budget: '100.00' });
    expect(await fx.getJob('big-100000')).toMatchObject({ budget: '1001.00' });
    expect(await fx.getJob('big-2')).toBeNull();
  });

  // The fast shutdown above cannot cut a transaction short: the walsender sends all of it first. A crash
  // can. Redis writes are paused meanwhile, so PostgreSQL is never told of the transaction's end.
  it('replays a transaction whose stream a crash of PostgreSQL cut off in the middle', async () => {
    const { log, resumedFrom } = recordSessions(consumer);
    let backpressure = false;
    consumer.events.on('backpressure', ({ paused }) => (backpressure ||= paused));
    // A smaller table keeps the comparison at the end short; TRUNCATE empties the prefix in Redis too.
    await sql.query('truncate jobs');
    await waitForSlotToConfirm(sql, fx.config.slotName, await currentLsn(sql), 20 * SECOND);

    expect(await fx.redis.call('CLIENT', 'PAUSE', String(30 * SECOND), 'WRITE')).toBe('OK');
    await sql.query('begin');
    await sql.query(
      `insert into jobs (job_id, days_online, budget) select 'crash-' || g, 1 + g % 30, g / 100.0 from generate_series(1, 50000) g`,
    );
    const beforeCommit = await currentLsn(sql);
    await sql.query('commit');
    // The consumer is in the middle of the transaction: batches wait for Redis, reading has paused.
    await waitFor(() => backpressure, { message: 'the consumer to pause reading in the middle of the transaction' });

    // Immediate shutdown (SIGQUIT to our private server's postmaster): no checkpoint, walsender gone at once.
    const postmasterPid = Number((await readFile(join(pgServer.dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    process.kill(postmasterPid, 'SIGQUIT');
    await waitFor(() => !isRunning(postmasterPid), { message: 'the crashed PostgreSQL to exit' });
    expect(await fx.redis.call('CLIENT', 'UNPAUSE')).toBe('OK');

    await pgServer.restart();
    sql = await connectSql(fx.database.url);
    await sql.query(`insert into jobs (job_id, days_online, budget) values ('after-crash', 3, 7.00)`);
    const target = await currentLsn(sql);
    await waitFor(() => startedAfterFailure(log), { message: 'a new session after the crash' });
    // The new session resumed before the cut-off transaction, so it received the whole transaction again.
    expect(resumedFrom[firstStartAfterFailure(log)]).toBeLessThanOrEqual(beforeCommit);
    await waitForSlotToConfirm(sql, fx.config.slotName, target, 30 * SECOND);
    expect(await compareRedisWithTable(sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect(await fx.getJob('crash-50000')).not.toBeNull();
    expect(await fx.getJob('after-crash')).not.toBeNull();
  });
});

describe('reconnect: Redis restarts while a large transaction streams', () => {
  let redisServer: RedisServer;
  let fx: PipelineFixture;
  let consumer: Consumer;

  beforeAll(async () => {
    redisServer = await startRedis();
    fx = await makePipelineFixture(inject('databaseUrl'), redisServer.url, 'reconnect_redis');
    consumer = await fx.startConsumer();
    await waitFor(() => fx.confirmedLsn(), { message: 'the slot to be created' });
  });

  afterAll(async () => {
    await fx?.close();
    await redisServer?.stop();
  });

  it('recovers once Redis is back, rebuilds what Redis lost, and equals the table, also after every row is re-touched', async () => {
    const { log } = recordSessions(consumer);
    let resyncs = 0;
    consumer.events.on('resync-finished', () => resyncs++);
    const firstBatch = watchBatchWritten(consumer);
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget) select 'big-' || g, 1 + g % 30, g / 100.0 from generate_series(1, 50000) g`,
    );
    await waitFor(() => firstBatch.written, { message: 'the first batch of the big transaction' });

    fx.redis.disconnect();
    await redisServer.stop();
    await waitFor(() => log.includes('failed'), { message: 'the session to fail while Redis is down' });
    await redisServer.start();
    await fx.redis.connect();

    await waitFor(() => startedAfterFailure(log), { message: 'a new session after the failure' });
    // Redis restarted empty (no persistence): its checkpoint is gone, so the consumer rebuilt it from the table.
    expect(resyncs).toBeGreaterThanOrEqual(1);
    await fx.waitForConfirmed(undefined, 20 * SECOND);
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);

    // Every row emitted again, through the stream this time.
    await fx.sql.query('update jobs set budget = budget');
    await fx.waitForConfirmed(undefined, 20 * SECOND);
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect(await fx.getJob('big-50000')).not.toBeNull();
  });
});
