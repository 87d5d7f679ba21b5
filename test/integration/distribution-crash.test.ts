import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { checkpointKey, deadLetterKey, rebuildHistoryKey } from '../../src/sink/internal-keys.js';
import { killLiveCliProcesses, startCli, stopCli, type CliProcess } from '../support/cli-process.js';
import { startService, stopAllServices, type Service } from '../support/distribution-service.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { findDifferences } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';
import { WEEKDAY_RULE } from '../support/weekday-oracle.js';

// Issue 14: kill -9 of `budget-cdc run --distribution <URL>` while requests to the service are in flight, a
// few times during a COPY, then a restart: Redis must converge to the weekday oracle, and the job the service
// answers wrongly must be in the dead letters exactly once, however many times its transaction was replayed.

const SECOND = 1000;
const DAY_MS = 86_400_000;
const COPY_ROWS = 20_000;
/**
 * Jobs the service always answers with a wrong sum, and the reason of their dead letter, which must be there once
 * after the kills: the first is set aside before the first kill, the second shares the request stalled then.
 */
const BAD_JOBS = new Map([
  ['copy-777', 'the amounts add up to 777.78, not the budget 777.77'],
  ['copy-5001', 'the amounts add up to 5001.02, not the budget 5001.01'],
]);
/** A job per kill whose requests stall: the consumer has written the batches before it, and waits on it, when killed. */
const STALLED_JOBS = ['copy-5000', 'copy-11000', 'copy-17000'];
/** A count no test exhausts: the fault applies to every request that carries its job. */
const ALWAYS = 1_000_000;

describe('distribution service: kill -9 of the consumer while requests are in flight', () => {
  let fx: PipelineFixture;
  let service: Service;

  beforeAll(async () => {
    service = await startService('weekday', { DISTRIBUTE_FAULTS: '1' });
    fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), 'distcrash');
  });

  afterAll(async () => {
    await killLiveCliProcesses();
    await fx?.close();
    await stopAllServices();
  });

  function startRun(): CliProcess {
    return startCli(['run', '--http-port', '0', '--distribution', `${service.url}/distribute`, '--distribution-timeout', '1'], {
      ...fx.cliEnv(),
      LOG_LEVEL: 'warn',
    });
  }

  async function faults(method: 'POST' | 'DELETE', fault?: Record<string, unknown>): Promise<void> {
    const response = await fetch(`${service.url}/faults`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: fault === undefined ? null : JSON.stringify(fault),
    });
    expect(response.status, await response.text()).toBe(200);
  }

  /** How many requests carrying `jobId` the armed faults for it have spoiled so far. */
  async function spoiledFor(jobId: string): Promise<number> {
    const { armed } = (await (await fetch(`${service.url}/faults`)).json()) as { armed: Array<{ count: number; job_id: string | null }> };
    return ALWAYS - (armed.find((fault) => fault.job_id === jobId)?.count ?? ALWAYS);
  }

  /** A stall for every request carrying `stalledJob` when given, and the wrong sums for BAD_JOBS. */
  async function armFaults(stalledJob: string | undefined): Promise<void> {
    await faults('DELETE');
    // The stall first: a request carrying a stalled and a bad job meets the first fault that matches it.
    if (stalledJob !== undefined) await faults('POST', { next: 'stall', job_id: stalledJob, count: ALWAYS, stall_ms: 10 * SECOND });
    for (const jobId of BAD_JOBS.keys()) await faults('POST', { next: 'wrong-sum', job_id: jobId, count: ALWAYS });
  }

  async function copyJobs(): Promise<void> {
    const now = Date.now();
    const csv = Array.from({ length: COPY_ROWS }, (_, i) => {
      // Created over the last six days (every weekday), online at least a week: every row is alive.
      const created = new Date(now - ((i * 37_813_129) % (6 * DAY_MS))).toISOString();
      return `copy-${i},${7 + (i % 24)},${i % 10_000}.${String(i % 100).padStart(2, '0')},${created}\n`;
    }).join('');
    await pipeline(
      Readable.from([csv]),
      fx.sql.query(copyFrom('copy jobs (job_id, days_online, budget, created_at) from stdin with (format csv)')),
    );
  }

  it(
    `converges with one dead letter after ${STALLED_JOBS.length} kills -9 during a ${COPY_ROWS}-row COPY`,
    { timeout: 120 * SECOND },
    async () => {
      let consumer = startRun();
      await fx.waitForConfirmed();
      await armFaults(STALLED_JOBS[0]);
      await copyJobs();

      for (const [round, stalledJob] of STALLED_JOBS.entries()) {
        // Killed while it waits for the stalled request, once the batches before it are in Redis.
        const written = `copy-${Number(stalledJob.slice('copy-'.length)) - 1500}`;
        await waitFor(async () => (await spoiledFor(stalledJob)) > 0 && (await fx.getJob(written)) !== null, {
          message: `the consumer to write ${written} and wait on the stalled request for ${stalledJob}`,
        });
        expect(await fx.getJob(stalledJob)).toBeNull();
        consumer.child.kill('SIGKILL');
        expect((await consumer.closed).signal).toBe('SIGKILL');
        // Changes while it is down (never of BAD_JOBS, whose every change is a dead letter of its own).
        await fx.sql.query(`update jobs set budget = budget + 1.01 where job_id like $1 and job_id <> all($2)`, [
          `copy-${round + 1}%`,
          [...BAD_JOBS.keys()],
        ]);
        await armFaults(STALLED_JOBS[round + 1]);
        consumer = startRun();
      }

      await fx.waitForConfirmed(undefined, 60 * SECOND);
      const differences = await findDifferences(fx.sql, fx.redis, fx.config.keyPrefix, WEEKDAY_RULE);
      expect(differences.map(({ jobId, kind }) => `${jobId}: ${kind}`).sort()).toEqual(
        [...BAD_JOBS.keys()].map((jobId) => `${jobId}: missing`).sort(),
      );
      const deadLetters = (await fx.redis.lrange(deadLetterKey(fx.config.slotName), 0, -1)).map(
        (entry) => JSON.parse(entry) as { job_id: string; reason: string },
      );
      expect(deadLetters.map(({ job_id, reason }) => [job_id, reason]).sort()).toEqual([...BAD_JOBS.entries()].sort());
      // A rebuild would have emptied the dead letters and set them aside again: only the first one ran.
      const history = await fx.redis.hgetall(rebuildHistoryKey(fx.config.keyPrefix));
      expect(Object.keys(history).sort()).toEqual(['distribution', 'last', 'new-slot']);
      expect(history['new-slot']).toBe('1');
      expect(await fx.redis.exists(checkpointKey(fx.config.keyPrefix))).toBe(1);
      expect((await stopCli(consumer))!.code).toBe(0);
    },
  );
});
