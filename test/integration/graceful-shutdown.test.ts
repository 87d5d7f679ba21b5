import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { formatLsn } from '../../src/lsn.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// `budget-cdc run` as a user runs it, stopped with SIGTERM in the middle of a large transaction: it must
// exit 0 promptly, acknowledge nothing it has not written, and a new run must pick up where it stopped.

const SECOND = 1000;
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = 'bin/budget-cdc.js';
/** The contract: a graceful stop ends within this after SIGTERM. */
const STOP_TIMEOUT_MS = 10 * SECOND;
const BIG_ROWS = 200_000;
const LOG_TAIL_CHARS = 4000;
/** Settings the parent's environment might hold; the CLI gets only what this file gives it. */
const INHERITED_SETTING = /^(DATABASE_URL|REDIS_URL|LOG_LEVEL|BUDGET_CDC_.*)$/;

interface RunningCli {
  child: ChildProcess;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();

function startRun(fx: PipelineFixture): RunningCli {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!INHERITED_SETTING.test(name)) env[name] = value;
  Object.assign(env, { DATABASE_URL: fx.config.databaseUrl, REDIS_URL: fx.config.redisUrl, LOG_LEVEL: 'info' });
  const args = ['run', '--slot', fx.config.slotName, '--publication', fx.config.publicationName, '--key-prefix', fx.config.keyPrefix];
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  // Read stderr all the time: a child blocks once a pipe it writes to is full.
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, stderr: () => stderr, exited };
}

/** Sends SIGTERM and returns the exit code and how long the exit took; fails (and kills) past `timeoutMs`. */
async function terminate(cli: RunningCli, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const started = Date.now();
  expect(cli.child.kill('SIGTERM')).toBe(true);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  const outcome = await Promise.race([cli.exited, deadline]).finally(() => clearTimeout(timer));
  if (outcome === 'timeout') {
    cli.child.kill('SIGKILL');
    throw new Error(
      `budget-cdc run did not exit within ${timeoutMs} ms of SIGTERM; stderr ends with:\n${cli.stderr().slice(-LOG_TAIL_CHARS)}`,
    );
  }
  return { ...outcome, ms: Date.now() - started };
}

describe('graceful shutdown of budget-cdc run', () => {
  let fx: PipelineFixture;

  beforeAll(async () => {
    fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), 'graceful_shutdown');
  });

  afterAll(async () => {
    // A test that failed half-way may leave `run` behind: nothing started here may outlive the file.
    for (const child of children) child.kill('SIGKILL');
    if (fx !== undefined) {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, page] = await fx.redis.scan(cursor, 'MATCH', fx.config.keyPrefix + '*', 'COUNT', 1000);
        cursor = next;
        keys.push(...page);
      } while (cursor !== '0');
      for (let i = 0; i < keys.length; i += 1000) await fx.redis.unlink(...keys.slice(i, i + 1000));
      await fx.close();
    }
  });

  async function slotActive(): Promise<boolean> {
    const { rows } = await fx.sql.query<{ active: boolean }>('select active from pg_replication_slots where slot_name = $1', [
      fx.config.slotName,
    ]);
    return rows[0]?.active === true;
  }

  async function keyExists(jobId: string): Promise<boolean> {
    return (await fx.redis.exists(fx.config.keyPrefix + jobId)) === 1;
  }

  it('exits 0 within 10 s of SIGTERM in the middle of a 200k-row transaction, acknowledging nothing unwritten', async () => {
    const cli = startRun(fx);
    const withLog = (what: string) => (error: unknown) => {
      throw new Error(`${(error as Error).message}; ${what}; stderr ends with:\n${cli.stderr().slice(-LOG_TAIL_CHARS)}`, { cause: error });
    };
    // Streaming: a first row goes all the way to Redis.
    await waitFor(() => fx.confirmedLsn(), { message: 'run to create the slot' }).catch(withLog('no slot'));
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('warm-up', 2, 10.00)`);
    await waitFor(() => keyExists('warm-up'), { message: 'the first row in Redis' }).catch(withLog('not streaming'));

    // One transaction of 200k rows, like a COPY load; the consumer sees its rows only after the commit.
    await fx.sql.query('begin');
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget) select 'big-' || g, 1 + g % 30, g / 100.0 from generate_series(1, ${BIG_ROWS}) g`,
    );
    const beforeCommit = await fx.currentLsn();
    await fx.sql.query('commit');
    await waitFor(() => keyExists('big-1'), { intervalMs: 10, message: 'the first rows of the big transaction in Redis' });

    const stop = await terminate(cli, STOP_TIMEOUT_MS);
    expect(stop).toMatchObject({ code: 0, signal: null });
    expect(stop.ms).toBeLessThan(STOP_TIMEOUT_MS);
    expect(await slotActive()).toBe(false);

    // Acknowledged past the commit only if every row of the transaction is in Redis.
    const confirmed = (await fx.confirmedLsn())!;
    if (confirmed > beforeCommit) {
      expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix), `confirmed ${formatLsn(confirmed)}`).toEqual([]);
    } else {
      // The usual case: the stop came mid-transaction, and the slot stayed before its commit.
      expect(await keyExists(`big-${BIG_ROWS}`)).toBe(false);
    }
  });

  it('starts again, resumes from the slot until Redis equals the table, and exits 0 on SIGTERM again', async () => {
    const cli = startRun(fx);
    await fx.sql.query(`update jobs set budget = budget + 1 where job_id in ('warm-up', 'big-1', 'big-${BIG_ROWS}')`);
    await fx.waitForConfirmed(undefined, 40 * SECOND).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; stderr ends with:\n${cli.stderr().slice(-LOG_TAIL_CHARS)}`, { cause: error });
    });
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect(await fx.getJob(`big-${BIG_ROWS}`)).toMatchObject({ budget: '2001.00' });

    const stop = await terminate(cli, STOP_TIMEOUT_MS);
    expect(stop).toMatchObject({ code: 0, signal: null });
    expect(await slotActive()).toBe(false);
  });
});
