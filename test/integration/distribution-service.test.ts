import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { checkpointKey, rebuildHistoryKey } from '../../src/sink/internal-keys.js';
import { killLiveCliProcesses, startCli, stopCli, type CliProcess } from '../support/cli-process.js';
import { startService, stopAllServices, type Service } from '../support/distribution-service.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';
import { compareRedisWithWeekdayTable } from '../support/weekday-oracle.js';

// Issue 14: the budget rule chosen with --distribution <URL>. The example service (a real HTTP server in a
// child process) computes the amounts; every change kind must land in Redis as the weekday oracle computes it
// from the table, with the absolute expiry of created_at + days_online. The even rule over HTTP must equal the
// built-in split, and a consumer set to another rule than Redis was built with must refuse until a resync.

const SECOND = 1000;
const DAY_MS = 86_400_000;
const COPY_ROWS = 20_000;

/** 00:00 UTC of the latest Monday at or before now: a job created then has a known weekday pattern. */
function latestMondayMs(): number {
  const today = Math.floor(Date.now() / DAY_MS);
  // 1970-01-01 was a Thursday: day n has weekday (n + 4) % 7 (0 = Sunday), so it is (n + 3) % 7 days after a Monday.
  return (today - ((today + 3) % 7)) * DAY_MS;
}

/** Every key under the fixture's prefix (the Redis server is shared: a SCAN to its end). */
async function keysUnderPrefix(fx: PipelineFixture): Promise<string[]> {
  const found: string[] = [];
  for await (const keys of fx.redis.scanStream({ match: fx.config.keyPrefix + '*', count: 1000 })) found.push(...(keys as string[]));
  return found;
}

/** The example service with `rule`, and a consumer of a fixture of its own asking it, caught up. */
async function startConsumerWithService(rule: 'even' | 'weekday', name: string): Promise<{ service: Service; fx: PipelineFixture }> {
  const service = await startService(rule);
  const fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), name);
  const { distribution } = loadConfig({ databaseUrl: fx.config.databaseUrl, distribution: `${service.url}/distribute` }, {});
  await fx.startConsumer({ distribution });
  await fx.waitForConfirmed();
  return { service, fx };
}

describe('distribution service: the weekday rule over HTTP', () => {
  let fx: PipelineFixture;
  // Two or three weeks online from a Monday at most six days ago: alive for at least eight more days.
  const monday = latestMondayMs();
  const weekOf = (weekday: string, weekend: string): string[] => [...Array(5).fill(weekday), weekend, weekend];

  beforeAll(async () => {
    ({ fx } = await startConsumerWithService('weekday', 'distweekday'));
  });

  afterAll(async () => {
    await fx?.close();
    await stopAllServices();
  });

  async function expectRedisMatchesWeekdayTable(): Promise<void> {
    await fx.waitForConfirmed();
    expect(await compareRedisWithWeekdayTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
  }

  it('writes single-row and multi-row inserts with the weekday amounts and the absolute expiry', async () => {
    await fx.sql.query(`insert into jobs (job_id, days_online, budget, created_at) values ('monday', 21, 360.00, $1)`, [
      new Date(monday).toISOString(),
    ]);
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget, created_at)
       select 'multi-' || i, 1 + i % 9, (i * 13.37)::numeric(14,2), now() - (i || ' hours')::interval from generate_series(1, 50) i`,
    );
    await expectRedisMatchesWeekdayTable();
    // Monday to Friday weigh 2, the weekend 1: over three weeks 36 shares of 10.00, not the even 17.14.
    const week = weekOf('20.00', '10.00');
    expect((await fx.getJob('monday'))!.daily).toEqual([...week, ...week, ...week]);
    expect(await fx.redis.pexpiretime(fx.config.keyPrefix + 'monday')).toBe(monday + 21 * DAY_MS);
  });

  it(`writes the ${COPY_ROWS} rows of a COPY, created on every weekday`, async () => {
    const now = Date.now();
    const csv = Array.from({ length: COPY_ROWS }, (_, i) => {
      // Spread over the last six days, so every weekday starts some job; short ones have expired already.
      const created = new Date(now - ((i * 37_813_129) % (6 * DAY_MS))).toISOString();
      return `copy-${i},${1 + (i % 30)},${i % 10_000}.${String(i % 100).padStart(2, '0')},${created}\n`;
    }).join('');
    await pipeline(
      Readable.from([csv]),
      fx.sql.query(copyFrom('copy jobs (job_id, days_online, budget, created_at) from stdin with (format csv)')),
    );
    await expectRedisMatchesWeekdayTable();
    const { rows } = await fx.sql.query<{ alive: string }>(
      `select count(*)::text as alive from jobs where job_id like 'copy-%' and created_at + days_online * interval '1 day' > now()`,
    );
    // The comparison is only as good as the keys it checks: most of the COPY must be alive.
    expect(Number(rows[0]!.alive)).toBeGreaterThan(COPY_ROWS / 2);
  });

  it('asks the service again when the budget or the days change, and moves the key when job_id changes', async () => {
    await fx.sql.query(`update jobs set budget = 720.00 where job_id = 'monday'`);
    await expectRedisMatchesWeekdayTable();
    const doubled = weekOf('40.00', '20.00');
    expect((await fx.getJob('monday'))!.daily).toEqual([...doubled, ...doubled, ...doubled]);

    await fx.sql.query(`update jobs set days_online = 14 where job_id = 'monday'`);
    await expectRedisMatchesWeekdayTable();
    const twoWeeks = [...weekOf('60.00', '30.00'), ...weekOf('60.00', '30.00')];
    expect((await fx.getJob('monday'))!.daily).toEqual(twoWeeks);
    expect(await fx.redis.pexpiretime(fx.config.keyPrefix + 'monday')).toBe(monday + 14 * DAY_MS);

    await fx.sql.query(`update jobs set budget = budget + 1.01 where job_id like 'copy-1%'`);
    await fx.sql.query(`update jobs set job_id = 'renamed-' || job_id where job_id like 'copy-2%' or job_id = 'monday'`);
    await expectRedisMatchesWeekdayTable();
    expect(await fx.getJob('monday')).toBeNull();
    expect((await fx.getJob('renamed-monday'))!.daily).toEqual(twoWeeks);
  });

  it('deletes the keys of deleted rows, and every key on TRUNCATE', async () => {
    await fx.sql.query(`delete from jobs where job_id like 'copy-3%' or job_id like 'multi-%'`);
    await expectRedisMatchesWeekdayTable();
    expect(await fx.getJob('multi-1')).toBeNull();
    expect(await fx.getJob('copy-4')).not.toBeNull();

    await fx.sql.query('truncate jobs');
    await expectRedisMatchesWeekdayTable();
    expect(await keysUnderPrefix(fx)).toEqual([]);
  });
});

describe('distribution service: the even rule over HTTP', () => {
  let fx: PipelineFixture;

  beforeAll(async () => {
    ({ fx } = await startConsumerWithService('even', 'disteven'));
  });

  afterAll(async () => {
    await fx?.close();
    await stopAllServices();
  });

  it('writes what the built-in split writes, for inserts, updates, renames and deletes', async () => {
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget) select 'j-' || i, 1 + i % 40, (i * 7.31)::numeric(14,2) from generate_series(1, 3000) i`,
    );
    await fx.sql.query(`update jobs set budget = budget + 1 where job_id like 'j-1%'`);
    await fx.sql.query(`update jobs set job_id = 'renamed-' || job_id where job_id like 'j-2%'`);
    await fx.sql.query(`delete from jobs where job_id like 'j-3%'`);
    await fx.waitForConfirmed();
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    // 3000 rows less the j-3… ones (j-3, j-30…j-39, j-300…j-399, j-3000): the comparison checked real keys.
    expect(await keysUnderPrefix(fx)).toHaveLength(3000 - 112);
  });
});

