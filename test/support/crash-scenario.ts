import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { findDifferences, type DifferenceKind } from './table-oracle.js';
import { createTestDatabase } from './test-database.js';
import { waitFor } from './wait-for.js';

// kill -9 of the consumer at random moments while a large COPY and single-row changes stream, then a
// comparison of Redis with the table. Shared by the integration test (a few kills) and `npm run torture`.

const CLI = fileURLToPath(new URL('../../bin/budget-cdc.js', import.meta.url));
const SINGLE_JOBS = 200;

export interface CrashScenarioOptions {
  adminUrl: string;
  redisUrl: string;
  /** A Redis Cluster's nodes (`host:port,…`), written to instead of `redisUrl`'s server. */
  redisClusterNodes?: string;
  rows: number;
  kills: number;
  /** Longest pause between two kills; each pause is random between a tenth of it and all of it. */
  maxKillIntervalMs: number;
  log?: (line: string) => void;
}

export interface CrashScenarioResult {
  kills: number;
  rows: number;
  /** Alive jobs whose key is missing. */
  missing: number;
  /** Keys whose JSON differs from what the table implies. */
  wrong: number;
  /** Keys that expire later than created_at + days allows. */
  laterExpiry: number;
  /** Keys that expire earlier than they should. */
  earlierExpiry: number;
  /** Keys for jobs that are deleted, never committed or offline. */
  extra: number;
  seconds: number;
}

export async function runCrashScenario(options: CrashScenarioOptions): Promise<CrashScenarioResult> {
  const log = options.log ?? (() => undefined);
  const started = performance.now();
  const database = await createTestDatabase(options.adminUrl, 'crash');
  const suffix = randomBytes(3).toString('hex');
  const env = {
    ...process.env,
    DATABASE_URL: database.url,
    REDIS_URL: options.redisUrl,
    ...(options.redisClusterNodes === undefined ? {} : { REDIS_CLUSTER_NODES: options.redisClusterNodes }),
    BUDGET_CDC_SLOT: `crash_${suffix}`,
    BUDGET_CDC_PUBLICATION: `crash_${suffix}`,
    BUDGET_CDC_KEY_PREFIX: `crash:${suffix}:job:`,
    LOG_LEVEL: 'warn',
  };
  const sql = new pg.Client({ connectionString: database.url });
  await sql.connect();
  const redis =
    options.redisClusterNodes === undefined
      ? new Redis(options.redisUrl)
      : new Cluster(options.redisClusterNodes.split(',').map((node) => ({ host: node.split(':')[0], port: Number(node.split(':')[1]) })));
  let consumer: ChildProcess | undefined;
  const startConsumer = (): ChildProcess => {
    const child = spawn(process.execPath, [CLI, 'run'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', () => undefined); // drained, so a chatty consumer never blocks on a full pipe
    return child;
  };
  try {
    consumer = startConsumer();
    await waitFor(
      async () => {
        const { rowCount } = await sql.query('select 1 from pg_replication_slots where slot_name = $1', [env.BUDGET_CDC_SLOT]);
        return rowCount === 1;
      },
      { message: 'the consumer to create its slot' },
    );

    let changing = true;
    const singleChanges = changeSingleRows(database.url, () => changing);
    const copy = copyRows(database.url, options.rows);
    let kills = 0;
    while (kills < options.kills) {
      const pauseMs = options.maxKillIntervalMs * (0.1 + 0.9 * Math.random());
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      const victim = consumer;
      const exited = new Promise((resolve) => victim.once('exit', resolve));
      victim.kill('SIGKILL');
      await exited;
      kills++;
      log(`kill ${kills}/${options.kills} after ${Math.round(pauseMs)} ms`);
      consumer = startConsumer();
    }
    await copy;
    changing = false;
    await singleChanges;
    log(`copy of ${options.rows} rows committed; waiting for the consumer to catch up`);

    const { rows } = await sql.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn');
    await waitFor(
      async () => {
        const result = await sql.query<{ done: boolean }>(
          'select confirmed_flush_lsn >= $2::pg_lsn as done from pg_replication_slots where slot_name = $1',
          [env.BUDGET_CDC_SLOT, rows[0]!.lsn],
        );
        return result.rows[0]?.done;
      },
      { timeoutMs: 15 * 60_000, message: 'the consumer to confirm the end of the load' },
    );

    const result = await compare(sql, redis, env.BUDGET_CDC_KEY_PREFIX);
    const stopping = consumer;
    const exitCode = new Promise<number | null>((resolve) => stopping.once('exit', resolve));
    stopping.kill('SIGTERM');
    if ((await exitCode) !== 0) throw new Error('the consumer did not exit 0 on SIGTERM');
    consumer = undefined;
    return { ...result, kills, rows: options.rows, seconds: Math.round((performance.now() - started) / 100) / 10 };
  } finally {
    consumer?.kill('SIGKILL');
    await sql.end();
    redis.disconnect();
    await database.drop();
  }
}

/** One COPY of `rows` generated rows in one transaction, created within the last hour so they are alive. */
async function copyRows(databaseUrl: string, rows: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const now = Date.now();
    async function* lines(): AsyncGenerator<string> {
      const chunk: string[] = [];
      for (let i = 0; i < rows; i++) {
        const created = new Date(now - (i % 3_600_000)).toISOString();
        chunk.push(`copy-${i},${1 + (i % 30)},${i % 100_000}.${String(i % 100).padStart(2, '0')},${created}\n`);
        if (chunk.length === 10_000) yield chunk.splice(0).join('');
      }
      if (chunk.length > 0) yield chunk.join('');
    }
    await pipeline(
      Readable.from(lines()),
      client.query(copyFrom('copy jobs (job_id, days_online, budget, created_at) from stdin with (format csv)')),
    );
  } finally {
    await client.end();
  }
}

/**
 * Inserts, updates and deletes of single rows, one commit every few milliseconds, while `running()`: paced, so that
 * they leave bulk loads and the consumer their share of two cores. Also used by the cluster fault tests.
 */
export async function changeSingleRows(databaseUrl: string, running: () => boolean): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (let n = 0; running(); n++) {
      const id = `single-${n % SINGLE_JOBS}`;
      const budget = ((n * 7919) % 100_000) / 100;
      if (n % 17 === 16) await client.query('delete from jobs where job_id = $1', [id]);
      else
        await client.query(
          `insert into jobs (job_id, days_online, budget) values ($1, $2, $3)
           on conflict (job_id) do update set budget = excluded.budget, days_online = excluded.days_online`,
          [id, 1 + (n % 9), budget],
        );
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    await client.end();
  }
}

async function compare(
  sql: pg.Client,
  redis: Redis | Cluster,
  prefix: string,
): Promise<Omit<CrashScenarioResult, 'kills' | 'rows' | 'seconds'>> {
  const differences = await findDifferences(sql, redis, prefix);
  const count = (kind: DifferenceKind): number => differences.filter((d) => d.kind === kind).length;
  return {
    missing: count('missing'),
    wrong: count('wrong'),
    laterExpiry: count('later-expiry'),
    earlierExpiry: count('earlier-expiry'),
    extra: count('extra'),
  };
}
