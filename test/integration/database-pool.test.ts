import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { makePool } from '../../src/db/database.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// The consumer's pool must survive its server going away at any moment, also while a client is checked out
// between two queries: an 'error' event nobody listens to would end the process (seen as a flaky uncaught
// "terminating connection due to administrator command" while reconnect.test.ts restarted PostgreSQL).

describe('the database pool', () => {
  let database: TestDatabase;
  let admin: pg.Client;

  beforeAll(async () => {
    database = await createTestDatabase(inject('databaseUrl'), 'pool');
    admin = new pg.Client({ connectionString: database.url });
    admin.on('error', () => undefined);
    await admin.connect();
  });

  afterAll(async () => {
    await admin?.end();
    await database?.drop();
  });

  it('survives the server ending a checked-out client between queries, and connects again', async () => {
    const pool = makePool(database.url, 'budget-cdc pool test');
    try {
      const client = await pool.connect();
      const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
      // Not events.once: it would turn the 'error' event into a rejection, the very thing under test.
      const ended = new Promise((resolve) => client.once('end', resolve));
      await admin.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
      // The server's FATAL error and the closed socket arrive while no query runs on the client.
      await ended;
      await expect(client.query('select 1')).rejects.toThrow();
      client.release();

      const again = await pool.query<{ one: number }>('select 1 as one');
      expect(again.rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });
});
