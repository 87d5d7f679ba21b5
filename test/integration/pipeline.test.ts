import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ObservedConsumer as Consumer } from '../../src/commands/observed-consumer.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** "YYYY-MM-DD HH:MM:SS.fff" of the instant `ms` on a clock `offsetMinutes` ahead of UTC, without an offset. */
function wallClock(ms: number, offsetMinutes: number): string {
  return new Date(ms + offsetMinutes * 60_000).toISOString().replace('T', ' ').replace('Z', '');
}

describe('pipeline: jobs in PostgreSQL to budget plans in Redis', () => {
  let fx: PipelineFixture;
  let consumer: Consumer;

  beforeAll(async () => {
    fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), 'pipeline');
    consumer = await fx.startConsumer();
    await waitFor(() => fx.confirmedLsn(), { message: 'the slot to be created' });
  });

  afterAll(async () => {
    await fx?.close();
  });

  async function expectRedisMatchesTable(): Promise<void> {
    await fx.waitForConfirmed();
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
  }

  it('writes a single insert with the exact split, fields and absolute expiry', async () => {
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget, created_at) values ('single-1', 3, 100.00, now() - interval '1 hour')`,
    );
    await fx.waitForConfirmed();
    const value = await fx.getJob('single-1');
    expect(value).not.toBeNull();
    expect(value!.daily).toEqual(['33.34', '33.33', '33.33']);
    expect(value!.budget).toBe('100.00');
    expect(value!.days_online).toBe(3);
    const createdMs = Date.parse(value!.created_at as string);
    expect(Date.parse(value!.expires_at as string)).toBe(createdMs + 3 * DAY_MS);
    expect(await fx.redis.pexpiretime(fx.config.keyPrefix + 'single-1')).toBe(createdMs + 3 * DAY_MS);
  });

  it('sets PEXPIRETIME to created_at truncated to the millisecond + days', async () => {
    // A microsecond part that rounding (rather than truncating) would push to the next millisecond.
    const createdMs = Math.floor(Date.now() / 1000) * 1000 - HOUR_MS + 123;
    await fx.sql.query(`insert into jobs (job_id, days_online, budget, created_at) values ('exact-expiry', 2, 0.01, $1)`, [
      `${wallClock(createdMs, 0)}789+00`,
    ]);
    await fx.waitForConfirmed();
    expect(await fx.redis.pexpiretime(fx.config.keyPrefix + 'exact-expiry')).toBe(createdMs + 2 * DAY_MS);
    const value = await fx.getJob('exact-expiry');
    expect(value!.daily).toEqual(['0.01', '0.00']);
    expect(value!.created_at).toBe(new Date(createdMs).toISOString());
    expect(value!.expires_at).toBe(new Date(createdMs + 2 * DAY_MS).toISOString());
  });

  it('writes every row of a multi-row insert', async () => {
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget) values ('multi-1', 1, 10.00), ('multi-2', 7, 0.00), ('multi-3', 3650, 999999999999.99)`,
    );
    await expectRedisMatchesTable();
    expect((await fx.getJob('multi-2'))!.daily).toEqual(Array(7).fill('0.00'));
    expect(((await fx.getJob('multi-3'))!.daily as string[]).length).toBe(3650);
  });

  it('writes rows loaded by COPY through plain SQL', async () => {
    const csv = Array.from({ length: 5_000 }, (_, i) => `copy-${i},${1 + (i % 30)},${i}.${String(i % 100).padStart(2, '0')}\n`).join('');
    await pipeline(Readable.from([csv]), fx.sql.query(copyFrom('copy jobs (job_id, days_online, budget) from stdin with (format csv)')));
    await expectRedisMatchesTable();
    expect(await fx.getJob('copy-4999')).toMatchObject({ job_id: 'copy-4999', budget: '4999.99', days_online: 20 });
  });

  it('recomputes the key on updates of budget and days, and moves it when job_id changes', async () => {
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('upd-1', 2, 10.00), ('upd-2', 2, 10.00)`);
    await fx.sql.query(`update jobs set budget = 10.01 where job_id = 'upd-1'`);
    await fx.sql.query(`update jobs set days_online = 4 where job_id = 'upd-2'`);
    await fx.waitForConfirmed();
    expect((await fx.getJob('upd-1'))!.daily).toEqual(['5.01', '5.00']);
    expect((await fx.getJob('upd-2'))!.daily).toEqual(['2.50', '2.50', '2.50', '2.50']);
    await fx.sql.query(`update jobs set job_id = 'upd-1-renamed' where job_id = 'upd-1'`);
    await fx.waitForConfirmed();
    expect(await fx.getJob('upd-1')).toBeNull();
    expect((await fx.getJob('upd-1-renamed'))!.job_id).toBe('upd-1-renamed');
    await expectRedisMatchesTable();
  });

  it('handles a long job_id (TOASTed) that an update leaves unchanged', async () => {
    // Over the ~2 kB TOAST threshold, under the 2704-byte limit of the unique index.
    const longId = 'long-' + 'x'.repeat(2500) + Math.random().toString(36);
    await fx.sql.query(`alter table jobs alter column job_id set storage external`);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ($1, 2, 1.00)`, [longId]);
    await fx.sql.query(`update jobs set budget = 3.00 where job_id = $1`, [longId]);
    await fx.waitForConfirmed();
    expect((await fx.getJob(longId))!.daily).toEqual(['1.50', '1.50']);
    await fx.sql.query(`alter table jobs alter column job_id set storage extended`);
  });

  it('removes the key on delete', async () => {
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('del-1', 2, 10.00)`);
    await fx.waitForConfirmed();
    expect(await fx.getJob('del-1')).not.toBeNull();
    await fx.sql.query(`delete from jobs where job_id = 'del-1'`);
    await fx.waitForConfirmed();
    expect(await fx.getJob('del-1')).toBeNull();
  });

  it('writes nothing for rolled-back transactions and savepoints', async () => {
    await fx.sql.query('begin');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('rolled-back', 2, 10.00)`);
    await fx.sql.query('rollback');
    await fx.sql.query('begin');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('kept', 2, 10.00)`);
    await fx.sql.query('savepoint s1');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('savepoint-rolled-back', 2, 10.00)`);
    await fx.sql.query(`update jobs set budget = 99.00 where job_id = 'kept'`);
    await fx.sql.query('rollback to savepoint s1');
    await fx.sql.query('commit');
    await fx.waitForConfirmed();
    expect(await fx.getJob('rolled-back')).toBeNull();
    expect(await fx.getJob('savepoint-rolled-back')).toBeNull();
    expect((await fx.getJob('kept'))!.budget).toBe('10.00');
  });

  it('writes no key for a job already offline, and removes the key of a job updated into the past', async () => {
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget, created_at) values ('expired-1', 1, 5.00, now() - interval '2 days')`,
    );
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('expired-2', 1, 5.00)`);
    await fx.waitForConfirmed();
    expect(await fx.getJob('expired-1')).toBeNull();
    expect(await fx.getJob('expired-2')).not.toBeNull();
    await fx.sql.query(`update jobs set created_at = now() - interval '3 days' where job_id = 'expired-2'`);
    await fx.waitForConfirmed();
    expect(await fx.getJob('expired-2')).toBeNull();
  });

  it('parses timestamps whatever the TimeZone of the server and of the writer', async () => {
    // Zones without daylight saving time, so the offsets hold whatever the date of the run.
    await fx.sql.query(`alter database ${new URL(fx.database.url).pathname.slice(1)} set timezone = 'Pacific/Marquesas'`);
    const createdMs = Math.floor(Date.now() / 1000) * 1000 - DAY_MS + 500;
    await fx.sql.query(`set timezone = 'Asia/Kathmandu'`); // +05:45
    await fx.sql.query(`insert into jobs (job_id, days_online, budget, created_at) values ('tz-1', 5, 1.00, $1)`, [
      wallClock(createdMs, 5 * 60 + 45),
    ]);
    await fx.sql.query(`set timezone = 'Pacific/Marquesas'`); // -09:30
    await fx.sql.query(`insert into jobs (job_id, days_online, budget, created_at) values ('tz-2', 5, 1.00, $1)`, [
      wallClock(createdMs, -(9 * 60 + 30)),
    ]);
    await fx.sql.query(`set timezone = 'UTC'`);
    await fx.waitForConfirmed();
    expect((await fx.getJob('tz-1'))!.created_at).toBe(new Date(createdMs).toISOString());
    expect((await fx.getJob('tz-2'))!.created_at).toBe(new Date(createdMs).toISOString());
    await expectRedisMatchesTable();
  });

  it('removes every key under the prefix on TRUNCATE, and nothing else', async () => {
    const outside = `outside:${fx.config.keyPrefix}survivor`;
    await fx.redis.set(outside, 'keep me');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('before-truncate', 2, 10.00)`);
    await fx.waitForConfirmed();
    expect(await fx.getJob('before-truncate')).not.toBeNull();
    await fx.sql.query('begin');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('in-truncate-tx-before', 2, 10.00)`);
    await fx.sql.query('truncate jobs');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('in-truncate-tx-after', 2, 10.00)`);
    await fx.sql.query('commit');
    await fx.waitForConfirmed();
    expect(await fx.getJob('before-truncate')).toBeNull();
    expect(await fx.getJob('in-truncate-tx-before')).toBeNull();
    expect(await fx.getJob('in-truncate-tx-after')).not.toBeNull();
    expect(await fx.redis.get(outside)).toBe('keep me');
    await fx.redis.del(outside);
    await expectRedisMatchesTable();
  });

  it('keeps consuming: the consumer is still running after all of the above', async () => {
    let failures = 0;
    consumer.events.on('session-failed', () => failures++);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('last', 2, 10.00)`);
    await expectRedisMatchesTable();
    expect(failures).toBe(0);
  });
});
