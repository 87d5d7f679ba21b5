import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { killLiveCliProcesses, runCli } from '../support/cli-process.js';
import { startPostgres, type PostgresServer } from '../support/postgres-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// `run` applies migrations itself, so it must check first that it can stream at all: a server or a role that
// cannot must be told what to fix, and be left as it was (no jobs table, no migrations, no publication).

const SECOND = 1000;

/** What `run` would have created, as found in the database at `url`. */
async function createdObjects(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(
      `select relname as name from pg_class where relnamespace = 'public'::regnamespace
       union all select pubname from pg_publication`,
    );
    return rows.map((row) => row.name);
  } finally {
    await client.end();
  }
}

describe('run checks what streaming needs before it changes the database', () => {
  let replicaOnly: PostgresServer;
  let database: TestDatabase;
  const role = `no_replication_${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    replicaOnly = await startPostgres({ extraSettings: { wal_level: 'replica' } });
    database = await createTestDatabase(inject('databaseUrl'), 'prerequisites');
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      await admin.query(`create role ${role} login password 'secret'`);
      await admin.query(`grant create on schema public to ${role}`);
    } finally {
      await admin.end();
    }
  }, 60 * SECOND);

  afterAll(async () => {
    await killLiveCliProcesses();
    await database?.drop();
    const admin = new pg.Client({ connectionString: inject('databaseUrl') });
    await admin.connect();
    await admin.query(`drop role if exists ${role}`).finally(() => admin.end());
    await replicaOnly?.stop();
  });

  it('on a server with wal_level=replica: exits 1 naming wal_level, and creates nothing', async () => {
    const outcome = await runCli(['run'], { DATABASE_URL: replicaOnly.url, REDIS_URL: inject('redisUrl'), BUDGET_CDC_HTTP_PORT: '0' });
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toMatch(/wal_level=replica: set wal_level=logical/);
    expect(outcome.stderr).toMatch(/nothing was changed/);
    expect(await createdObjects(replicaOnly.url)).toEqual([]);
  });

  it('as a role without REPLICATION: exits 1 saying how to grant it, and creates nothing', async () => {
    const url = new URL(database.url);
    url.username = role;
    url.password = 'secret';
    const outcome = await runCli(['run'], { DATABASE_URL: url.toString(), REDIS_URL: inject('redisUrl'), BUDGET_CDC_HTTP_PORT: '0' });
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toContain(`ALTER ROLE ${role} REPLICATION`);
    expect(outcome.stderr).not.toContain('secret');
    expect(await createdObjects(database.url)).toEqual([]);
  });
});
