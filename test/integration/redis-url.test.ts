import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { checkpointKey } from '../../src/sink/internal-keys.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// REDIS_URL forms that ioredis reads: the batch writer must read them the same way (it takes ioredis's parsed
// options), or writes and checkpoint land in different databases, or the writer cannot log in, and the
// consumer resyncs or fails in a loop.

const USER = 'budget_cdc_url_test';
/** Characters that must be percent-encoded in a URL. */
const PASSWORD = `p@ss:w/rd%'x`;

describe('REDIS_URL read the same way by both Redis connections', () => {
  const base = new URL(inject('redisUrl'));
  let admin: Redis;
  const fixtures: PipelineFixture[] = [];

  beforeAll(async () => {
    admin = new Redis(inject('redisUrl'));
    expect(await admin.call('ACL', 'SETUSER', USER, 'on', `>${PASSWORD}`, '~*', '&*', '+@all')).toBe('OK');
  });

  afterAll(async () => {
    await Promise.all(fixtures.map((fx) => fx.close()));
    await admin?.call('ACL', 'DELUSER', USER);
    admin?.disconnect();
  });

  it.each([
    ['the database in the path', `redis://${base.host}/4`, 4],
    ['the database in the query string', `redis://${base.host}?db=3`, 3],
    ['a user and a percent-encoded password', `redis://${USER}:${encodeURIComponent(PASSWORD)}@${base.host}/5`, 5],
  ])('%s: jobs and checkpoint in that database, as that user, with no resync after the first load', async (name, redisUrl, db) => {
    const fx = await makePipelineFixture(inject('databaseUrl'), redisUrl, `redis_url_${db}`);
    fixtures.push(fx);
    const consumer = await fx.startConsumer();
    const rebuilds: string[] = [];
    consumer.events.on('resync-started', ({ cause }) => rebuilds.push(cause));
    await waitFor(async () => (await fx.redis.exists(checkpointKey(fx.config.keyPrefix))) === 1, { message: 'the initial load' });
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'url-' || g, 2, 5.00 from generate_series(1, 2000) g`);
    await fx.waitForConfirmed();
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    const inDatabase = new Redis(`${inject('redisUrl')}/${db}`);
    const inDatabaseZero = new Redis(inject('redisUrl'));
    try {
      expect(await inDatabase.exists(fx.config.keyPrefix + 'url-1', checkpointKey(fx.config.keyPrefix))).toBe(2);
      expect(await inDatabaseZero.exists(fx.config.keyPrefix + 'url-1', checkpointKey(fx.config.keyPrefix))).toBe(0);
      // The batch writer (named after the slot) is in that database, as that user, like ioredis's connection.
      const clients = ((await admin.call('CLIENT', 'LIST', 'TYPE', 'normal')) as string)
        .split('\n')
        .filter((line) => line.includes(` name=budget-cdc-writer-${fx.config.slotName} `));
      expect(clients.length).toBeGreaterThan(0);
      for (const line of clients) {
        expect(line).toContain(` db=${db} `);
        expect(line).toContain(` user=${name.includes('user') ? USER : 'default'} `);
      }
    } finally {
      inDatabase.disconnect();
      inDatabaseZero.disconnect();
    }
    expect(rebuilds).toEqual(['new-slot']);
  });
});
