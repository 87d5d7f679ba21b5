import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { StatusReport } from '../../src/commands/status.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, killLiveCliProcesses, linesOf, runCli, startCli, type CliProcess } from '../support/cli-process.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { waitFor } from '../support/wait-for.js';

// What an operator uses, as a subprocess against real servers: the HTTP endpoint of a running consumer,
// `status` and its exit codes, `inspect`, and passwords that never show in output, errors or logs.

const SECOND = 1000;
const STOP_TIMEOUT_MS = 10 * SECOND;

interface Readyz {
  ready: boolean;
  reasons: string[];
  slotActive: boolean | null;
  lagBytes: number | null;
  lagSeconds: number | null;
}

/** `status --json` is the StatusReport, as JSON. */
type StatusJson = StatusReport;

describe('operations: health endpoint, status, inspect, masked passwords', () => {
  const suffix = randomBytes(3).toString('hex');
  const pgPassword = `pg-s3cret-${suffix}`;
  const redisPassword = `redis-s3cret-${suffix}`;
  const pgUser = `ops_user_${suffix}`;
  const redisUser = `ops_user_${suffix}`;
  const slot = `ops_slot_${suffix}`;
  const keyPrefix = `t:ops:${suffix}:job:`;
  const ownNames = ['--slot', slot, '--publication', `ops_pub_${suffix}`, '--key-prefix', keyPrefix];
  let database: TestDatabase;
  let redisServer: RedisServer;
  let sql: pg.Client;
  let redis: Redis;
  let env: Record<string, string>;
  let httpPort: number;
  let runner: CliProcess | undefined;
  /** stdout and stderr of every process started here, to look for passwords at the end. */
  const outputs: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(inject('databaseUrl'), 'ops');
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    // The test server trusts local connections, so the password is not checked, but it is in the URL.
    await sql.query(`create role ${pgUser} login superuser password '${pgPassword}'`);
    // A Redis of this file's own: it is stopped below, and gets a user with a password.
    redisServer = await startRedis();
    redis = new Redis(redisServer.url);
    redis.on('error', () => undefined); // this file stops the server on purpose
    await addRedisUser();
    const databaseUrl = new URL(database.url);
    databaseUrl.username = pgUser;
    databaseUrl.password = pgPassword;
    env = {
      DATABASE_URL: databaseUrl.toString(),
      REDIS_URL: `redis://${redisUser}:${redisPassword}@127.0.0.1:${redisServer.port}`,
      LOG_LEVEL: 'debug',
    };
    httpPort = await freePort();
  });

  afterAll(async () => {
    await killLiveCliProcesses();
    redis?.disconnect();
    await redisServer?.stop();
    await sql?.end();
    await database?.drop();
    const admin = new pg.Client({ connectionString: inject('databaseUrl') });
    await admin.connect();
    await admin.query(`drop role if exists ${pgUser}`);
    await admin.end();
  });

  async function addRedisUser(): Promise<void> {
    expect(await redis.call('ACL', 'SETUSER', redisUser, 'on', `>${redisPassword}`, '~*', '&*', '+@all')).toBe('OK');
  }

  function startRun(extra: string[] = []): CliProcess {
    const cli = startCli(['run', ...ownNames, '--http-port', String(httpPort), ...extra], env);
    void cli.closed.then(({ stdout, stderr }) => outputs.push(stdout, stderr));
    return cli;
  }

  async function cli(args: string[], extraEnv: Record<string, string> = {}) {
    const outcome = await runCli([...args, ...ownNames], { ...env, ...extraEnv });
    outputs.push(outcome.stdout, outcome.stderr);
    return outcome;
  }

  async function get(path: string, method = 'GET'): Promise<{ status: number; contentType: string | null; body: string }> {
    const response = await fetch(`http://127.0.0.1:${httpPort}${path}`, { method });
    return { status: response.status, contentType: response.headers.get('content-type'), body: await response.text() };
  }

  async function readyz(): Promise<{ status: number; body: Readyz }> {
    const { status, body } = await get('/readyz');
    return { status, body: JSON.parse(body) as Readyz };
  }

  /** The value of an unlabelled (or exactly labelled) sample in Prometheus text. */
  function sample(metrics: string, name: string): number | undefined {
    const line = linesOf(metrics).find((l) => l.startsWith(name + ' '));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  }

  async function insertJob(jobId: string, createdAt = 'now()'): Promise<void> {
    await sql.query(`insert into jobs (job_id, days_online, budget, created_at) values ($1, 3, 100.00, ${createdAt})`, [jobId]);
  }

  async function waitForKey(jobId: string): Promise<string> {
    return waitFor(() => redis.get(keyPrefix + jobId), { timeoutMs: 30 * SECOND, message: `key ${keyPrefix + jobId}` });
  }

  async function stopRun(): Promise<void> {
    const cli = runner!;
    runner = undefined;
    cli.child.kill('SIGTERM');
    const { code, stderr } = await cli.exit(STOP_TIMEOUT_MS);
    expect(code, stderr).toBe(0);
  }

  it('run serves /healthz, and /readyz answers 200 once it streams', async () => {
    runner = startRun();
    const health = await waitFor(() => get('/healthz').catch(() => undefined), { timeoutMs: 60 * SECOND, message: '/healthz to answer' });
    expect(health).toMatchObject({ status: 200, body: 'ok\n' });
    const ready = await waitFor(async () => ((await readyz()).status === 200 ? readyz() : undefined), {
      timeoutMs: 60 * SECOND,
      message: '/readyz to answer 200',
    });
    expect(ready.body).toMatchObject({ ready: true, reasons: [], slotActive: true });
    expect(ready.body.lagBytes).toBeGreaterThanOrEqual(0);
    expect(ready.body.lagSeconds).toBeGreaterThanOrEqual(0);
  });

  it('/metrics counts what the consumer did, in Prometheus text with the budget_cdc_ prefix', async () => {
    const before = (await get('/metrics')).body;
    const writesBefore = sample(before, 'budget_cdc_redis_writes_total') ?? NaN;
    await insertJob('ops-1');
    await insertJob('ops-2');
    await waitForKey('ops-1');
    await waitForKey('ops-2');
    const metrics = await waitFor(
      async () => {
        const text = (await get('/metrics')).body;
        return (sample(text, 'budget_cdc_redis_writes_total') ?? 0) >= writesBefore + 2 ? text : undefined;
      },
      { message: 'budget_cdc_redis_writes_total to count the two inserts' },
    );
    const response = await get('/metrics');
    expect(response.status).toBe(200);
    expect(response.contentType).toContain('text/plain');
    expect(sample(metrics, 'budget_cdc_batches_written_total')).toBeGreaterThanOrEqual(1);
    expect(sample(metrics, 'budget_cdc_rows_applied_total')).toBeGreaterThanOrEqual(2);
    expect(sample(metrics, 'budget_cdc_transactions_applied_total')).toBeGreaterThanOrEqual(2);
    expect(sample(metrics, 'budget_cdc_stage_duration_seconds_count{stage="write"}')).toBeGreaterThanOrEqual(1);
    expect(sample(metrics, 'budget_cdc_acknowledgements_total')).toBeGreaterThanOrEqual(1);
    expect(sample(metrics, 'budget_cdc_acknowledged_lsn')).toBeGreaterThan(0);
    expect(sample(metrics, 'budget_cdc_slot_active')).toBe(1);
    expect(sample(metrics, 'budget_cdc_sessions_started_total')).toBe(1);
    expect(sample(metrics, 'budget_cdc_resyncs_total{cause="new_slot"}')).toBe(1); // the new slot's initial load
    expect(sample(metrics, 'budget_cdc_resyncs_total{cause="redis_went_back"}')).toBe(0);
    expect(sample(metrics, 'budget_cdc_active')).toBe(1);
    expect(sample(metrics, 'budget_cdc_reconnects_total')).toBe(0);
    expect(sample(metrics, 'budget_cdc_lag_bytes')).toBeGreaterThanOrEqual(0);
    expect(sample(metrics, 'budget_cdc_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(sample(metrics, 'budget_cdc_retained_wal_bytes')).toBeGreaterThanOrEqual(0);
    expect(sample(metrics, 'budget_cdc_process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(metrics).toMatch(/^# TYPE budget_cdc_dead_letters_total counter$/m);
    expect(metrics).toMatch(/^# TYPE budget_cdc_redis_errors_total counter$/m);
  });

  it('answers 404 elsewhere and 405 to other methods', async () => {
    expect((await get('/nothing-here')).status).toBe(404);
    expect((await get('/metrics', 'POST')).status).toBe(405);
  });

  it('status exits 0 when healthy and shows the lag, the checkpoint and the dead letters', async () => {
    const { code, stdout, stderr } = await cli(['status', '--json']);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as StatusJson;
    expect(report.slot).toMatchObject({ name: slot, exists: true, active: true, walStatus: 'reserved' });
    // Measured by the running consumer and published in Redis.
    expect(report.slot.lagSeconds).toBeGreaterThanOrEqual(0);
    expect(report.redis).toMatchObject({ reachable: true, error: null, deadLetters: 0 });
    expect(report.redis.checkpoint).toMatch(/^[0-9A-F]+\/[0-9A-F]+#-?\d+ ack=[0-9A-F]+\/[0-9A-F]+ writer=[0-9a-f]{8}$/);
    expect(report.health).toEqual({ exitCode: 0, problems: [], maxLagBytes: 1024 ** 3, maxLagSeconds: 300 });

    const text = await cli(['status']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^slot .*: active, confirmed [0-9A-F]+\/[0-9A-F]+, wal_status reserved$/m);
    expect(text.stdout).toMatch(/^consumers: active budget-cdc \S+ pid \d+$/m);
    expect(text.stdout).toMatch(/^rebuilds from the table: 1 new slot; last \S+ \(new slot\): new slot: loading the rows alive/m);
    expect(text.stdout).toMatch(/^healthy$/m);
    expect(report.redis.rebuilds).toMatchObject({ counts: { 'new-slot': 1 } });
    expect(report.consumers).toEqual([expect.objectContaining({ role: 'active' })]);
  });

  it('inspect shows the row and the key side by side; exit 0 when they agree', async () => {
    const { code, stdout, stderr } = await cli(['inspect', 'ops-1', '--json']);
    expect(code, stderr).toBe(0);
    const inspection = JSON.parse(stdout) as {
      row: { budget: string; days_online: number } | null;
      redis: { value: string; pexpiretime: number } | null;
      expected: { value: string; pexpiretime: number } | null;
      agree: boolean;
    };
    expect(inspection.row).toMatchObject({ budget: '100.00', days_online: 3 });
    expect(inspection.agree).toBe(true);
    expect(inspection.redis).toEqual(inspection.expected);
    expect(inspection.redis!.value).toBe(await redis.get(keyPrefix + 'ops-1'));
    expect(inspection.redis!.pexpiretime).toBe(await redis.pexpiretime(keyPrefix + 'ops-1'));
    const parsed = JSON.parse(inspection.redis!.value) as { daily: string[] };
    expect(parsed.daily).toEqual(['33.34', '33.33', '33.33']);

    const text = await cli(['inspect', 'ops-1']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ {2}postgres {2}days_online 3, budget 100\.00, created_at /m);
    expect(text.stdout).toMatch(/^agree: yes$/m);
  });

  it('inspect exits 3 and says what differs when the key was changed behind the consumer', async () => {
    await insertJob('ops-tampered');
    await waitForKey('ops-tampered');
    expect(await redis.set(keyPrefix + 'ops-tampered', '{"job_id":"ops-tampered"}', 'KEEPTTL')).toBe('OK');
    const { code, stdout } = await cli(['inspect', 'ops-tampered']);
    expect(code).toBe(3);
    expect(stdout).toMatch(/^agree: no \(the values differ\)/m);

    const missing = await cli(['inspect', 'ops-never-inserted']);
    expect(missing.code).toBe(0);
    expect(missing.stdout).toContain('no key: the job has no row in PostgreSQL');
  });

  it('a row that cannot be processed: inspect expects no key, status counts the dead letter', async () => {
    await insertJob('ops-infinity', "'infinity'");
    await waitFor(async () => (await redis.llen(`budget-cdc:dead-letters:${slot}`)) === 1, { message: 'the dead letter' });
    const { code, stdout } = await cli(['inspect', 'ops-infinity', '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      redis: null,
      expected: null,
      agree: true,
      noKeyBecause: expect.stringContaining('dead letters'),
    });
    const status = JSON.parse((await cli(['status', '--json'])).stdout) as StatusJson;
    expect(status.redis.deadLetters).toBe(1);
  });

  it('logs a line per batch at debug, as JSON lines', async () => {
    const logs = linesOf(runner!.output().stderr).map((line) => JSON.parse(line) as { msg: string; writes?: number; component?: string });
    expect(logs.filter((log) => log.msg === 'batch written').length).toBeGreaterThanOrEqual(1);
    expect(logs.find((log) => log.msg === 'serving /healthz, /readyz and /metrics')).toMatchObject({ component: 'http' });
  });

  it('status exits 3 when the lag passes --max-lag-bytes, 4 when the slot is missing, 1 when Redis refuses', async () => {
    await stopRun();
    // With no consumer, new WAL is lag for sure.
    await insertJob('ops-while-stopped');
    const lagging = await cli(['status', '--json', '--max-lag-bytes', '0']);
    expect(lagging.code).toBe(3);
    const report = JSON.parse(lagging.stdout) as StatusJson;
    expect(report.slot.active).toBe(false);
    expect(report.slot.lagBytes).toBeGreaterThan(0);
    expect(report.health.problems).toEqual([expect.stringMatching(/^lag \d+ bytes is over --max-lag-bytes 0$/)]);
    expect((await cli(['status'])).code).toBe(0);

    const missing = await runCli(['status', '--slot', `ops_missing_${suffix}`, '--key-prefix', keyPrefix], env);
    expect(missing.code).toBe(4);
    expect(missing.stdout).toContain('does not exist');

    const wrongPassword = await cli(['status'], { REDIS_URL: `redis://${redisUser}:${redisPassword}-wrong@127.0.0.1:${redisServer.port}` });
    expect(wrongPassword.code).toBe(1);
    expect(wrongPassword.stdout).toMatch(/^redis redis:\/\/ops_user_\w+:\*\*\*@127\.0\.0\.1:\d+: unreachable \(.+\)$/m);
  });

  it('/readyz answers 503 with the reason while Redis is down; status exits 1', async () => {
    runner = startRun();
    await waitFor(async () => (await readyz().catch(() => undefined))?.status === 200, { timeoutMs: 60 * SECOND, message: '/readyz 200' });
    await redisServer.stop();
    const notReady = await waitFor(
      async () => {
        const answer = await readyz();
        return answer.status === 503 ? answer : undefined;
      },
      { message: '/readyz to answer 503' },
    );
    expect(notReady.body.ready).toBe(false);
    expect(notReady.body.reasons).toContain('Redis is not connected');
    expect((await get('/healthz')).status).toBe(200);

    const status = await cli(['status']);
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/^unhealthy \(exit 1\): Redis does not answer: /m);

    const refused = await cli(['run', '--http-port', '0']);
    expect(refused.code).toBe(1);
    expect(linesOf(refused.stderr).filter((line) => line.startsWith('budget-cdc: '))).toEqual([expect.stringContaining('REDIS_URL')]);

    const stopping = runner!;
    runner = undefined;
    stopping.child.kill('SIGTERM');
    await stopping.exit(STOP_TIMEOUT_MS);
    await redisServer.start();
    await addRedisUser();
  });

  it('no password appears in any output, error or log line of the commands above', () => {
    expect(outputs.length).toBeGreaterThan(10);
    const all = outputs.join('\n');
    expect(all).toContain('***'); // the URLs were printed, masked
    expect(all).not.toContain(pgPassword);
    expect(all).not.toContain(redisPassword);
    expect(all).not.toContain(encodeURIComponent(pgPassword));
  });
});
