import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { killLiveCliProcesses, startCli, type CliProcess } from '../support/cli-process.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';

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
});
