import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { killLiveCliProcesses, startCli, type CliProcess } from '../support/cli-process.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { waitFor } from '../support/wait-for.js';

// Errors a retry cannot cure end `run` with exit code 1 and one line that says what to fix, instead of a
// consumer that retries forever with nothing but error logs to show for it.

const SECOND = 1000;

describe('permanent errors', () => {
  const fixtures: PipelineFixture[] = [];

  afterEach(async () => {
    await killLiveCliProcesses();
  });

  afterAll(async () => {
    await Promise.all(fixtures.map((fx) => fx.close()));
  });

  async function fixture(name: string): Promise<PipelineFixture> {
    const fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), name);
    fixtures.push(fx);
    return fx;
  }

  function startRun(fx: PipelineFixture): CliProcess {
    return startCli(['run', '--http-port', '0'], { ...fx.cliEnv(), LOG_LEVEL: 'info' });
  }

  /** The lines budget-cdc logged, parsed. */
  function logsOf(stderr: string): Array<{ level: number; msg: string }> {
    return stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string });
  }

  it('stops with exit 1 on a slot of another output plugin, saying to drop it or choose another --slot', async () => {
    const fx = await fixture('perm_plugin');
    await fx.sql.query(`select pg_create_logical_replication_slot($1, 'test_decoding')`, [fx.config.slotName]);
    const { code, stderr } = await startRun(fx).exit(30 * SECOND);
    expect(code).toBe(1);
    const lastLine = stderr.trimEnd().split('\n').at(-1)!;
    expect(lastLine).toBe(
      `budget-cdc: replication slot ${fx.config.slotName} uses the test_decoding plugin, not pgoutput: drop it or choose another name with --slot`,
    );
    expect(logsOf(stderr).filter((l) => l.msg === 'replication session failed; resuming from the slot')).toEqual([]);
  });

  it('stops with exit 1 when a contract column was renamed, naming the column, and acknowledges nothing past it', async () => {
    const fx = await fixture('perm_column');
    const run = startRun(fx);
    await waitFor(async () => (await fx.redis.exists(`budget-cdc:checkpoint:${fx.config.keyPrefix}`)) === 1, {
      message: 'the consumer to start',
    });
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('before-rename', 2, 1.00)`);
    await fx.waitForConfirmed();
    const confirmedBefore = await fx.confirmedLsn();
    await fx.sql.query('alter table jobs rename column budget to budget_in_cents');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget_in_cents) values ('after-rename', 2, 1.00)`);
    const afterInsert = await fx.currentLsn();
    const { code, stderr } = await run.exit(30 * SECOND);
    expect(code).toBe(1);
    expect(stderr.trimEnd().split('\n').at(-1)).toMatch(/^budget-cdc: .*no column budget.* \(at WAL position [0-9A-F]+\/[0-9A-F]+\)$/);
    expect(logsOf(stderr).some((l) => l.level === 60 && l.msg === 'stopping: retrying cannot cure this error')).toBe(true);
    expect(await fx.getJob('before-rename')).not.toBeNull();
    expect(await fx.getJob('after-rename')).toBeNull();
    // Not acknowledged: once the table is fixed, the next run receives the change again.
    const confirmedAfter = (await fx.confirmedLsn())!;
    expect(confirmedAfter).toBeLessThan(afterInsert);
    expect(confirmedAfter).toBeGreaterThanOrEqual(confirmedBefore!);
  });
});
