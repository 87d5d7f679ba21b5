import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { killLiveCliProcesses, linesOf, startCli } from '../support/cli-process.js';
import { pgbouncerPath, pgbouncerVersion, startPgBouncer, type PgBouncerServer } from '../support/pgbouncer-server.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// Teams put PgBouncer in front of PostgreSQL. Writers may go through it; the consumer's replication connection
// cannot (PgBouncer before 1.23 refuses the `replication` startup parameter), and `run` must say so once and stop
// instead of retrying forever with PgBouncer's message as its only clue.

const SECOND = 1000;
/** A password with the characters that break a URL unless percent-encoded, and a quote for the auth file. */
const PASSWORD = `p@ss:w/rd%'"x`;
const WRITERS = 6;
/** PgBouncer's server connections per database: fewer than the writers, so it must multiplex them. */
const POOL_SIZE = 3;
const JOBS_PER_WRITER = 40;

const program = pgbouncerPath();
/** PgBouncer 1.23 and later pass replication connections on, so `run` through them is no mistake to report. */
const refusesReplication = (() => {
  if (program === undefined) return false;
  const version = pgbouncerVersion(program);
  // A version it cannot read is taken for an old one: the test then runs and says what it found.
  return version === undefined || version[0] * 1000 + version[1] < 1023;
})();
if (program === undefined) {
  console.warn('skipping the PgBouncer tests: no pgbouncer on PATH or in /usr/sbin (Debian: apt-get install pgbouncer)');
} else if (!refusesReplication) {
  console.warn(`skipping the PgBouncer replication test: ${program} passes replication connections on (PgBouncer 1.23 or later)`);
}

describe.skipIf(program === undefined)('PgBouncer in front of PostgreSQL', () => {
  const fixtures: PipelineFixture[] = [];
  let pgbouncer: PgBouncerServer;

  beforeAll(async () => {
    pgbouncer = await startPgBouncer(inject('databaseUrl'), { password: PASSWORD, poolSize: POOL_SIZE });
  });

  afterEach(async () => {
    await killLiveCliProcesses();
  });

  afterAll(async () => {
    // Databases first: dropping one ends PgBouncer's server connections to it.
    await Promise.all(fixtures.map((fx) => fx.close()));
    await pgbouncer?.stop();
  });

  async function fixture(name: string): Promise<PipelineFixture> {
    const fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), name);
    fixtures.push(fx);
    return fx;
  }

  it.skipIf(!refusesReplication)(
    'run through PgBouncer exits 1 saying to point DATABASE_URL at PostgreSQL itself, and never prints the password',
    async () => {
      const fx = await fixture('pgbouncer_run');
      const viaPgBouncer = pgbouncer.urlFor(fx.database.url);
      expect(viaPgBouncer).toContain(encodeURIComponent(PASSWORD));
      const run = startCli(['run', '--http-port', '0'], { ...fx.cliEnv(), DATABASE_URL: viaPgBouncer, LOG_LEVEL: 'info' });
      const { code, stdout, stderr } = await run.exit(30 * SECOND);

      expect(code).toBe(1);
      expect(linesOf(stderr).at(-1)).toMatch(
        /^budget-cdc: .*unsupported startup parameter: replication.*: DATABASE_URL goes through a connection pooler \(PgBouncer\), which cannot pass logical replication on: point it at PostgreSQL itself$/,
      );
      // Said once, not retried: no session failure logged before the stop.
      expect(stderr).not.toContain('replication session failed');
      for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), 'p@ss']) {
        expect(stdout).not.toContain(secret);
        expect(stderr).not.toContain(secret);
      }
    },
  );

  it('the consumer on the direct URL follows writers that go through PgBouncer in transaction pooling', async () => {
    const fx = await fixture('pgbouncer_writers');
    const consumer = await fx.startConsumer();
    // Writes before the slot exists would reach Redis through the initial load, not through the stream.
    await waitFor(() => consumer.health().streaming, { message: 'the consumer to stream from its new slot' });
    const writers = new pg.Pool({ connectionString: pgbouncer.urlFor(fx.database.url), max: WRITERS });
    writers.on('error', () => {});
    try {
      await Promise.all(Array.from({ length: WRITERS }, (_, writer) => writeJobs(writers, writer)));
      // The writers really went through PgBouncer: PostgreSQL saw fewer sessions than they had connections.
      expect(await serverConnectionsOf(fx)).toBeLessThanOrEqual(POOL_SIZE);
    } finally {
      await writers.end();
    }

    const { rows } = await fx.sql.query<{ count: string }>('select count(*) from jobs');
    // Per writer: every third job deleted, the rest alive.
    expect(Number(rows[0]!.count)).toBe(WRITERS * (JOBS_PER_WRITER - Math.ceil(JOBS_PER_WRITER / 3)));
    await fx.waitForConfirmed();
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    await consumer.stop();
  });
});

/** One writer's plain SQL: inserts (some in a multi-statement transaction), updates and deletes. */
async function writeJobs(pool: pg.Pool, writer: number): Promise<void> {
  for (let job = 0; job < JOBS_PER_WRITER; job++) {
    const jobId = `w${writer}-j${job}`;
    if (job % 2 === 0) {
      await pool.query('insert into jobs (job_id, days_online, budget) values ($1, $2, $3)', [jobId, 1 + (job % 7), `${job}.${writer}7`]);
    } else {
      // A transaction holds one server connection until COMMIT, which transaction pooling must respect.
      const client = await pool.connect();
      try {
        await client.query('begin');
        await client.query('insert into jobs (job_id, days_online, budget) values ($1, 3, 10.00)', [jobId]);
        await client.query('update jobs set budget = budget + 0.01, days_online = days_online + 1 where job_id = $1', [jobId]);
        await client.query('commit');
      } finally {
        client.release();
      }
    }
    if (job % 3 === 0) await pool.query('delete from jobs where job_id = $1', [jobId]);
    else if (job % 3 === 1) await pool.query('update jobs set budget = budget * 2 where job_id = $1', [jobId]);
  }
}

/** The sessions PostgreSQL has for the fixture's database other than the fixture's and the consumer's own. */
async function serverConnectionsOf(fx: PipelineFixture): Promise<number> {
  const { rows } = await fx.sql.query<{ count: string }>(
    `select count(*) from pg_stat_activity
     where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
       and application_name not like 'budget-cdc%'`,
  );
  return Number(rows[0]!.count);
}
