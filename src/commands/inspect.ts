import { sql } from 'kysely';
import { parseJob } from '../replication/job-row.js';
import type { Config } from '../config.js';
import { checkConnection } from '../db/check-database.js';
import { withDatabase } from '../db/database.js';
import { ConfigError, RowError } from '../errors.js';
import type { JobRow } from '../replication/job-changes.js';
import { jobValue } from '../sink/job-value.js';
import { connectRedis, type RedisClient } from '../sink/redis-client.js';
import { makeSilentLogger } from '../logger.js';

/** A job's row, its key, and what the key must hold according to the row (computed by the pipeline's own code). */
export interface JobInspection {
  jobId: string;
  key: string;
  /** The row as PostgreSQL prints it (ISO, UTC), or null when there is none. */
  row: { days_online: number; budget: string; created_at: string } | null;
  /** What Redis holds: the value and its PEXPIRETIME (ms since 1970), or null when there is no key. */
  redis: { value: string; pexpiretime: number | null } | null;
  /** What Redis must hold: null when the job must have no key (no row, offline, or a dead letter). */
  expected: { value: string; pexpiretime: number } | null;
  /** Why there must be no key, when so. */
  noKeyBecause: string | null;
  agree: boolean;
  /** What differs, when they do not agree. */
  differences: string[];
}

/**
 * Reads the job's row (with DateStyle ISO and TimeZone UTC, as the replication stream sends it) and its key,
 * computes the expected value with parseJob and jobValue, and compares. A disagreement may be lag: the
 * consumer has not applied the latest change yet.
 */
export async function inspectJob(config: Config, jobId: string, nowMs = Date.now()): Promise<JobInspection> {
  const row = await withDatabase(config.databaseUrl, async (db) => {
    await checkConnection(db, config.databaseUrl);
    return db.transaction().execute(async (trx) => {
      await sql`set local datestyle = 'ISO'`.execute(trx);
      await sql`set local timezone = 'UTC'`.execute(trx);
      return trx
        .selectFrom('jobs')
        .select([
          'job_id',
          sql<string>`days_online::text`.as('days_online'),
          sql<string>`budget::text`.as('budget'),
          sql<string>`created_at::text`.as('created_at'),
        ])
        .where('job_id', '=', jobId)
        .executeTakeFirst();
    });
  });
  const key = config.keyPrefix + jobId;
  const redis = await connectRedis(config, makeSilentLogger());
  let stored: JobInspection['redis'];
  try {
    stored = await readKey(redis, key);
  } finally {
    redis.disconnect();
  }

  let expected: JobInspection['expected'] = null;
  let noKeyBecause: string | null = null;
  if (row === undefined) noKeyBecause = 'the job has no row in PostgreSQL';
  else {
    const jobRow: JobRow = { jobId: row.job_id, daysOnline: row.days_online, budget: row.budget, createdAt: row.created_at };
    try {
      const job = parseJob(jobRow);
      if (job.expiresAtMs <= nowMs) noKeyBecause = `the job went offline at ${new Date(job.expiresAtMs).toISOString()}`;
      else expected = { value: jobValue(job), pexpiretime: job.expiresAtMs };
    } catch (error) {
      if (!(error instanceof RowError)) throw error;
      noKeyBecause = `the row cannot be processed (${error.message}); it belongs in the dead letters`;
    }
  }
  const differences: string[] = [];
  if (expected === null && stored !== null) differences.push(`Redis has a key, but ${noKeyBecause}`);
  if (expected !== null && stored === null) differences.push('Redis has no key for this job');
  if (expected !== null && stored !== null) {
    if (stored.value !== expected.value) differences.push('the values differ');
    if (stored.pexpiretime !== expected.pexpiretime) {
      differences.push(
        `the key expires ${stored.pexpiretime === null ? 'never' : `at ${new Date(stored.pexpiretime).toISOString()}`}, not at ${new Date(expected.pexpiretime).toISOString()}`,
      );
    }
  }
  return {
    jobId,
    key,
    row: row === undefined ? null : { days_online: Number(row.days_online), budget: row.budget, created_at: row.created_at },
    redis: stored,
    expected,
    noKeyBecause,
    agree: differences.length === 0,
    differences,
  };
}

async function readKey(redis: RedisClient, key: string): Promise<JobInspection['redis']> {
  const value = await redis.get(key);
  if (value === null) return null;
  const pexpiretime = await redis.pexpiretime(key);
  if (typeof pexpiretime !== 'number') throw new Error(`PEXPIRETIME ${key} answered ${String(pexpiretime)}`);
  // -1: no expiry; -2: the key vanished between the two commands (it just expired).
  if (pexpiretime === -2) return null;
  return { value, pexpiretime: pexpiretime === -1 ? null : pexpiretime };
}

/** The human-readable, side-by-side form. */
export function formatInspection(inspection: JobInspection): string {
  const { row, redis, expected } = inspection;
  const when = (ms: number | null): string => (ms === null ? 'never' : new Date(ms).toISOString());
  const lines = [
    `job ${inspection.jobId}`,
    `  postgres  ${row === null ? '(no row)' : `days_online ${row.days_online}, budget ${row.budget}, created_at ${row.created_at}`}`,
    `  redis     ${redis === null ? `(no key ${inspection.key})` : `${inspection.key} expires ${when(redis.pexpiretime)}`}`,
  ];
  if (redis !== null) lines.push(`            ${redis.value}`);
  lines.push(`  expected  ${expected === null ? `no key: ${inspection.noKeyBecause}` : `expires ${when(expected.pexpiretime)}`}`);
  if (expected !== null) lines.push(`            ${expected.value}`);
  lines.push(
    inspection.agree
      ? 'agree: yes'
      : `agree: no (${inspection.differences.join('; ')}); if the row changed just now, the consumer may not have applied it yet: see "budget-cdc status"`,
  );
  return lines.join('\n');
}

/** inspect: the key does not hold what the row implies. */
export const EXIT_DISAGREE = 3;

/** `budget-cdc inspect <job_id> [--json]`: exit 0 when the key agrees with the row, EXIT_DISAGREE when not. */
export async function inspectCommand(config: Config, args: string[], json: boolean): Promise<number> {
  const [jobId, ...extra] = args;
  if (jobId === undefined || extra.length > 0) throw new ConfigError('inspect', 'inspect takes one argument: a job_id');
  const inspection = await inspectJob(config, jobId);
  process.stdout.write(json ? JSON.stringify(inspection) + '\n' : formatInspection(inspection) + '\n');
  return inspection.agree ? 0 : EXIT_DISAGREE;
}
