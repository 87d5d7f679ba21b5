import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';
import { killLiveCliProcesses, linesOf, runCli, startCli, type CliProcess } from '../support/cli-process.js';

// budget-cdc as a user runs it: `node bin/budget-cdc.js <args>` from the repository root, configured by
// DATABASE_URL and REDIS_URL, judged by its exit code, its stdout and its stderr.

const SECOND = 1000;
const DAY_MS = 86_400_000;
/** The graceful stop of `run` must end within this after SIGTERM. */
const STOP_TIMEOUT_MS = 10 * SECOND;
const ROWS = 50_000;
const UNREACHABLE_DATABASE_URL = 'postgres://budget:s3cret@127.0.0.1:1/x';
const UNREACHABLE_REDIS_URL = 'redis://127.0.0.1:1';
/** How much of a process's stderr a failure message shows. */
const LOG_TAIL_CHARS = 4000;

// The expected Redis value is computed here, apart from src/: amounts with BigInt, instants from the
// numbers the CSV was generated from.
function formatCentsExactly(cents: bigint): string {
  return `${cents / 100n}.${(cents % 100n).toString().padStart(2, '0')}`;
}

function dailySplit(cents: bigint, days: number): string[] {
  const base = cents / BigInt(days);
  const remainder = cents % BigInt(days);
  return Array.from({ length: days }, (_, day) => formatCentsExactly(base + (BigInt(day) < remainder ? 1n : 0n)));
}

/** One generated CSV row, with the instant it stands for. */
interface GeneratedJob {
  jobId: string;
  daysOnline: number;
  budgetCents: bigint;
  /** created_at floored to the millisecond. */
  createdMs: number;
  /** created_at as written in the file: a wall clock with an offset, and microseconds. */
  createdAtText: string;
}

const OFFSETS_MINUTES = [0, 5 * 60 + 30, -(3 * 60 + 30), 5 * 60 + 45, -8 * 60];

function wallClockText(ms: number, micros: number, offsetMinutes: number): string {
  const wall = new Date(ms + offsetMinutes * 60_000).toISOString(); // 2026-11-29T10:00:00.123Z
  const sign = offsetMinutes < 0 ? '-' : '+';
  const magnitude = Math.abs(offsetMinutes);
  const offset = `${sign}${String(Math.floor(magnitude / 60)).padStart(2, '0')}:${String(magnitude % 60).padStart(2, '0')}`;
  return `${wall.slice(0, 10)} ${wall.slice(11, 23)}${String(micros).padStart(3, '0')}${offset}`;
}

/** Jobs created over the last ~14 hours and online 1 to 30 days, so every one is alive for hours yet. */
function generateJobs(count: number, nowMs: number): GeneratedJob[] {
  const newest = Math.floor(nowMs / SECOND) * SECOND - 60 * SECOND;
  return Array.from({ length: count }, (_, i) => {
    const createdMs = newest - i * SECOND + (i % 1000);
    const budgetCents = i % 5000 === 0 ? 99_999_999_999_999n : BigInt(i) * 137n + BigInt(i % 3);
    return {
      jobId: `cli-${i}`,
      daysOnline: 1 + (i % 30),
      budgetCents,
      createdMs,
      // The microseconds (i % 1000) must be truncated, not rounded, to the millisecond.
      createdAtText: wallClockText(createdMs, i % 1000, OFFSETS_MINUTES[i % OFFSETS_MINUTES.length]!),
    };
  });
}

/** The JSON a job's key must hold, fields in the contract's order. */
function expectedValue(job: GeneratedJob): string {
  return JSON.stringify({
    job_id: job.jobId,
    budget: formatCentsExactly(job.budgetCents),
    days_online: job.daysOnline,
    created_at: new Date(job.createdMs).toISOString(),
    expires_at: new Date(job.createdMs + job.daysOnline * DAY_MS).toISOString(),
    daily: dailySplit(job.budgetCents, job.daysOnline),
  });
}

