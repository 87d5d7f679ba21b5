import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, killLiveCliProcesses, startCli, type CliProcess } from '../support/cli-process.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// Two `budget-cdc run` processes on one slot: one streams, the other waits as a standby, says so at info
// level, and takes over when the active one is killed, with no loss and no rebuild.

const SECOND = 1000;

interface Readiness {
  ready: boolean;
  role: string;
  reasons: string[];
}

describe('hot standby', () => {
  let fx: PipelineFixture;

  beforeAll(async () => {
    fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), 'standby');
  });

  afterAll(async () => {
    await killLiveCliProcesses();
    await fx?.close();
  });

  function startRun(httpPort: number): CliProcess {
    return startCli(['run', '--http-port', String(httpPort)], { ...fx.cliEnv(), LOG_LEVEL: 'info' });
  }

  async function readiness(port: number): Promise<Readiness> {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`);
    return (await response.json()) as Readiness;
  }

  async function metric(port: number, name: string): Promise<number | undefined> {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(name + ' '));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  }

  it('keeps a standby that takes over within seconds of a kill -9 of the active process, losing nothing', async () => {
    const [firstPort, secondPort] = [await freePort(), await freePort()];
    const first = startRun(firstPort);
    await waitFor(async () => (await readiness(firstPort)).role === 'active', { message: 'the first process to be active' });
    const second = startRun(secondPort);
    const standby = await waitFor(
      async () => {
        const ready = await readiness(secondPort);
        return ready.role === 'standby' ? ready : undefined;
      },
      { message: 'the second process to be a standby' },
    );
    expect(standby.ready).toBe(false);
    expect(standby.reasons.join('; ')).toMatch(/^standby: another process consumes the slot \(pid \d+ \(budget-cdc .* pid \d+\)/);
    expect(await metric(secondPort, 'budget_cdc_active')).toBe(0);
    expect(await metric(firstPort, 'budget_cdc_active')).toBe(1);

    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'hs-' || g, 4, g from generate_series(1, 2000) g`);
    await fx.waitForConfirmed();
    // A load in flight when the active process dies.
    const load = fx.sql.query(
      `insert into jobs (job_id, days_online, budget) select 'hs-big-' || g, 3, 9.99 from generate_series(1, 50000) g`,
    );
    await waitFor(async () => (await fx.redis.exists(fx.config.keyPrefix + 'hs-big-1')) === 1, { message: 'the load to start arriving' });
    first.child.kill('SIGKILL');
    await load;
    await fx.sql.query(`update jobs set budget = 1.00 where job_id = 'hs-1'`);
    await waitFor(async () => (await readiness(secondPort)).role === 'active', {
      timeoutMs: 15 * SECOND,
      message: 'the standby to take over',
    });
    await fx.waitForConfirmed();
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect((await fx.getJob('hs-1'))!.budget).toBe('1.00');

    const { stderr } = second.output();
    const lines = stderr.split('\n').filter((line) => line !== '');
    const logs = lines.map((line) => JSON.parse(line) as { level: number; msg: string; err?: string });
    const waiting = logs.filter((l) => l.msg.startsWith('standby:'));
    // Said once, at info (30), however many times the standby tried to take over.
    expect(waiting).toHaveLength(1);
    expect(waiting[0]!.level).toBe(30);
    expect(logs.some((l) => l.msg.startsWith('took the slot over'))).toBe(true);
    expect(logs.filter((l) => l.level >= 50).map((l) => `${l.msg}: ${l.err}`)).toEqual([]);
    expect(logs.some((l) => l.msg === 'resync from the table started')).toBe(false);
    await second.child.kill('SIGTERM');
    expect((await second.exit(15 * SECOND)).code).toBe(0);
  });
});
