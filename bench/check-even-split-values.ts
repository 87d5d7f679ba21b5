import type { Redis } from 'ioredis';
import type pg from 'pg';
import { expiryOf, type Job } from '../src/budget/job.js';
import { parseCents } from '../src/replication/money-text.js';
import { jobValue } from '../src/sink/job-value.js';

/** Rows read, and keys compared, per round trip. */
const PAGE_ROWS = 10_000;
/** How many mismatches an error quotes. */
const MAX_QUOTED = 3;

/**
 * Checks that Redis holds, for every row of jobs, exactly what the built-in even split writes: the value
 * jobValue gives (the byte path's writer) and the expiry at the job's end (PEXPIRETIME). For a run with a
 * distribution service whose rule is `even`: its answers must make the very same keys. Throws on the first
 * page with a difference, quoting a few. Returns the rows compared.
 */
export async function checkEvenSplitValues(client: pg.Client, redis: Redis, keyPrefix: string): Promise<number> {
  let after = '';
  let compared = 0;
  for (;;) {
    const { rows } = await client.query<{ job_id: string; days_online: number; budget: string; created_at_ms: string }>(
      `select job_id, days_online, budget::text as budget, floor(extract(epoch from created_at) * 1000)::bigint::text as created_at_ms
         from jobs where job_id > $1 order by job_id limit ${PAGE_ROWS}`,
      [after],
    );
    if (rows.length === 0) return compared;
    const jobs = rows.map(toJob);
    const keys = jobs.map((job) => keyPrefix + job.jobId);
    const pipeline = redis.pipeline();
    pipeline.mget(...keys);
    for (const key of keys) pipeline.pexpiretime(key);
    const replies = await pipeline.exec();
    if (replies === null) throw new Error('the check pipeline was discarded');
    for (const [error] of replies) if (error !== null) throw error;
    const values = replies[0]![1] as (string | null)[];
    const mismatches: string[] = [];
    jobs.forEach((job, index) => {
      const expected = jobValue(job);
      const actual = values[index];
      if (actual !== expected) mismatches.push(`${keys[index]}: ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
      const expiry = replies[index + 1]![1] as number;
      if (expiry !== job.expiresAtMs) mismatches.push(`${keys[index]}: PEXPIRETIME ${expiry}, expected ${job.expiresAtMs}`);
    });
    if (mismatches.length > 0) {
      throw new Error(
        `${mismatches.length} differences from the built-in even split among ${jobs.length} keys, e.g.\n` +
          mismatches.slice(0, MAX_QUOTED).join('\n'),
      );
    }
    compared += jobs.length;
    after = rows[rows.length - 1]!.job_id;
  }
}

function toJob(row: { job_id: string; days_online: number; budget: string; created_at_ms: string }): Job {
  const budgetCents = parseCents(row.budget);
  if (budgetCents === undefined) throw new Error(`job ${row.job_id}: budget ${row.budget} is not an amount with two decimals`);
  const createdAtMs = Number(row.created_at_ms);
  return { jobId: row.job_id, budgetCents, daysOnline: row.days_online, createdAtMs, expiresAtMs: expiryOf(createdAtMs, row.days_online) };
}
