import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { StatusReport } from '../../src/commands/status.js';
import { checkpointKey } from '../../src/sink/internal-keys.js';
import { killLiveCliProcesses, runCli, startCli } from '../support/cli-process.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { startRedis } from '../support/redis-server.js';
import { startTlsRedis } from '../support/redis-tls.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// REDIS_URL forms that ioredis reads: the batch writer must read them the same way (it takes ioredis's parsed
// options), or writes and checkpoint land in different databases, or the writer cannot log in or reach the
// server, and the consumer resyncs or fails in a loop.

const SECOND = 1000;
const USER = 'budget_cdc_url_test';
/** Characters that must be percent-encoded in a URL. */
const PASSWORD = `p@ss:w/rd%'x`;
const ROWS = 2000;

describe('REDIS_URL read the same way by both Redis connections', () => {
  const base = new URL(inject('redisUrl'));
  let admin: Redis;
  /** Run last first: consumers stop before the servers they write to. */
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    admin = new Redis(inject('redisUrl'));
    expect(await admin.call('ACL', 'SETUSER', USER, 'on', `>${PASSWORD}`, '~*', '&*', '+@all')).toBe('OK');
  });

  afterAll(async () => {
    await killLiveCliProcesses();
    for (const cleanup of cleanups.reverse()) await cleanup();
    await admin?.call('ACL', 'DELUSER', USER);
    admin?.disconnect();
  });

  async function fixture(redisUrl: string, name: string): Promise<PipelineFixture> {
    const fx = await makePipelineFixture(inject('databaseUrl'), redisUrl, name);
    cleanups.push(() => fx.close());
    return fx;
  }

  /** Runs the pipeline in this process on `fx`'s REDIS_URL through the initial load and ROWS inserts; returns the rebuilds' causes. */
  async function runConsumer(fx: PipelineFixture): Promise<string[]> {
    const consumer = await fx.startConsumer();
    const rebuilds: string[] = [];
    consumer.events.on('resync-started', ({ cause }) => rebuilds.push(cause));
    await waitFor(async () => (await fx.redis.exists(checkpointKey(fx.config.keyPrefix))) === 1, { message: 'the initial load' });
    await insertRows(fx);
    await fx.waitForConfirmed();
    return rebuilds;
  }

  async function insertRows(fx: PipelineFixture): Promise<void> {
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'url-' || g, 2, 5.00 from generate_series(1, ${ROWS}) g`);
  }

  /**
   * Checks, through clients of the test's own (`open(db)`), that the keys and the checkpoint are in database `db` and
   * agree with the table, and that the batch writer (CLIENT LIST name=budget-cdc-writer-<slot>) is connected in `db`.
   * Returns the writer's CLIENT LIST lines, for more checks.
   */
  async function expectWrittenIn(fx: PipelineFixture, db: number, open: (db: number) => Redis): Promise<string[]> {
    const inDatabase = open(db);
    const inDatabaseZero = open(0);
    try {
      expect(await compareRedisWithTable(fx.sql, inDatabase, fx.config.keyPrefix)).toEqual([]);
      expect(await inDatabase.exists(fx.config.keyPrefix + 'url-1', checkpointKey(fx.config.keyPrefix))).toBe(2);
      expect(await inDatabaseZero.exists(fx.config.keyPrefix + 'url-1', checkpointKey(fx.config.keyPrefix))).toBe(0);
      const clients = ((await inDatabase.call('CLIENT', 'LIST', 'TYPE', 'normal')) as string)
        .split('\n')
        .filter((line) => line.includes(` name=budget-cdc-writer-${fx.config.slotName} `));
      expect(clients.length).toBeGreaterThan(0);
      for (const line of clients) expect(line).toContain(` db=${db} `);
      return clients;
    } finally {
      inDatabase.disconnect();
      inDatabaseZero.disconnect();
    }
  }

  it.each([
    ['the database in the path', `redis://${base.host}/4`, 4],
    ['the database in the query string', `redis://${base.host}?db=3`, 3],
    ['a user and a percent-encoded password', `redis://${USER}:${encodeURIComponent(PASSWORD)}@${base.host}/5`, 5],
  ])('%s: jobs and checkpoint in that database, as that user, with no resync after the first load', async (name, redisUrl, db) => {
    const fx = await fixture(redisUrl, `redis_url_${db}`);
    const rebuilds = await runConsumer(fx);
    const writer = await expectWrittenIn(fx, db, (db) => new Redis(`${inject('redisUrl')}/${db}`));
    // The batch writer is connected as that user, like ioredis's connection.
    for (const line of writer) expect(line).toContain(` user=${name.includes('user') ? USER : 'default'} `);
    expect(rebuilds).toEqual(['new-slot']);
  });

  it('an IPv6 address in brackets: both connections reach the server over IPv6, in that database', async () => {
    const server = await startRedis({ extraArgs: ['--bind', '127.0.0.1 ::1'] });
    cleanups.push(() => server.stop());
    const db = 7;
    const fx = await fixture(`redis://[::1]:${server.port}/${db}`, 'redis_url_ipv6');
    const rebuilds = await runConsumer(fx);
    const writer = await expectWrittenIn(fx, db, (db) => new Redis(`${server.url}/${db}`));
    for (const line of writer) expect(line).toContain(` laddr=[::1]:${server.port} `);
    expect(rebuilds).toEqual(['new-slot']);
  });

  it.each([
    ['an IP address', '127.0.0.1', 6, /^127\.0\.0\.1$/],
    ['an IPv6 address in brackets', '[::1]', 8, /^\[::1\]$/],
    // localhost may resolve to either; the server listens on both.
    ['a host name', 'localhost', 9, /^(127\.0\.0\.1|\[::1\])$/],
  ])(
    'rediss:// with %s: `budget-cdc run` writes over TLS, trusting the CA of NODE_EXTRA_CA_CERTS, in that database',
    async (_, host, db, address) => {
      const server = await startTlsRedis();
      cleanups.push(() => server.stop());
      const fx = await fixture(`rediss://${host}:${server.port}/${db}`, `redis_url_tls_${db}`);
      // The fixture's own client does not trust the test CA (this process started without NODE_EXTRA_CA_CERTS): the
      // checks go through clients given it.
      fx.redis.disconnect();
      const open = (db: number) => new Redis(`${server.url}/${db}`, { tls: { ca: server.ca } });
      const env = { ...fx.cliEnv(), NODE_EXTRA_CA_CERTS: server.caPath, LOG_LEVEL: 'info' };
      const run = startCli(['run', '--http-port', '0'], env);

      const reader = open(db);
      try {
        // A run that cannot connect (say, refuses the certificate) exits: no need to wait for the deadline then.
        await waitFor(async () => run.child.exitCode !== null || (await reader.exists(checkpointKey(fx.config.keyPrefix))) === 1, {
          timeoutMs: 30 * SECOND,
          message: 'the initial load',
        });
        if (run.child.exitCode !== null) throw new Error(`budget-cdc run exited with code ${run.child.exitCode}`);
        await insertRows(fx);
        await waitFor(async () => (await compareRedisWithTable(fx.sql, reader, fx.config.keyPrefix)).length === 0, {
          timeoutMs: 30 * SECOND,
          message: 'the keys to agree with the table',
        });
      } catch (error) {
        throw new Error(`${(error as Error).message}\nbudget-cdc run's stderr:\n${run.output().stderr}`, { cause: error });
      } finally {
        reader.disconnect();
      }
      const writer = await expectWrittenIn(fx, db, open);
      // --port 0: the server has no plain port, so the writer's connection to it is TLS.
      for (const line of writer)
        expect(/ laddr=(\S+):(\d+) /.exec(line)?.slice(1)).toEqual([expect.stringMatching(address), String(server.port)]);

      const status = await runCli(['status', '--json'], env);
      expect(status.code, status.stdout + status.stderr).toBe(0);
      const report = JSON.parse(status.stdout) as StatusReport;
      expect(report.redis.reachable).toBe(true);
      expect(report.redis.rebuilds?.counts).toEqual({ 'new-slot': 1 });

      run.child.kill('SIGTERM');
      const outcome = await run.exit(30 * SECOND);
      expect(outcome.code, outcome.stderr).toBe(0);
      // No server name (SNI) is sent for an IP address: Node would warn (DEP0123).
      expect(outcome.stderr).not.toContain('DEP0123');
    },
  );
});
