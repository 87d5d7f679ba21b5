import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ObservedConsumer } from '../../src/commands/observed-consumer.js';
import { evaluateReadiness } from '../../src/ops/readiness.js';
import { loadConfig } from '../../src/config.js';
import { parseLsn, type Lsn } from '../../src/lsn.js';
import { deadLetterKey } from '../../src/sink/internal-keys.js';
import { startService, stopAllServices, type Service } from '../support/distribution-service.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { findDifferences } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';
import { compareRedisWithWeekdayTable, WEEKDAY_RULE } from '../support/weekday-oracle.js';

// Issue 14: a distribution service that fails. A batch that fails as a whole (500, a stall past the timeout, a
// dropped connection, a body that is not JSON) is retried until it succeeds, and holds the acknowledgement
// meanwhile: nothing may be confirmed to PostgreSQL, nor written, before the service answered. An answer that
// is wrong for one job (its sum, its count) sets that job aside as a dead letter, once, and the others go on.
// The faults come from the example service's test-only fault injection (DISTRIBUTE_FAULTS=1).

const TIMEOUT_SECONDS = 1;

interface Fault {
  next: '500' | 'stall' | 'drop' | 'wrong-sum' | 'wrong-count' | 'malformed';
  count?: number;
  job_id?: string;
  stall_ms?: number;
}

interface DeadLetter {
  job_id: string;
  lsn: string;
  reason: string;
  at: string;
}

