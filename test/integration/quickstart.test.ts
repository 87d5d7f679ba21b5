import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { isAlive } from '../../src/process-alive.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, killLiveCliProcesses, startCli, type CliProcess } from '../support/cli-process.js';
import { waitFor } from '../support/wait-for.js';

// `budget-cdc start` (npm start) on a machine where no server runs for it: with DATABASE_URL and REDIS_URL
// unset, it starts its own PostgreSQL and Redis with their data in a folder, and keeps the data between runs.

const SECOND = 1000;
const START_TIMEOUT_MS = 120 * SECOND;
const STOP_TIMEOUT_MS = 30 * SECOND;

interface Banner {
  databaseUrl: string;
  redisUrl: string;
}

describe('quickstart: budget-cdc start with local servers', () => {
  let root: string;
  let dataDir: string;
  let httpPort: number;
  let first: Banner;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'budget-cdc-quickstart-'));
    // As root, PostgreSQL runs as the postgres user, who must be able to enter the folder.
    await chmod(root, 0o755);
    dataDir = join(root, 'data');
    httpPort = await freePort();
  });

  afterAll(async () => {
    await killLiveCliProcesses();
    // Servers of a start that was killed (a failed test) run on in their own process group.
    for (const pidFile of [join(dataDir, 'postgres', 'postmaster.pid'), join(dataDir, 'redis', 'redis.pid')]) {
      const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).split('\n')[0]);
      if (Number.isInteger(pid) && pid > 0) killQuietly(pid);
    }
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
  });

  function start(): CliProcess {
    return startCli(['start', '--data-dir', dataDir], { BUDGET_CDC_HTTP_PORT: String(httpPort), LOG_LEVEL: 'info' });
  }

  async function banner(cli: CliProcess): Promise<Banner> {
    return waitFor(
      () => {
        const { stdout, stderr } = cli.output();
        if (cli.child.exitCode !== null) throw new Error(`start exited with ${cli.child.exitCode}: ${stderr}`);
        const databaseUrl = /^ {2}PostgreSQL {2}(\S+)$/m.exec(stdout)?.[1];
        const redisUrl = /^ {2}Redis {7}(\S+)$/m.exec(stdout)?.[1];
        return databaseUrl && redisUrl && stdout.includes('Insert a job') ? { databaseUrl, redisUrl } : undefined;
      },
      { timeoutMs: START_TIMEOUT_MS, intervalMs: 200, message: 'the quickstart to print its URLs' },
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\nstdout: ${cli.output().stdout}\nstderr: ${cli.output().stderr}`, { cause: error });
    });
  }

  async function withServers<T>(urls: Banner, fn: (sql: pg.Client, redis: Redis) => Promise<T>): Promise<T> {
    const sql = new pg.Client({ connectionString: urls.databaseUrl });
    await sql.connect();
    const redis = new Redis(urls.redisUrl);
    try {
      return await fn(sql, redis);
    } finally {
      await sql.end();
      redis.disconnect();
    }
  }

  async function stop(cli: CliProcess): Promise<void> {
    const pids = await serverPids();
    expect(pids.length).toBe(2);
    cli.child.kill('SIGTERM');
    const { code, stderr } = await cli.exit(STOP_TIMEOUT_MS);
    expect(code, stderr).toBe(0);
    // The local servers stopped too.
    for (const pid of pids) expect(isAlive(pid), `server pid ${pid}`).toBe(false);
  }

  async function serverPids(): Promise<number[]> {
    const files = [join(dataDir, 'postgres', 'postmaster.pid'), join(dataDir, 'redis', 'redis.pid')];
    const pids = await Promise.all(files.map(async (file) => Number((await readFile(file, 'utf8').catch(() => '')).split('\n')[0])));
    return pids.filter((pid) => Number.isInteger(pid) && pid > 0);
  }

  it(
    'starts PostgreSQL and Redis, prints their URLs, and streams an inserted job to its key',
    async () => {
      const cli = start();
      first = await banner(cli);
      expect(first.databaseUrl).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/budget_cdc$/);
      expect(first.redisUrl).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      const { stdout } = cli.output();
      expect(stdout).toContain(`psql ${first.databaseUrl} -c "insert into jobs (job_id, days_online, budget) values ('J-1', 3, 100.00)"`);
      expect(stdout).toMatch(/redis-cli -h 127\.0\.0\.1 -p \d+ get job:J-1/);

      await withServers(first, async (sql, redis) => {
        const { rows } = await sql.query<{ wal_level: string }>('show wal_level');
        expect(rows[0]!.wal_level).toBe('logical');
        await sql.query(`insert into jobs (job_id, days_online, budget) values ('J-1', 3, 100.00)`);
        const value = await waitFor(() => redis.get('job:J-1'), { timeoutMs: 30 * SECOND, message: 'key job:J-1' });
        expect(JSON.parse(value)).toMatchObject({ job_id: 'J-1', budget: '100.00', daily: ['33.34', '33.33', '33.33'] });
      });
      const readyz = await waitFor(
        async () => {
          const response = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
          const body = await response.text();
          return response.status === 200 ? body : undefined;
        },
        { timeoutMs: 30 * SECOND, message: '/readyz to answer 200' },
      );
      expect(JSON.parse(readyz)).toMatchObject({ ready: true, slotActive: true });
      await stop(cli);
    },
    3 * START_TIMEOUT_MS,
  );

  it(
    'starts again on the same data: the row and the key are still there, and new rows stream',
    async () => {
      const cli = start();
      const again = await banner(cli);
      expect(again).toEqual(first);
      await withServers(again, async (sql, redis) => {
        const { rows } = await sql.query<{ job_id: string }>('select job_id from jobs');
        expect(rows).toEqual([{ job_id: 'J-1' }]);
        expect(JSON.parse((await redis.get('job:J-1'))!)).toMatchObject({ job_id: 'J-1' });
        await sql.query(`insert into jobs (job_id, days_online, budget) values ('J-2', 1, 5.00)`);
        await waitFor(() => redis.get('job:J-2'), { timeoutMs: 30 * SECOND, message: 'key job:J-2' });
      });
      // Redis kept its checkpoint, so the consumer resumed from the slot instead of reloading the table.
      expect(cli.output().stderr).not.toContain('resync from the table started');
      await stop(cli);
    },
    3 * START_TIMEOUT_MS,
  );
});

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}