describe('distribution service: changing the rule', () => {
  let fx: PipelineFixture;
  let service: Service;
  let consumer: CliProcess | undefined;

  beforeAll(async () => {
    service = await startService('weekday');
    fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), 'distchange');
  });

  afterAll(async () => {
    await killLiveCliProcesses();
    await fx?.close();
    await stopAllServices();
  });

  function startRun(distribution: string | undefined): CliProcess {
    const args = ['run', '--http-port', '0', ...(distribution === undefined ? [] : ['--distribution', distribution])];
    return startCli(args, { ...fx.cliEnv(), LOG_LEVEL: 'warn' });
  }

  it('refuses to start with another rule than Redis was built with, and rebuilds every key with it after a resync', async () => {
    const weekdayUrl = `${service.url}/distribute`;
    // Built with the built-in even split (no --distribution).
    consumer = startRun(undefined);
    // Its slot first: rows committed before the slot are loaded by the rebuild that follows its creation, and
    // the slot confirms its start at once, before they are in Redis.
    await fx.waitForConfirmed();
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget, created_at)
       select 'c-' || i, 2 + i % 12, (i * 3.33)::numeric(14,2), now() - (i * 7 || ' hours')::interval from generate_series(1, 500) i`,
    );
    await fx.waitForConfirmed();
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect(await compareRedisWithWeekdayTable(fx.sql, fx.redis, fx.config.keyPrefix)).not.toEqual([]);
    const stopped = (await stopCli(consumer))!;
    expect(stopped.code, stopped.stderr).toBe(0);

    const refused = await startRun(weekdayUrl).exit(30 * SECOND);
    expect(refused.code, refused.stderr).toBe(1);
    // The error's own line, not the last one: a JSON log line may be flushed after it.
    const errorLine = refused.stderr.split('\n').find((line) => line.startsWith('budget-cdc: '));
    expect(errorLine, refused.stderr).toMatch(
      /^budget-cdc: Redis holds budgets computed with distribution even, but this consumer is set to http:/,
    );
    expect(errorLine).toContain('run "budget-cdc resync"');
    // Refusing touched nothing: the keys are still the even split's.
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);

    // As an operator does it: `budget-cdc resync`, then the consumer with the new setting.
    const resync = startCli(['resync'], fx.cliEnv());
    await waitFor(async () => (await fx.redis.exists(checkpointKey(fx.config.keyPrefix))) === 0, {
      message: 'budget-cdc resync to remove the checkpoint',
    });
    consumer = startRun(weekdayUrl);
    const resynced = await resync.exit(30 * SECOND);
    expect(resynced.code, resynced.stdout + resynced.stderr).toBe(0);
    expect(resynced.stdout).toContain('resync finished');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('after-resync', 9, 99.99)`);
    await fx.waitForConfirmed();
    expect(await compareRedisWithWeekdayTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect(await fx.redis.hget(rebuildHistoryKey(fx.config.keyPrefix), 'distribution')).toBe(weekdayUrl);
    const stoppedAgain = (await stopCli(consumer))!;
    expect(stoppedAgain.code, stoppedAgain.stderr).toBe(0);
  });
});