describe('budget-cdc CLI', () => {
  const suffix = randomBytes(3).toString('hex');
  const slot = `cli_slot_${suffix}`;
  const publication = `cli_pub_${suffix}`;
  const keyPrefix = `t:cli:${suffix}:job:`;
  /** The flags that keep this file's slot, publication and keys apart from other test files. */
  const ownNames = ['--slot', slot, '--publication', publication, '--key-prefix', keyPrefix];
  const redisUrl = inject('redisUrl');
  let database: TestDatabase;
  let env: { DATABASE_URL: string; REDIS_URL: string };
  let sql: pg.Client;
  let redis: Redis;
  let dir: string;
  let runner: CliProcess | undefined;
  let jobs: GeneratedJob[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(inject('databaseUrl'), 'cli');
    env = { DATABASE_URL: database.url, REDIS_URL: redisUrl };
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    redis = new Redis(redisUrl);
    dir = await mkdtemp(join(tmpdir(), 'budget-cdc-cli-'));
  });

  afterAll(async () => {
    // A test that failed half-way may leave `run` behind; nothing started here may outlive the file.
    await killLiveCliProcesses();
    await sql?.end();
    if (redis !== undefined) {
      const keys = await scanKeys(redis, keyPrefix);
      for (let i = 0; i < keys.length; i += 1000) await redis.unlink(...keys.slice(i, i + 1000));
      redis.disconnect();
    }
    await database?.drop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function countJobs(): Promise<number> {
    const { rows } = await sql.query<{ count: string }>('select count(*) from jobs');
    return Number(rows[0]!.count);
  }

  async function slotRow(): Promise<{ active: boolean; confirmed_flush_lsn: string | null } | undefined> {
    const { rows } = await sql.query<{ active: boolean; confirmed_flush_lsn: string | null }>(
      'select active, confirmed_flush_lsn::text from pg_replication_slots where slot_name = $1',
      [slot],
    );
    return rows[0];
  }

  /** Polls `probe` until it holds, failing at once (with its stderr) if `run` exits meanwhile. */
  async function whileRunning<T>(cli: CliProcess, probe: () => Promise<T>, message: string, timeoutMs: number): Promise<NonNullable<T>> {
    const outcome = await waitFor(
      async () => {
        if (cli.child.exitCode !== null || cli.child.signalCode !== null) return { exited: true as const };
        const value = await probe();
        return value ? { exited: false as const, value } : undefined;
      },
      { timeoutMs, intervalMs: 100, message },
    ).catch((error: unknown) => {
      const stderr = cli.output().stderr;
      throw new Error(`${(error as Error).message}; budget-cdc run's stderr ends with:\n${stderr.slice(-LOG_TAIL_CHARS)}`, {
        cause: error,
      });
    });
    if (outcome.exited) {
      const { code, signal, stderr } = await cli.closed;
      throw new Error(`budget-cdc run exited (code ${code}, signal ${signal}) while waiting for ${message}; stderr:\n${stderr}`);
    }
    return outcome.value;
  }

  it('--help exits 0 and lists the commands and settings', async () => {
    const { code, stdout, stderr } = await runCli(['--help'], {});
    expect(code).toBe(0);
    expect(stderr).toBe('');
    for (const command of ['migrate', 'run', 'load', 'status', 'dead-letters']) expect(stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    for (const setting of ['DATABASE_URL', 'REDIS_URL', '--slot', '--publication', '--key-prefix', '--batch-size'])
      expect(stdout).toContain(setting);
  });

  it('exits 2 on an unknown flag, saying which and pointing to --help', async () => {
    const { code, stdout, stderr } = await runCli(['status', '--frobnicate'], env);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(linesOf(stderr)).toHaveLength(1);
    expect(stderr).toContain('--frobnicate');
    expect(stderr).toContain('--help');
  });

  it('exits 2 on an unknown command', async () => {
    const { code, stderr } = await runCli(['frobnicate'], env);
    expect(code).toBe(2);
    expect(linesOf(stderr)).toEqual([expect.stringContaining('unknown command "frobnicate"')]);
  });

  it.each([`p@ss:w/rd%41!'\\x`, `@@::///%%''\\\\`, `a/b@c:d#e`])(
    'a password that is not percent-encoded (%s) never shows: every command exits 2 saying to percent-encode it',
    async (password) => {
      const urls = [
        { DATABASE_URL: `postgres://budget:${password}@db.example:5432/jobs`, REDIS_URL: redisUrl },
        { DATABASE_URL: `postgres://budget@127.0.0.1:1/x`, REDIS_URL: `redis://budget:${password}@cache.example:6379/0` },
      ];
      const outcomes = await Promise.all(
        urls.flatMap((urlEnv) =>
          [['status'], ['run'], ['resync'], ['dead-letters']].map((command) => runCli([...command, ...ownNames], urlEnv)),
        ),
      );
      for (const { code, stdout, stderr } of outcomes) {
        expect(code, stderr).toBe(2);
        expect(linesOf(stderr), stderr).toEqual([expect.stringMatching(/is not a valid URL.*percent-encoded/)]);
        for (const piece of password.split(/[@:/#]/).filter((p) => p.length >= 3)) expect(stdout + stderr).not.toContain(piece);
      }
    },
  );

  describe('a DATABASE_URL that is unusable: every command exits non-zero with one line naming DATABASE_URL', () => {
    const commands = [['migrate'], ['status'], ['run'], ['load', 'jobs.csv']];

    it.each([
      ['missing', undefined],
      ['not a URL', 'not a url'],
      ['unreachable', UNREACHABLE_DATABASE_URL],
    ])('%s', async (_, databaseUrl) => {
      const csv = join(dir, 'jobs.csv');
      await writeFile(csv, 'job_id,days_online,budget\nnever-loaded,1,1.00\n');
      const outcomes = await Promise.all(
        commands.map(async (command) => {
          const args = [...command.map((arg) => (arg === 'jobs.csv' ? csv : arg)), ...ownNames];
          return { command: command[0], ...(await runCli(args, { DATABASE_URL: databaseUrl, REDIS_URL: redisUrl })) };
        }),
      );
      for (const { command, code, stdout, stderr } of outcomes) {
        const context = `budget-cdc ${command} with DATABASE_URL ${databaseUrl}: ${stderr}`;
        expect(code, context).not.toBe(0);
        expect(code, context).not.toBeNull();
        expect(stdout, context).toBe('');
        expect(linesOf(stderr), context).toHaveLength(1);
        expect(stderr, context).toContain('DATABASE_URL');
        expect(stderr, context).not.toContain('s3cret');
      }
    });
  });

  it('migrate creates the table and the publication; a second migrate says the schema is up to date', async () => {
    const first = await runCli(['migrate', ...ownNames], env);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toBe(`applied 0001_create_jobs, publication ${publication} created\n`);
    const { rows } = await sql.query<{ tablename: string }>('select tablename from pg_publication_tables where pubname = $1', [
      publication,
    ]);
    expect(rows.map((row) => row.tablename)).toEqual(['jobs']);
    expect(await countJobs()).toBe(0);

    const second = await runCli(['migrate', ...ownNames], env);
    expect(second).toMatchObject({ code: 0, stdout: 'schema up to date\n', stderr: '' });
  });

  it('run exits non-zero naming REDIS_URL when Redis is unreachable, without creating the slot', async () => {
    const { code, stdout, stderr } = await runCli(['run', ...ownNames], { ...env, REDIS_URL: UNREACHABLE_REDIS_URL });
    expect(code, stderr).not.toBe(0);
    expect(code, stderr).not.toBeNull();
    expect(stdout).toBe('');
    const errorLines = linesOf(stderr).filter((line) => line.startsWith('budget-cdc: '));
    expect(errorLines, stderr).toHaveLength(1);
    expect(errorLines[0]).toContain('REDIS_URL');
    expect(await slotRow()).toBeUndefined();
  });

  it('run creates the slot and streams from it', async () => {
    runner = startCli(['run', ...ownNames], env);
    await whileRunning(runner, async () => (await slotRow())?.active === true, `slot ${slot} to be created and streamed from`, 60 * SECOND);
  });

  it(`load of a ${ROWS}-row CSV file prints "loaded ${ROWS} rows" and inserts them all`, async () => {
    jobs = generateJobs(ROWS, Date.now());
    const lines = ['job_id,days_online,budget,created_at'];
    for (const job of jobs) lines.push(`${job.jobId},${job.daysOnline},${formatCentsExactly(job.budgetCents)},${job.createdAtText}`);
    const csv = join(dir, 'jobs-50k.csv');
    await writeFile(csv, lines.join('\n') + '\n');

    const { code, stdout, stderr } = await runCli(['load', csv, ...ownNames], env);
    expect(code, stderr).toBe(0);
    expect(stdout).toBe(`loaded ${ROWS} rows\n`);
    expect(stderr).toBe('');
    expect(await countJobs()).toBe(ROWS);
  });

  it(
    `run writes all ${ROWS} rows to Redis, each value and expiry exact`,
    async () => {
      if (runner === undefined) throw new Error('run was not started by the earlier test');
      const { rows } = await sql.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn');
      const target = rows[0]!.lsn;
      await whileRunning(
        runner,
        async () => {
          const { rows: reached } = await sql.query<{ reached: boolean | null }>(
            'select confirmed_flush_lsn >= $2::pg_lsn as reached from pg_replication_slots where slot_name = $1',
            [slot, target],
          );
          return reached[0]?.reached === true;
        },
        `slot ${slot} to confirm ${target}`,
        150 * SECOND,
      );

      expect((await scanKeys(redis, keyPrefix)).length).toBe(ROWS);
      const samples = [0, 1, 2, 3, 4, 999, 12_345, 25_000, ROWS - 1].map((i) => jobs[i]!);
      for (const job of samples) {
        expect(await redis.get(keyPrefix + job.jobId), job.jobId).toBe(expectedValue(job));
        expect(await redis.pexpiretime(keyPrefix + job.jobId), job.jobId).toBe(job.createdMs + job.daysOnline * DAY_MS);
      }
      expect(await compareRedisWithTable(sql, redis, keyPrefix)).toEqual([]);
    },
    240 * SECOND,
  );

  it('run stops on SIGTERM within 10 s with exit code 0, leaving the slot inactive', async () => {
    if (runner === undefined) throw new Error('run was not started by the earlier test');
    expect(runner.child.kill('SIGTERM')).toBe(true);
    const { code, signal, stdout, stderr } = await runner.exit(STOP_TIMEOUT_MS);
    expect({ code, signal }, stderr).toEqual({ code: 0, signal: null });
    expect(stdout).toBe('');
    // Logs go to stderr as JSON lines when stderr is not a terminal.
    const logs = linesOf(stderr).map((line) => JSON.parse(line) as { msg?: string });
    expect(logs.map((log) => log.msg)).toContain('stopped');
    await waitFor(async () => (await slotRow())?.active === false, { timeoutMs: 10 * SECOND, message: `slot ${slot} to be released` });
  });

  it("load of a file with a bad line exits non-zero with one line naming the line and PostgreSQL's message, and adds no rows", async () => {
    const csv = join(dir, 'bad-line.csv');
    await writeFile(csv, 'job_id,days_online,budget\nbad-1,2,1.00\nbad-2,abc,1.00\nbad-3,3,1.00\n');
    const { code, stdout, stderr } = await runCli(['load', csv, ...ownNames], env);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(stdout).toBe('');
    const lines = linesOf(stderr);
    expect(lines, stderr).toHaveLength(1);
    expect(lines[0]).toContain('line 3');
    expect(lines[0]).toContain('invalid input syntax for type integer: "abc"');
    expect(await countJobs()).toBe(ROWS);
    const { rowCount } = await sql.query(`select 1 from jobs where job_id like 'bad-%'`);
    expect(rowCount).toBe(0);
  });

  it('status --json prints the slot and Redis as JSON', async () => {
    const { code, stdout, stderr } = await runCli(['status', '--json', ...ownNames], env);
    expect(code, stderr).toBe(0);
    expect(stderr).toBe('');
    expect(linesOf(stdout)).toHaveLength(1);
    const report = JSON.parse(stdout) as {
      slot: { name: string; exists: boolean; active: boolean; confirmedLsn: string | null };
      redis: { reachable: boolean; error: string | null };
    };
    expect(report.slot).toMatchObject({ name: slot, exists: true, active: false });
    expect(report.slot.confirmedLsn).toBe((await slotRow())?.confirmed_flush_lsn);
    expect(report.redis).toMatchObject({ reachable: true, error: null });
  });
});

/** Every key under `prefix` (SCAN, so the shared Redis is never blocked). */
async function scanKeys(redis: Redis, prefix: string): Promise<string[]> {
  const pattern = prefix.replace(/[*?[\]\\]/g, '\\$&') + '*';
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}
