import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ObservedConsumer as Consumer } from '../../src/commands/observed-consumer.js';
import { evaluateReadiness } from '../../src/ops/readiness.js';
import type { StatusReport } from '../../src/commands/status.js';
import { killLiveCliProcesses, runCli } from '../support/cli-process.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { startPostgres, type PostgresServer } from '../support/postgres-server.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// A consumer whose sessions keep failing on something transient must say so where operators look, whatever
// the lag: status (exit 7), /readyz, the metrics, and resync. The failure here is a real one: other
// replication clients take every WAL sender (max_wal_senders), so each new session is refused.

const SECOND = 1000;
const MAX_WAL_SENDERS = 3;
const THRESHOLDS = { maxLagBytes: 1 << 30, maxLagSeconds: 300 };

describe('a consumer that keeps failing says so', () => {
  let server: PostgresServer;
  let fx: PipelineFixture;
  let consumer: Consumer;
  const grabbers: pg.Client[] = [];

  beforeAll(async () => {
    server = await startPostgres({ extraSettings: { max_wal_senders: String(MAX_WAL_SENDERS) } });
    fx = await makePipelineFixture(server.url, inject('redisUrl'), 'failing_consumer');
    consumer = await fx.startConsumer();
    await waitFor(() => consumer.health().streaming, { message: 'the consumer to stream' });
  });

  afterAll(async () => {
    await killLiveCliProcesses();
    await releaseWalSenders();
    await fx?.close();
    await server?.stop();
  });

  /** Opens a replication connection, which holds a WAL sender; false when the server refuses it. */
  async function grabWalSender(): Promise<boolean> {
    const client = new pg.Client({ connectionString: fx.database.url, replication: 'database' } as pg.ClientConfig);
    client.on('error', () => undefined);
    try {
      await client.connect();
      grabbers.push(client);
      return true;
    } catch {
      return false;
    }
  }

  async function releaseWalSenders(): Promise<void> {
    await Promise.all(grabbers.splice(0).map((client) => client.end().catch(() => undefined)));
  }

  /** Ends the consumer's replication session and takes every WAL sender before its next session can. */
  async function takeEveryWalSender(): Promise<void> {
    while (grabbers.length < MAX_WAL_SENDERS - 1) expect(await grabWalSender()).toBe(true);
    await waitFor(
      async () => {
        await fx.sql.query('select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1 and active', [
          fx.config.slotName,
        ]);
        // The terminated walsender frees its place as its process exits: try for a moment, then end the session again.
        return await waitFor(() => grabWalSender(), { timeoutMs: 2 * SECOND, message: 'a free WAL sender' }).catch(() => false);
      },
      { timeoutMs: 30 * SECOND, message: "the consumer's WAL sender" },
    );
  }

  it(
    'status exits 7 with the last error, /readyz and the metric say it, resync knows; it converges once the cause is gone',
    async () => {
      await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('before', 2, 1.00)`);
      await fx.waitForConfirmed();
      await takeEveryWalSender();
      await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('while-failing', 2, 1.00)`);
      const failing = await waitFor(
        () => {
          const state = consumer.health().failing;
          return state !== undefined && state.consecutiveFailures >= 2 ? state : undefined;
        },
        { timeoutMs: 30 * SECOND, message: 'two failed sessions in a row' },
      );
      expect(failing.lastError).toMatch(/max_wal_senders/);

      const readiness = evaluateReadiness(consumer.health(), THRESHOLDS, Date.now());
      expect(readiness.ready).toBe(false);
      expect(readiness.reasons).toContainEqual(
        expect.stringMatching(/^the consumer failed \d+ times in a row since .*: .*max_wal_senders/),
      );
      expect(
        Number((await consumer.metrics.getSingleMetricAsString('budget_cdc_consecutive_failures')).split(' ').at(-1)),
      ).toBeGreaterThanOrEqual(2);

      // The lag is small; status fails because of the consumer.
      const status = await runCli(['status', '--json'], fx.cliEnv());
      expect(status.code, status.stdout + status.stderr).toBe(7);
      const report = JSON.parse(status.stdout) as StatusReport;
      expect(report.consumers).toEqual([
        expect.objectContaining({ failing: expect.objectContaining({ lastError: expect.stringMatching(/max_wal_senders/) }) }),
      ]);
      expect(report.health.problems).toContainEqual(
        expect.stringMatching(/^consumer budget-cdc .* failed \d+ times in a row since .*max_wal_senders/),
      );
      const text = await runCli(['status'], fx.cliEnv());
      expect(text.stdout).toMatch(/consumers: (active|starting) budget-cdc .*\(FAILING: failed \d+ times in a row since .*max_wal_senders/);

      const resync = await runCli(['resync'], fx.cliEnv(), 60 * SECOND);
      expect(resync.code).toBe(7);
      expect(resync.stdout).toMatch(
        /^the consumer budget-cdc .* is failing \(failed \d+ times in a row since .*\): the resync is requested/,
      );

      // The cause goes away: the consumer recovers by itself, does the requested resync, and status is healthy.
      await releaseWalSenders();
      await waitFor(async () => (await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).length === 0, {
        timeoutMs: 60 * SECOND,
        message: 'Redis to converge with the table',
      });
      await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('after', 2, 1.00)`);
      await fx.waitForConfirmed();
      expect(await fx.getJob('after')).not.toBeNull();
      await waitFor(async () => (await runCli(['status'], fx.cliEnv())).code === 0, {
        timeoutMs: 15 * SECOND,
        message: 'status to be healthy',
      });
      expect(consumer.health().failing).toBeUndefined();
    },
    180 * SECOND,
  );
});
