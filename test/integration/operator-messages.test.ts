import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { killLiveCliProcesses, runCli, startCli } from '../support/cli-process.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Issue 13, "Small things": what the CLI says when the role is missing or may only read, and that a reader
// closing the pipe early (`budget-cdc … | head`) ends the command quietly.

describe('operator messages', () => {
  const suffix = randomBytes(3).toString('hex');
  const reader = `budget_reader_${suffix}`;
  const password = `reader-${suffix}`;
  const redisUrl = inject('redisUrl');
  let database: TestDatabase;
  let sql: pg.Client;

  function urlAs(user: string, userPassword: string): string {
    const url = new URL(database.url);
    url.username = user;
    url.password = userPassword;
    return url.toString();
  }

  beforeAll(async () => {
    database = await createTestDatabase(inject('databaseUrl'), 'messages');
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    const migrated = await runCli(['migrate'], { DATABASE_URL: database.url, REDIS_URL: redisUrl });
    expect(migrated.code, migrated.stderr).toBe(0);
    // A role that can read jobs and nothing more, as an analyst's or the consumer's would be.
    await sql.query(`create role ${reader} login password '${password}'`);
    await sql.query(`grant select on jobs to ${reader}`);
  });

  afterAll(async () => {
    await killLiveCliProcesses();
    await sql?.end();
    await database?.drop();
    const admin = new pg.Client({ connectionString: inject('databaseUrl') });
    await admin.connect();
    await admin.query(`drop role if exists ${reader}`);
    await admin.end();
  });

  it('names a role that does not exist instead of blaming pg_hba.conf', async () => {
    const missing = `no_such_role_${suffix}`;
    const { code, stderr } = await runCli(['status'], { DATABASE_URL: urlAs(missing, 'x'), REDIS_URL: redisUrl });
    expect(code).toBe(1);
    expect(stderr).toContain(`role "${missing}" does not exist: create it ("budget-cdc migrate --create-role ${missing}"`);
    expect(stderr).not.toContain('pg_hba');
  });

  it('says to grant INSERT when a read-only role loads, not to fix the input', async () => {
    const csv = join(tmpdir(), `budget-cdc-readonly-${suffix}.csv`);
    await writeFile(csv, 'job_id,days_online,budget\nread-only-1,2,10.00\n');
    const { code, stderr } = await runCli(['load', csv], { DATABASE_URL: urlAs(reader, password), REDIS_URL: redisUrl });
    expect(code).toBe(1);
    expect(stderr).toContain('permission denied for table jobs');
    expect(stderr).toContain('GRANT INSERT ON jobs TO this role, or load as a role that can write to jobs');
    expect(stderr).not.toContain('fix the input');
    expect((await sql.query(`select count(*)::int as n from jobs`)).rows).toEqual([{ n: 0 }]);
  });
});

describe('budget-cdc demo | head', () => {
  let fx: PipelineFixture;

  beforeAll(async () => {
    fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), 'epipe');
    await fx.startConsumer();
  });

  afterAll(async () => {
    await killLiveCliProcesses();
    await fx?.close();
  });

  it('exits quietly, with no stack trace, when the reader of its output has gone (EPIPE)', async () => {
    // The read end closes before the CLI has started: demo's first line fails with EPIPE while it still has
    // rows to load and more to print, as when `head` has read its lines and exited.
    const cli = startCli(['demo', '--rows', '1000'], fx.cliEnv());
    cli.child.stdout!.destroy();
    const { code, stderr } = await cli.exit();
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
