import { Cluster, type Redis } from 'ioredis';
import type pg from 'pg';

// An oracle independent of src/: what Redis must hold, computed from the jobs table with SQL for the
// instants and BigInt for the money, then compared with every key under the prefix.

const DAY_MS = 86_400_000n;
/** Rows expiring this close to now may or may not have a key yet; they are not judged. */
const EXPIRY_MARGIN_MS = 2_000n;

/**
 * A budget rule as the oracle computes it: a job's daily amounts ("units.cc", day 0 first) from its budget as
 * the table prints it, its days online and its creation instant in milliseconds.
 */
export type OracleRule = (budget: string, days: number, createdMs: bigint) => string[];

export interface ExpectedKey {
  value: Record<string, unknown>;
  pexpiretime: number;
}

function isoOf(ms: bigint): string {
  return new Date(Number(ms)).toISOString();
}

/** The built-in even split: floor(cents / days) a day, one cent more on the first `cents % days` days. */
export const EVEN_RULE: OracleRule = (budget, days) => dailyOf(budget, days);

function dailyOf(budget: string, days: number): string[] {
  const [units, cents] = budget.split('.') as [string, string];
  const total = BigInt(units) * 100n + BigInt(cents);
  const base = total / BigInt(days);
  const remainder = total % BigInt(days);
  return Array.from({ length: days }, (_, i) => {
    const amount = base + (BigInt(i) < remainder ? 1n : 0n);
    return `${amount / 100n}.${(amount % 100n).toString().padStart(2, '0')}`;
  });
}

/** The keys Redis must hold (alive jobs, their amounts by `rule`) and the job_ids that must have no key (expired). */
export async function expectedFromTable(
  sql: pg.Client,
  rule: OracleRule = EVEN_RULE,
): Promise<{ alive: Map<string, ExpectedKey>; expired: Set<string> }> {
  const { rows } = await sql.query<{ job_id: string; days_online: number; budget: string; created_ms: string; now_ms: string }>(
    `select job_id, days_online, budget::text as budget,
            floor(extract(epoch from created_at) * 1000)::bigint::text as created_ms,
            floor(extract(epoch from clock_timestamp()) * 1000)::bigint::text as now_ms
     from jobs`,
  );
  const alive = new Map<string, ExpectedKey>();
  const expired = new Set<string>();
  for (const row of rows) {
    const created = BigInt(row.created_ms);
    const expires = created + BigInt(row.days_online) * DAY_MS;
    const now = BigInt(row.now_ms);
    if (expires <= now + EXPIRY_MARGIN_MS) {
      if (expires <= now - EXPIRY_MARGIN_MS) expired.add(row.job_id);
      continue;
    }
    alive.set(row.job_id, {
      value: {
        job_id: row.job_id,
        budget: row.budget,
        days_online: row.days_online,
        created_at: isoOf(created),
        expires_at: isoOf(expires),
        daily: rule(row.budget, row.days_online, created),
      },
      pexpiretime: Number(expires),
    });
  }
  return { alive, expired };
}

export type DifferenceKind = 'missing' | 'wrong' | 'later-expiry' | 'earlier-expiry' | 'extra';

export interface Difference {
  kind: DifferenceKind;
  jobId: string;
  detail: string;
}

/** Every difference between Redis (keys under `prefix`) and what the table implies under `rule`; empty when they agree. */
export async function findDifferences(
  sql: pg.Client,
  redis: Redis | Cluster,
  prefix: string,
  rule: OracleRule = EVEN_RULE,
): Promise<Difference[]> {
  const { alive, expired } = await expectedFromTable(sql, rule);
  const differences: Difference[] = [];
  const ids = [...alive.keys()];
  for (let i = 0; i < ids.length; i += 1000) {
    const chunk = ids.slice(i, i + 1000);
    const replies = await readKeys(
      redis,
      chunk.map((id) => prefix + id),
    );
    chunk.forEach((jobId, k) => {
      const expected = alive.get(jobId)!;
      const [value, pexpiretime] = replies[k]!;
      if (value === null) differences.push({ kind: 'missing', jobId, detail: 'missing' });
      else if (JSON.stringify(JSON.parse(value)) !== JSON.stringify(expected.value))
        differences.push({ kind: 'wrong', jobId, detail: `value ${value} != ${JSON.stringify(expected.value)}` });
      else if (pexpiretime !== expected.pexpiretime)
        differences.push({
          kind: pexpiretime > expected.pexpiretime ? 'later-expiry' : 'earlier-expiry',
          jobId,
          detail: `PEXPIRETIME ${pexpiretime} != ${expected.pexpiretime}`,
        });
    });
  }
  // A cluster's keys are spread over its masters: each is scanned.
  for (const server of redis instanceof Cluster ? redis.nodes('master') : [redis]) {
    for await (const keys of server.scanStream({ match: prefix.replace(/[*?[\]\\]/g, '\\$&') + '*', count: 1000 })) {
      for (const key of keys as string[]) {
        const jobId = key.slice(prefix.length);
        if (!alive.has(jobId) && (expired.has(jobId) || !(await isJobRow(sql, jobId)))) {
          differences.push({ kind: 'extra', jobId, detail: 'key should not exist' });
        }
      }
    }
  }
  return differences;
}

/** Each key's value and PEXPIRETIME: one pipeline on a single Redis; on a cluster, commands ioredis sends to each key's master. */
async function readKeys(redis: Redis | Cluster, keys: string[]): Promise<Array<[string | null, number]>> {
  if (redis instanceof Cluster)
    return Promise.all(keys.map(async (key) => [await redis.get(key), await redis.pexpiretime(key)] as [string | null, number]));
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.get(key).pexpiretime(key);
  const replies = (await pipeline.exec())!;
  return keys.map((_, k) => [replies[2 * k]![1] as string | null, replies[2 * k + 1]![1] as number]);
}

/** The differences as readable lines ("<job_id>: <what>"); empty when Redis and the table agree (under `rule`, default even). */
export async function compareRedisWithTable(
  sql: pg.Client,
  redis: Redis | Cluster,
  prefix: string,
  rule: OracleRule = EVEN_RULE,
): Promise<string[]> {
  return (await findDifferences(sql, redis, prefix, rule)).map((d) => `${d.jobId}: ${d.detail}`);
}

async function isJobRow(sql: pg.Client, jobId: string): Promise<boolean> {
  const { rowCount } = await sql.query('select 1 from jobs where job_id = $1', [jobId]);
  return rowCount === 1;
}
