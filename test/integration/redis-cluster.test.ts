import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { Cluster } from 'ioredis';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ObservedConsumer as Consumer } from '../../src/commands/observed-consumer.js';
import { hashSlot, HASH_SLOTS } from '../../src/sink/hash-slot.js';
import { slotCheckpointKey } from '../../src/sink/internal-keys.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// The contract on a Redis Cluster (3 masters, 3 replicas): the same keys, values and expiries as on one Redis,
// spread over the masters by hash slot, with a checkpoint in every slot.

describe('Redis Cluster: the contract', () => {
  let cluster: RedisCluster;
  let fx: PipelineFixture;
  let reader: Cluster;
  let consumer: Consumer;
  /** Why Redis was rebuilt from the table, in order: only the first load, or a replay went wrong. */
  const rebuilds: string[] = [];
  /** Why sessions ended, for the messages of waits that time out. */
  const failures: string[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
    fx = await makePipelineFixture(inject('databaseUrl'), inject('redisUrl'), 'cluster');
    reader = new Cluster(cluster.nodes.slice(0, 3).map((node) => ({ host: '127.0.0.1', port: node.port })));
    reader.on('error', () => undefined);
    consumer = await fx.startConsumer({ redisClusterNodes: [{ host: '127.0.0.1', port: cluster.nodes[0]!.port }] });
    consumer.events.on('resync-started', ({ cause }) => rebuilds.push(cause));
    consumer.events.on('session-failed', ({ error }) => failures.push(error.message));
    await waitFor(() => fx.confirmedLsn(), { message: 'the slot to be created' });
  }, 120_000);

  afterAll(async () => {
    await consumer?.stop();
    reader?.disconnect();
    await fx?.close();
    await cluster?.stop();
  });

  async function expectTableInRedis(): Promise<void> {
    await fx.waitForConfirmed();
    expect(await compareRedisWithTable(fx.sql, reader, fx.config.keyPrefix)).toEqual([]);
  }

  it('gives every hash slot a checkpoint, each in its own slot', async () => {
    await waitFor(async () => (await reader.exists(slotCheckpointKey(fx.config.keyPrefix, 0))) === 1, { message: 'the initial load' });
    for (const slot of [0, 1, 5000, 16383]) expect(hashSlot(slotCheckpointKey(fx.config.keyPrefix, slot))).toBe(slot);
    const present = await Promise.all(
      Array.from({ length: HASH_SLOTS }, (_, slot) => reader.exists(slotCheckpointKey(fx.config.keyPrefix, slot))),
    );
    expect(present.filter((count) => count === 1)).toHaveLength(HASH_SLOTS);
  });

  it('writes inserts, multi-row inserts and COPY loads, spread over every master', async () => {
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('single', 3, 10.00)`);
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget) select 'multi-' || g, 1 + g % 30, g from generate_series(1, 3000) g`,
    );
    const csv = Array.from({ length: 5_000 }, (_, i) => `copy-${i},${1 + (i % 30)},${i}.${String(i % 100).padStart(2, '0')}\n`).join('');
    await pipeline(Readable.from([csv]), fx.sql.query(copyFrom('copy jobs (job_id, days_online, budget) from stdin with (format csv)')));
    await expectTableInRedis();
    expect(JSON.parse((await reader.get(`${fx.config.keyPrefix}single`))!)).toMatchObject({
      job_id: 'single',
      budget: '10.00',
      days_online: 3,
    });
    const keysPerMaster = await Promise.all(reader.nodes('master').map((node) => node.dbsize()));
    for (const keys of keysPerMaster) expect(keys).toBeGreaterThan(2_000);
  });

  it('recomputes updates, moves renamed keys across slots, removes deleted and offline jobs', async () => {
    await fx.sql.query(`update jobs set budget = budget + 1 where job_id like 'multi-%' and (substr(job_id, 7))::int % 3 = 0`);
    await fx.sql.query(`update jobs set job_id = 'renamed-' || job_id where job_id like 'copy-%' and (substr(job_id, 6))::int % 7 = 0`);
    await fx.sql.query(`delete from jobs where job_id like 'multi-%' and (substr(job_id, 7))::int % 5 = 0`);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget, created_at) values ('offline', 2, 5.00, now() - interval '3 days')`);
    await fx.sql.query(`update jobs set created_at = now() - interval '40 days' where job_id = 'single'`);
    await expectTableInRedis();
    expect(await reader.exists(`${fx.config.keyPrefix}copy-7`)).toBe(0);
    expect(await reader.exists(`${fx.config.keyPrefix}renamed-copy-7`)).toBe(1);
    expect(await reader.exists(`${fx.config.keyPrefix}offline`)).toBe(0);
    expect(await reader.exists(`${fx.config.keyPrefix}single`)).toBe(0);
  });

  it('writes job_ids with hash tags, braces and multibyte characters to the slot their key hashes to', async () => {
    const ids = ['{tag}a', '{tag}b', 'x{}y', 'é{ü}', '{', '}{'];
    for (const id of ids) await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ($1, 4, 8.00)`, [id]);
    await expectTableInRedis();
  });

  it('sets aside rows it cannot process as dead letters in their own slot, and the stream goes on', async () => {
    const deadLetterKey = `budget-cdc:dead-letters:${fx.config.slotName}`;
    await fx.sql.query(`insert into jobs (job_id, days_online, budget, created_at) values ('bad-infinity', 2, 1.00, 'infinity')`);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('bad-nan', 2, 'NaN')`);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('good-after-bad', 2, 1.00)`);
    await fx.waitForConfirmed();
    const letters = (await reader.lrange(deadLetterKey, 0, -1)).map((entry) => JSON.parse(entry) as { job_id: string; reason: string });
    expect(letters.map((letter) => letter.job_id).sort()).toEqual(['bad-infinity', 'bad-nan']);
    expect(await reader.exists(`${fx.config.keyPrefix}good-after-bad`)).toBe(1);
    // The table oracle reads no infinite or NaN row: they go, and the rest must match.
    await fx.sql.query(`delete from jobs where job_id like 'bad-%'`);
    await expectTableInRedis();
  });

  it('removes every job key on every master on TRUNCATE, and keeps streaming after it', async () => {
    await fx.sql.query('truncate jobs');
    await fx.waitForConfirmed();
    const left = await Promise.all(reader.nodes('master').map((node) => node.keys(`${fx.config.keyPrefix}*`)));
    expect(left.flat()).toEqual([]);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'after-' || g, 5, 1.00 from generate_series(1, 500) g`);
    await expectTableInRedis();
    expect(consumer.health()).toMatchObject({ redisConnected: true, streaming: true, role: 'active' });
    expect(rebuilds).toEqual(['new-slot']);
  });

  it('stops and resumes with nothing lost or rewritten', async () => {
    await consumer.stop();
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'while-down-' || g, 5, 1.00 from generate_series(1, 500) g`);
    consumer = await fx.startConsumer({ redisClusterNodes: [{ host: '127.0.0.1', port: cluster.nodes[1]!.port }] });
    consumer.events.on('resync-started', ({ cause }) => rebuilds.push(cause));
    consumer.events.on('session-failed', ({ error }) => failures.push(error.message));
    await expectTableInRedis();
    expect(rebuilds).toEqual(['new-slot']);
  });

  /** The slots `master` serves, from CLUSTER SLOTS. */
  async function slotsOf(master: { options: { port?: number } }): Promise<number[]> {
    const ranges = (await reader.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
    return ranges
      .filter(([, , [, port]]) => port === master.options.port)
      .flatMap(([first, last]) => Array.from({ length: last - first + 1 }, (_, i) => first + i));
  }

  it('rebuilds when one master lost its data (FLUSHALL), noticed by the next write to one of its slots', async () => {
    const [master] = reader.nodes('master');
    expect(await master!.flushall()).toBe('OK');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'after-flush-' || g, 5, 1.00 from generate_series(1, 300) g`);
    await waitFor(() => rebuilds.includes('redis-empty'), { message: 'a rebuild for the lost master', timeoutMs: 60_000 });
    await expectTableInRedis();
  });

  it('rebuilds at start when one master went back in time (its slots hold checkpoints older than what PostgreSQL was told)', async () => {
    await consumer.stop();
    const master = reader.nodes('master')[1]!;
    const slots = await slotsOf(master);
    // As a restore of that master from an old snapshot: older checkpoints in its slots, some of its job keys gone.
    await Promise.all(slots.map((slot) => reader.set(slotCheckpointKey(fx.config.keyPrefix, slot), '0/1#-1 ack=0/1 writer=old')));
    const { rows } = await fx.sql.query<{ job_id: string }>('select job_id from jobs');
    const lost = rows
      .map((row) => `${fx.config.keyPrefix}${row.job_id}`)
      .filter((key) => slots.includes(hashSlot(key)))
      .slice(0, 50);
    expect(lost.length).toBeGreaterThan(0);
    await Promise.all(lost.map((key) => reader.del(key)));
    consumer = await fx.startConsumer({ redisClusterNodes: [{ host: '127.0.0.1', port: cluster.nodes[2]!.port }] });
    consumer.events.on('resync-started', ({ cause }) => rebuilds.push(cause));
    consumer.events.on('session-failed', ({ error }) => failures.push(error.message));
    await waitFor(() => rebuilds.includes('redis-went-back'), { message: 'a rebuild for the master that went back', timeoutMs: 60_000 });
    await expectTableInRedis();
  });

  it('rebuilds when a slot checkpoint is not the one this session wrote there (someone else wrote it) while streaming', async () => {
    // A session that starts after the foreign write adopts it as that slot's checkpoint: the write must land while one streams.
    await waitFor(() => consumer.health().streaming, { message: 'a streaming session' });
    const before = rebuilds.filter((cause) => cause === 'redis-went-back').length;
    const key = `${fx.config.keyPrefix}overwritten`;
    await reader.set(slotCheckpointKey(fx.config.keyPrefix, hashSlot(key)), '0/2#-1 ack=0/2 writer=someone');
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) values ('overwritten', 3, 3.00)`);
    await waitFor(() => rebuilds.filter((cause) => cause === 'redis-went-back').length > before, {
      message: 'a rebuild for the overwritten slot checkpoint',
      timeoutMs: 60_000,
    }).catch((error: Error) => {
      throw new Error(`${error.message}; rebuilds: ${rebuilds.join(', ')}; session failures: ${failures.join(' | ')}`);
    });
    await expectTableInRedis();
  });

  it('with --redis-min-replicas 1, holds acknowledgements while one master has no replica, and goes on once it is back', async () => {
    await consumer.stop();
    consumer = await fx.startConsumer({ redisClusterNodes: [{ host: '127.0.0.1', port: cluster.nodes[0]!.port }], redisMinReplicas: 1 });
    consumer.events.on('resync-started', ({ cause }) => rebuilds.push(cause));
    consumer.events.on('session-failed', ({ error }) => failures.push(error.message));
    const confirmedBy: number[] = [];
    let behind = 0;
    consumer.events.on('replicas-confirmed', ({ replicas }) => confirmedBy.push(replicas));
    consumer.events.on('replicas-behind', () => behind++);
    await fx.sql.query(`insert into jobs (job_id, days_online, budget) select 'replicated-' || g, 5, 1.00 from generate_series(1, 300) g`);
    await fx.waitForConfirmed();
    expect(confirmedBy.length).toBeGreaterThan(0);
    expect(Math.min(...confirmedBy)).toBeGreaterThanOrEqual(1);
    // The harness creates masters first: nodes 3 to 5 are the replicas. One master is left with none.
    const replica = cluster.nodes[3]!;
    await replica.crash();
    await fx.sql.query(
      `insert into jobs (job_id, days_online, budget) select 'unreplicated-' || g, 5, 1.00 from generate_series(1, 300) g`,
    );
    const inserted = await fx.currentLsn();
    await waitFor(() => behind > 0, { message: 'acknowledgements held for the master without a replica', timeoutMs: 30_000 });
    expect((await fx.confirmedLsn())!).toBeLessThan(inserted);
    await replica.start();
    await fx.waitForConfirmed(inserted, 60_000);
    await expectTableInRedis();
  });
});
