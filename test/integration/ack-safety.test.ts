import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ObservedConsumer as Consumer } from '../../src/commands/observed-consumer.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// The slot's confirmed position must never pass a change that Redis does not hold. This file has a Redis of
// its own, because it stops it.

describe('acknowledgement follows Redis, never runs ahead of it', () => {
  let redisServer: RedisServer;
  let fx: PipelineFixture;
  let consumer: Consumer;

  beforeAll(async () => {
    redisServer = await startRedis();
    fx = await makePipelineFixture(inject('databaseUrl'), redisServer.url, 'ack_safety');
    consumer = await fx.startConsumer();
    await waitFor(() => fx.confirmedLsn(), { message: 'the slot to be created' });
  });

  afterAll(async () => {
    await fx?.close();
    await redisServer?.stop();
  });

  it('holds the confirmed position while Redis is down, then delivers every row once it is back', async () => {
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('before-outage', 2, 10.00)`);
    await fx.waitForConfirmed();
    expect(await fx.getJob('before-outage')).not.toBeNull();

    fx.redis.disconnect();
    await redisServer.stop();
    let failures = 0;
    consumer.events.on('session-failed', () => failures++);

    // A small transaction first (its writes fit in one batch, written after its commit is seen), then a
    // large one (batches flushed before its commit arrives).
    await fx.sql.query('begin');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('outage-single', 3, 1.00)`);
    // Before this transaction's commit record: the slot may confirm up to here (idle keepalives), never past.
    const beforeCommit = await fx.currentLsn();
    await fx.sql.query('commit');
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget) select 'outage-' || g, 1 + g % 10, g / 100.0 from generate_series(1, 2000) g`,
    );
    const afterInserts = await fx.currentLsn();

    // The consumer received the rows, failed to write them and retried (from the slot) at least twice.
    await waitFor(() => failures >= 3, { message: 'the consumer to fail writing while Redis is down, and retry' });
    expect(await fx.confirmedLsn()).toBeLessThanOrEqual(beforeCommit);

    await redisServer.start();
    await fx.redis.connect();
    await fx.waitForConfirmed(afterInserts);
    // Redis restarted empty (no persistence): the row from before the outage is gone, the rest must be there.
    await fx.sql.query(`delete from jobs where job_id = 'before-outage'`);
    await fx.waitForConfirmed();
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
    expect(await fx.getJob('outage-2000')).not.toBeNull();
    expect(await fx.getJob('outage-single')).not.toBeNull();
  });

  it('pauses reading from PostgreSQL while Redis stalls, instead of buffering', async () => {
    const pauses: boolean[] = [];
    consumer.events.on('backpressure', ({ paused }) => pauses.push(paused));
    // Redis accepts connections but answers no write for 3 s: batches pile up until reading pauses.
    expect(await fx.redis.call('CLIENT', 'PAUSE', '3000', 'WRITE')).toBe('OK');
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget) select 'stall-' || g, 1 + g % 10, g / 100.0 from generate_series(1, 30000) g`,
    );
    await fx.waitForConfirmed();
    expect(pauses[0]).toBe(true);
    expect(pauses).toContain(false);
    expect(await compareRedisWithTable(fx.sql, fx.redis, fx.config.keyPrefix)).toEqual([]);
  });
});
