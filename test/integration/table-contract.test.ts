import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import type { ObservedConsumer as Consumer } from '../../src/commands/observed-consumer.js';
import { formatLsn } from '../../src/lsn.js';
import type { StatusReport } from '../../src/commands/status.js';
import { killLiveCliProcesses, runCli } from '../support/cli-process.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// What other teams do to the jobs table behind our back: rename a contract column, or drop REPLICA IDENTITY
// FULL. The consumer must never wedge: changes it cannot describe are set aside with their reason and the
// stream goes on; status says what is wrong and what to run; the documented repair converges Redis.

const SECOND = 1000;

interface DeadLetter {
  job_id: string | null;
  lsn: string;
  reason: string;
}

describe('the jobs table changed by someone else', () => {
  const fixtures: PipelineFixture[] = [];

  afterEach(async () => {
    await killLiveCliProcesses();
  });

  afterAll(async () => {
    await Promise.all(fixtures.map((fx) => fx.close()));
  });

  async function streamingFixture(name: string): Promise<{ fx: PipelineFixture; consumer: Consumer; failures: string[] }> {
    const fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), name);
    fixtures.push(fx);
    const consumer = await fx.startConsumer();
    const failures: string[] = [];
    consumer.events.on('session-failed', ({ error }) => failures.push(error.message));
    await waitFor(() => consumer.health().streaming, { message: 'the consumer to stream' });
    return { fx, consumer, failures };
  }

  async function status(fx: PipelineFixture): Promise<{ code: number | null; report: StatusReport; text: string }> {
    const json = await runCli(['status', '--json'], fx.cliEnv());
    const text = await runCli(['status'], fx.cliEnv());
    expect(text.code).toBe(json.code);
    return { code: json.code, report: JSON.parse(json.stdout) as StatusReport, text: text.stdout };
  }

  async function deadLetters(fx: PipelineFixture): Promise<DeadLetter[]> {
    const outcome = await runCli(['dead-letters', '--json'], fx.cliEnv());
    expect(outcome.code, outcome.stderr).toBe(0);
    return JSON.parse(outcome.stdout) as DeadLetter[];
  }

  async function resync(fx: PipelineFixture): Promise<void> {
    const outcome = await runCli(['resync'], fx.cliEnv(), 60 * SECOND);
    expect(outcome.code, outcome.stdout + outcome.stderr).toBe(0);
    expect(outcome.stdout).toMatch(/^resync finished/);
  }

  function metricOf(text: string, name: string): number | undefined {
    const line = text.split('\n').find((l) => l.startsWith(name + ' '));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  }

  it('a renamed contract column: its rows are set aside with the reason, the stream goes on, and rows flow again once it is renamed back', async () => {
    const { fx, consumer, failures } = await streamingFixture('contract_rename');
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget) values ('before-rename', 2, 1.00), ('updated-while-renamed', 2, 1.00)`,
    );
    await fx.waitForConfirmed();

    await fx.sql.query('alter table jobs rename column budget to budget_eur');
    const renamedAt = await fx.currentLsn();
    await fx.sql.query(`insert into jobs (job_id, days_online, budget_eur) values ('while-renamed', 3, 9.00)`);
    await fx.sql.query(`update jobs set budget_eur = 4.00 where job_id = 'updated-while-renamed'`);
    // Acknowledged past the changes it could not read: nothing replays them, nothing wedges.
    await fx.waitForConfirmed();
    const setAside = await deadLetters(fx);
    expect(setAside.map((d) => d.job_id).sort()).toEqual(['updated-while-renamed', 'while-renamed']);
    for (const entry of setAside) {
      expect(entry.reason).toMatch(
        /^the jobs table had no column budget when this row was written .*restore the column, then run "budget-cdc resync"/,
      );
      expect(BigInt(`0x${entry.lsn.replace('/', '')}`)).toBeGreaterThanOrEqual(BigInt(`0x${formatLsn(renamedAt).replace('/', '')}`));
    }
    const broken = await status(fx);
    expect(broken.code).toBe(6);
    expect(broken.report.table).toEqual({ replicaIdentity: 'full', missingColumns: ['budget'], inPublication: true });
    expect(broken.report.health.problems.join('\n')).toMatch(
      /jobs table has no column budget .*restore the column, then run "budget-cdc resync"/,
    );
    expect(broken.text).toContain('rows set aside: "budget-cdc dead-letters" lists them');
    expect(await consumer.metrics.getSingleMetricAsString('budget_cdc_jobs_missing_columns')).toMatch(/ 1$/m);

    // Renamed back: the next Relation message makes rows flow with no operator action, this session or the next.
    await fx.sql.query('alter table jobs rename column budget_eur to budget');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('after-rename', 2, 5.00)`);
    await fx.waitForConfirmed();
    expect(await fx.getJob('after-rename')).toMatchObject({ job_id: 'after-rename', budget: '5.00' });
    await consumer.stop();
    const next = await fx.startConsumer();
    await waitFor(() => next.health().streaming, { message: 'the next consumer to stream' });
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('next-session', 2, 5.00)`);
    await fx.waitForConfirmed();
    expect(await fx.getJob('next-session')).not.toBeNull();
    expect(failures).toEqual([]);
    expect((await status(fx)).code).toBe(0);

    // What was set aside is in the table: the documented repair, a resync, loads it.
    expect(await fx.getJob('while-renamed')).toBeNull();
    await resync(fx);
    expect(await fx.getJob('while-renamed')).toMatchObject({ budget: '9.00' });
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
  });

  it('REPLICA IDENTITY DEFAULT: said at once, renames and deletes set aside while the stream goes on, migrate repairs it and resync removes the stale keys', async () => {
    const { fx, consumer, failures } = await streamingFixture('contract_identity');
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget) values ('renamed', 2, 1.00), ('deleted', 2, 1.00), ('kept', 2, 1.00)`,
    );
    await fx.waitForConfirmed();

    await fx.sql.query('alter table jobs replica identity default');
    const broken = await status(fx);
    expect(broken.code).toBe(6);
    expect(broken.report.table?.replicaIdentity).toBe('default');
    expect(broken.text).toContain('ALTER TABLE jobs REPLICA IDENTITY FULL');

    await fx.sql.query(`update jobs set job_id = 'renamed-2' where job_id = 'renamed'`);
    const { rows } = await fx.sql.query<{ id: string }>(`delete from jobs where job_id = 'deleted' returning id`);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('after', 2, 1.00)`);
    await fx.waitForConfirmed();
    // The stream went on: the new key and the later insert are there; the old keys stay, and each is said.
    expect(await fx.getJob('renamed-2')).not.toBeNull();
    expect(await fx.getJob('after')).not.toBeNull();
    expect(await fx.getJob('renamed')).not.toBeNull();
    expect(await fx.getJob('deleted')).not.toBeNull();
    const setAside = await deadLetters(fx);
    expect(setAside.map((d) => [d.job_id, d.reason])).toEqual([
      [
        null,
        expect.stringMatching(
          new RegExp(
            `^DELETE arrived without the old job_id \\(the row with id=${rows[0]!.id}\\): the job's key stays in Redis; jobs has REPLICA IDENTITY DEFAULT`,
          ),
        ),
      ],
      ['renamed-2', expect.stringMatching(/^UPDATE arrived without the old job_id: if job_id changed, the old key stays in Redis/)],
    ]);
    expect(await consumer.metrics.getSingleMetricAsString('budget_cdc_jobs_replica_identity_full')).toMatch(/ 0$/m);
    expect(failures).toEqual([]);

    const migrated = await runCli(['migrate'], fx.cliEnv());
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toBe(
      'schema up to date, repaired: replica identity default -> full\n' +
        'changes made while the contract was broken may be missing or stale in Redis: run "budget-cdc resync"\n',
    );
    expect((await runCli(['migrate'], fx.cliEnv())).stdout).toBe('schema up to date\n');
    expect((await status(fx)).code).toBe(0);
    await resync(fx);
    expect(await fx.getJob('renamed')).toBeNull();
    expect(await fx.getJob('deleted')).toBeNull();
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    // A DELETE now carries the job_id again.
    await fx.sql.query(`delete from jobs where job_id = 'kept'`);
    await fx.waitForConfirmed();
    expect(await fx.getJob('kept')).toBeNull();
    expect(metricOf(await consumer.metrics.metrics(), 'budget_cdc_jobs_replica_identity_full')).toBe(1);
  });

  it('migrate says which contract column is missing and exits non-zero, instead of "schema up to date"', async () => {
    const fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), 'contract_migrate');
    fixtures.push(fx);
    await fx.sql.query('alter table jobs rename column days_online to days');
    const migrated = await runCli(['migrate'], fx.cliEnv());
    expect(migrated.code).toBe(1);
    expect(migrated.stderr.trimEnd()).toBe(
      'budget-cdc: the jobs table has no column days_online: someone renamed or dropped it; ' +
        'restore it (ALTER TABLE jobs RENAME COLUMN <new name> TO days_online), then run "budget-cdc resync"',
    );
  });

  it('jobs taken out of the publication: status exits 6, migrate puts it back and says to resync', async () => {
    const { fx } = await streamingFixture('contract_publication');
    await fx.sql.query(`alter publication ${fx.config.publicationName} drop table jobs`);
    const broken = await status(fx);
    expect(broken.code).toBe(6);
    expect(broken.report.health.problems).toContain(
      `publication ${fx.config.publicationName} does not publish jobs: run "budget-cdc migrate", then "budget-cdc resync"`,
    );
    const migrated = await runCli(['migrate'], fx.cliEnv());
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toBe(
      `schema up to date, publication ${fx.config.publicationName} publishes jobs again\n` +
        'changes made while the contract was broken may be missing or stale in Redis: run "budget-cdc resync"\n',
    );
    expect((await status(fx)).report.table).toEqual({ replicaIdentity: 'full', missingColumns: [], inPublication: true });
  });
});
