import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startPostgres, type PostgresServer } from '../support/postgres-server.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { waitFor } from '../support/wait-for.js';

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function showSetting(url: string, name: 'wal_level' | 'timezone'): Promise<string | undefined> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ value: string }>('select current_setting($1) as value', [name]);
    return rows[0]?.value;
  });
}

describe('the shared PostgreSQL', () => {
  let database: TestDatabase | undefined;

  afterAll(async () => {
    await database?.drop();
  });

  it('answers and has wal_level = logical', async () => {
    expect(await showSetting(inject('databaseUrl'), 'wal_level')).toBe('logical');
  });

  it('takes a pgoutput slot in a database of its own, and drop() removes slot and database', async () => {
    const adminUrl = inject('databaseUrl');
    database = await createTestDatabase(adminUrl, 'Harness Test!');
    const databaseName = new URL(database.url).pathname.slice(1);
    expect(databaseName).toMatch(/^harness_test__[0-9a-f]{8}$/);

    const slotName = `harness_${databaseName.slice(-8)}`;
    const created = await withClient(database.url, async (client) => {
      const { rows } = await client.query<{ slot_name: string }>(
        "select slot_name from pg_create_logical_replication_slot($1, 'pgoutput')",
        [slotName],
      );
      return rows[0]?.slot_name;
    });
    expect(created).toBe(slotName);

    await withClient(adminUrl, async (client) => {
      const slots = await client.query('select plugin, database from pg_replication_slots where slot_name = $1', [slotName]);
      expect(slots.rows).toEqual([{ plugin: 'pgoutput', database: databaseName }]);

      // The slot is left in place on purpose: drop() must remove it before it can drop the database.
      await database?.drop();
      database = undefined;

      const leftSlots = await client.query('select 1 from pg_replication_slots where slot_name = $1', [slotName]);
      expect(leftSlots.rowCount).toBe(0);
      const leftDatabases = await client.query('select 1 from pg_database where datname = $1', [databaseName]);
      expect(leftDatabases.rowCount).toBe(0);
    });
  });
});

describe('the shared Redis', () => {
  it('answers PING', async () => {
    const redis = new Redis(inject('redisUrl'), { lazyConnect: true });
    try {
      await redis.connect();
      expect(await redis.ping()).toBe('PONG');
    } finally {
      redis.disconnect();
    }
  });
});

describe('startRedis', () => {
  let server: RedisServer | undefined;
  let redis: Redis | undefined;

  beforeAll(async () => {
    server = await startRedis();
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('stops, so that commands fail, and starts again on the same port', async () => {
    if (!server) throw new Error('startRedis() did not run');
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    // No offline queue and no retries per command: while the server is down a command must fail, not wait.
    redis = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true });
    redis.on('error', () => {});
    await redis.connect();
    await redis.set('harness:key', 'before');
    expect(await redis.get('harness:key')).toBe('before');

    await server.stop();
    await expect(redis.get('harness:key')).rejects.toThrow();

    await server.start();
    // The same client reconnects by itself to the same port; persistence is off, so the old key is gone.
    const answer = await waitFor(() => redis?.ping(), { message: 'the restarted Redis to answer PING' });
    expect(answer).toBe('PONG');
    expect(await redis.get('harness:key')).toBeNull();
  });
});

describe('startPostgres', () => {
  let server: PostgresServer | undefined;

  afterAll(async () => {
    await server?.stop();
  });

  it('applies the timezone option, restarts, and removes its files on stop', async () => {
    server = await startPostgres({ timezone: 'America/St_Johns' });
    expect(server.url).toBe(`postgres://postgres@127.0.0.1:${server.port}/postgres`);
    expect(await showSetting(server.url, 'timezone')).toBe('America/St_Johns');
    expect(await showSetting(server.url, 'wal_level')).toBe('logical');

    await withClient(server.url, (client) => client.query('create table survives_restart (id int)'));
    await server.restart();
    const tables = await withClient(server.url, (client) => client.query("select 1 from pg_tables where tablename = 'survives_restart'"));
    expect(tables.rowCount).toBe(1);

    const { dataDir } = server;
    await server.stop();
    server = undefined;
    expect(existsSync(dataDir)).toBe(false);
  });
});
