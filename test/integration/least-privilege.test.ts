import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { killLiveCliProcesses, runCli, startCli, type CliProcess } from '../support/cli-process.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { waitFor } from '../support/wait-for.js';

// `migrate --create-role` makes the role the consumer should run as: LOGIN REPLICATION and SELECT on what it
// reads, nothing more. `run` and `status` work under it.

const SECOND = 1000;

describe('least privilege: the consumer runs as a role with REPLICATION and SELECT only', () => {
  const suffix = randomBytes(3).toString('hex');
  const role = `budget_consumer_${suffix}`;
  const password = `role-s3cret-${suffix}`;
  const keyPrefix = `t:role:${suffix}:job:`;
  const ownNames = ['--slot', `role_slot_${suffix}`, '--publication', `role_pub_${suffix}`, '--key-prefix', keyPrefix];
  const redisUrl = inject('redisUrl');
  let database: TestDatabase;
  let sql: pg.Client;
  let redis: Redis;
  let consumerUrl: string;
  let runner: CliProcess | undefined;

  beforeAll(async () => {
    database = await createTestDatabase(inject('databaseUrl'), 'role');
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    redis = new Redis(redisUrl);
    const url = new URL(database.url);
    url.username = role;
    url.password = password;
    consumerUrl = url.toString();
  });

  afterAll(async () => {
    await killLiveCliProcesses();
    redis?.disconnect();
    await sql?.end();
    await database?.drop();
    // Its grants went with the database; the role is the server's and must go too.
    const admin = new pg.Client({ connectionString: inject('databaseUrl') });
    await admin.connect();
    await admin.query(`drop role if exists ${role}`);
    await admin.end();
  });

  it('migrate --create-role creates the role, saying how to connect, without printing the password', async () => {
    const { code, stdout, stderr } = await runCli(['migrate', ...ownNames, '--create-role', role, '--role-password', password], {
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl,
    });
    expect(code, stderr).toBe(0);
    expect(stdout).toContain(
      `role ${role} created: LOGIN REPLICATION, SELECT on jobs, password set; run the consumer as postgres://${role}:***@`,
    );
    expect(stdout + stderr).not.toContain(password);

    const { rows } = await sql.query<{
      rolsuper: boolean;
      rolreplication: boolean;
      rolcanlogin: boolean;
      rolcreatedb: boolean;
      rolcreaterole: boolean;
    }>('select rolsuper, rolreplication, rolcanlogin, rolcreatedb, rolcreaterole from pg_roles where rolname = $1', [role]);
    expect(rows).toEqual([{ rolsuper: false, rolreplication: true, rolcanlogin: true, rolcreatedb: false, rolcreaterole: false }]);
    const privileges = await sql.query<{ privilege: string; granted: boolean }>(
      `select p as privilege, has_table_privilege($1, 'jobs', p) as granted
       from unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) as p`,
      [role],
    );
    expect(privileges.rows).toEqual([
      { privilege: 'SELECT', granted: true },
      { privilege: 'INSERT', granted: false },
      { privilege: 'UPDATE', granted: false },
      { privilege: 'DELETE', granted: false },
      { privilege: 'TRUNCATE', granted: false },
    ]);

    const again = await runCli(['migrate', ...ownNames, '--create-role', role], { DATABASE_URL: database.url, REDIS_URL: redisUrl });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`role ${role} updated`);
  });

  it('run under the role creates its slot, loads the table and streams changes', async () => {
    await sql.query(`insert into jobs (job_id, days_online, budget) values ('role-before', 2, 10.00)`);
    runner = startCli(['run', ...ownNames, '--http-port', '0'], { DATABASE_URL: consumerUrl, REDIS_URL: redisUrl, LOG_LEVEL: 'info' });
    await waitFor(
      async () => {
        if (runner!.child.exitCode !== null) throw new Error(`run exited: ${runner!.output().stderr}`);
        return redis.get(keyPrefix + 'role-before');
      },
      { timeoutMs: 60 * SECOND, message: 'the snapshot row to reach Redis' },
    );
    await sql.query(`insert into jobs (job_id, days_online, budget) values ('role-after', 2, 10.00)`);
    const value = await waitFor(() => redis.get(keyPrefix + 'role-after'), { timeoutMs: 30 * SECOND, message: 'the streamed row' });
    expect(JSON.parse(value)).toMatchObject({ job_id: 'role-after', daily: ['5.00', '5.00'] });
    const { rows } = await sql.query<{ usename: string }>(
      `select usename from pg_stat_replication r join pg_replication_slots s on s.active_pid = r.pid where s.slot_name = $1`,
      [`role_slot_${suffix}`],
    );
    expect(rows).toEqual([{ usename: role }]);
  });

  it('status works under the role and exits 0', async () => {
    const { code, stdout, stderr } = await runCli(['status', '--json', ...ownNames], { DATABASE_URL: consumerUrl, REDIS_URL: redisUrl });
    expect(code, stderr + stdout).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      slot: { exists: true, active: true },
      database: { url: expect.stringContaining(`${role}:***@`) },
    });
    expect(stdout).not.toContain(password);
  });

  it('run under the role stops on SIGTERM with exit 0, and logged no password', async () => {
    runner!.child.kill('SIGTERM');
    const { code, stderr } = await runner!.exit(10 * SECOND);
    expect(code, stderr).toBe(0);
    expect(stderr).not.toContain(password);
  });
});