describe('distribution service faults', () => {
  let fx: PipelineFixture;
  let service: Service;
  let consumer: ObservedConsumer;

  beforeAll(async () => {
    service = await startService('weekday', { DISTRIBUTE_FAULTS: '1' });
    fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), 'distfaults');
    await fx.sql.query('create extension pg_walinspect');
    const { distribution } = loadConfig(
      { databaseUrl: fx.config.databaseUrl, distribution: `${service.url}/distribute`, distributionTimeout: String(TIMEOUT_SECONDS) },
      {},
    );
    consumer = await fx.startConsumer({ distribution });
    await fx.waitForConfirmed();
  });

  afterAll(async () => {
    await fx?.close();
    await stopAllServices();
  });

  async function arm(fault: Fault): Promise<void> {
    const response = await fetch(`${service.url}/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(fault),
    });
    expect(response.status, await response.text()).toBe(200);
  }

  /** Requests the armed faults will still spoil. */
  async function armedCount(): Promise<number> {
    const { armed } = (await (await fetch(`${service.url}/faults`)).json()) as { armed: Array<{ count: number }> };
    return armed.reduce((sum, fault) => sum + fault.count, 0);
  }

  /** The value of a metric without labels in the consumer's registry. */
  async function gauge(name: string): Promise<number> {
    const metric = (await consumer.metrics.getMetricsAsJSON()).find((m) => m.name === name);
    if (metric === undefined) throw new Error(`no metric ${name}`);
    return metric.values[0]!.value;
  }

  async function deadLetters(): Promise<DeadLetter[]> {
    return (await fx.redis.lrange(deadLetterKey(fx.config.slotName), 0, -1)).map((entry) => JSON.parse(entry) as DeadLetter);
  }

  /**
   * Runs `statement` in a transaction of its own and returns the end of its commit record, the position the
   * consumer acknowledges once the transaction is in Redis (found in the WAL with pg_walinspect: the server's
   * WAL position after the commit may be further, other test files write to the same server).
   */
  async function commitEndOf(statement: string): Promise<Lsn> {
    await fx.sql.query('begin');
    // Flushed when COMMIT returns, so that pg_walinspect can read the record right away.
    await fx.sql.query('set local synchronous_commit = on');
    await fx.sql.query(statement);
    const { rows } = await fx.sql.query<{ xid: string; lsn: string }>(
      `select (pg_current_xact_id()::text::bigint % 4294967296)::text as xid, pg_current_wal_insert_lsn()::text as lsn`,
    );
    await fx.sql.query('commit');
    const { xid, lsn } = rows[0]!;
    const commit = await fx.sql.query<{ end_lsn: string }>(
      `select end_lsn::text from pg_get_wal_records_info_till_end_of_wal($1)
       where xid::text = $2 and resource_manager = 'Transaction' and record_type like 'COMMIT%'`,
      [lsn, xid],
    );
    expect(commit.rows).toHaveLength(1);
    return parseLsn(commit.rows[0]!.end_lsn);
  }

  /** Inserts `count` jobs named `<name>-<n>` in one transaction; returns its commit's end. */
  function insertJobs(name: string, count: number): Promise<Lsn> {
    return commitEndOf(
      `insert into jobs (job_id, days_online, budget, created_at)
       select '${name}-' || i, 1 + i % 20, (i * 17.03)::numeric(14,2), now() - (i * 5 || ' hours')::interval
       from generate_series(1, ${count}) i`,
    );
  }

  /** Checks that the transaction ending at `commitEnd` is neither acknowledged nor written: to call while the service fails it. */
  async function expectHeld(commitEnd: Lsn, jobId: string): Promise<void> {
    expect(await fx.confirmedLsn()).toBeLessThan(commitEnd);
    expect(await fx.getJob(jobId)).toBeNull();
  }

  async function expectConverged(commitEnd: Lsn): Promise<void> {
    await fx.waitForConfirmed(commitEnd, 30_000);
    expect(await compareRedisWithWeekdayTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect(await deadLetters()).toEqual([]);
  }

  it('holds the acknowledgement while the service answers 500, and writes the batch once it answers', async () => {
    await arm({ next: '500', count: 1000 });
    const commitEnd = await insertJobs('f500', 40);
    await waitFor(async () => (await armedCount()) <= 997, { message: 'three requests answered 500' });
    await expectHeld(commitEnd, 'f500-1');
    // What an operator sees meanwhile: /readyz's reason, and the metric of since when.
    const { ready, reasons } = evaluateReadiness(consumer.health(), { maxLagBytes: 1 << 30, maxLagSeconds: 300 }, Date.now());
    expect(ready).toBe(false);
    expect(reasons.join('; ')).toMatch(
      /distribution service unavailable since \d{4}-\d\d-\d\dT[^:]+:\d\d:\d\d\.\d{3}Z: the service answered HTTP 500/,
    );
    expect(await gauge('budget_cdc_distribution_unavailable_since_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
    expect((await fetch(`${service.url}/faults`, { method: 'DELETE' })).status).toBe(200);
    await expectConverged(commitEnd);
    expect(await fx.getJob('f500-1')).not.toBeNull();
    expect(consumer.health().distributionUnavailable).toBeUndefined();
    expect(await gauge('budget_cdc_distribution_unavailable_since_seconds')).toBe(0);
  });

  // Each fault is armed for a few requests; the check of the hold is made while one of them is still armed
  // (checked after it), so the batch cannot have succeeded yet.
  for (const fault of [
    { next: 'stall', count: 2, stall_ms: 10_000 },
    { next: 'drop', count: 4 },
    { next: 'malformed', count: 4 },
  ] satisfies Fault[]) {
    it(`retries through ${fault.count} requests that ${fault.next === 'stall' ? 'stall 10 s' : fault.next}, then converges`, async () => {
      const name = `f${fault.next}`;
      await arm(fault);
      const started = Date.now();
      const commitEnd = await insertJobs(name, 40);
      await waitFor(async () => (await armedCount()) < fault.count, { message: `a request to meet the ${fault.next} fault` });
      await expectHeld(commitEnd, `${name}-1`);
      expect(await armedCount(), 'the hold was checked while the service still failed').toBeGreaterThan(0);
      await expectConverged(commitEnd);
      expect(await armedCount()).toBe(0);
      // A stalled answer comes after 10 s, a correct one: converging sooner shows the client gave up on it.
      if (fault.next === 'stall') expect(Date.now() - started).toBeLessThan(fault.stall_ms);
    });
  }

  it('sets a job answered with a wrong sum or a wrong count aside as a dead letter, once, and writes the others', async () => {
    // A job with a key already: a wrong answer for its update must remove the key, which is for the older row.
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('bad-update', 3, 30.00)`);
    await fx.waitForConfirmed();
    expect(await fx.getJob('bad-update')).not.toBeNull();

    // One at a time: the service spoils a request with the first fault that matches it, so faults for jobs
    // that share a request would not all apply.
    const changes: Array<[Fault, string]> = [
      [
        { next: 'wrong-sum', job_id: 'bad-sum' },
        `insert into jobs (job_id, days_online, budget) values ('bad-sum', 4, 100.00), ('good-1', 4, 100.00)`,
      ],
      [
        { next: 'wrong-count', job_id: 'bad-count' },
        `insert into jobs (job_id, days_online, budget) values ('good-2', 5, 50.00), ('bad-count', 5, 50.00)`,
      ],
      [{ next: 'wrong-sum', job_id: 'bad-update' }, `update jobs set budget = 31.00 where job_id = 'bad-update'`],
    ];
    for (const [fault, statement] of changes) {
      await arm(fault);
      await fx.sql.query(statement);
      await fx.waitForConfirmed();
      expect(await armedCount(), `the ${fault.next} fault for ${fault.job_id} was used`).toBe(0);
    }
    await insertJobs('after-bad', 30);
    await fx.waitForConfirmed();

    const differences = await findDifferences(fx.sql, fx.redis, fx.config.keyPrefix, WEEKDAY_RULE);
    expect(differences.map(({ jobId, kind }) => `${jobId}: ${kind}`).sort()).toEqual([
      'bad-count: missing',
      'bad-sum: missing',
      'bad-update: missing',
    ]);
    const letters = await deadLetters();
    expect(letters.map(({ job_id, reason }) => ({ job_id, reason })).sort((a, b) => a.job_id.localeCompare(b.job_id))).toEqual([
      { job_id: 'bad-count', reason: 'distribution service answered 4 amounts for 5 days online' },
      { job_id: 'bad-sum', reason: 'the amounts add up to 100.01, not the budget 100.00' },
      { job_id: 'bad-update', reason: 'the amounts add up to 31.01, not the budget 31.00' },
    ]);
    for (const letter of letters) {
      expect(letter.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(Date.parse(letter.at)).not.toBeNaN();
    }

    // The faults are used up: the jobs' next changes are answered right, and their dead letters stay once each.
    await fx.sql.query(`update jobs set budget = budget + 1 where job_id like 'bad-%'`);
    await fx.waitForConfirmed();
    expect(await compareRedisWithWeekdayTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect(await deadLetters()).toHaveLength(3);
  });
});
