import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { RebuildCause } from '../../src/sink/rebuild-record.js';
import { makePipelineFixture, type PipelineFixture } from '../support/pipeline-fixture.js';
import { startSentinelGroup, type SentinelGroup } from '../support/redis-sentinel-group.js';
import { compareRedisWithTable } from '../support/table-oracle.js';
import { waitFor } from '../support/wait-for.js';

// Redis behind Sentinel: one master, one replica, three Sentinels. The master is killed with SIGKILL in the
// middle of a 100k-row load, while its replica is stopped. The consumer finds the new master through the
// Sentinels by itself. Without
// WAIT the promoted replica may lack acknowledged writes, which rollback detection repairs with a rebuild;
// with --redis-min-replicas 1 it holds every acknowledged write, and no rebuild is needed.

const SECOND = 1000;
const LOAD_ROWS = 100_000;
const DOWN_AFTER_MS = 2 * SECOND;
const ROWS_PER_TRANSACTION = 1_000;
/** A failover, a rebuild and the old master's return as a replica (Sentinel waits about 10 s) take a while. */
const TEST_TIMEOUT_MS = 150 * SECOND;

describe('Sentinel failover during a load', () => {
  let group: SentinelGroup | undefined;
  let fx: PipelineFixture | undefined;
  let master: Redis | undefined;

  afterEach(async () => {
    master?.disconnect();
    await fx?.close();
    await group?.stop();
  });

  async function failOverDuringLoad(name: string, minReplicas: number): Promise<RebuildCause[]> {
    // Not shorter: on two busy cores a master that is slow to answer for a second would be failed over again.
    group = await startSentinelGroup({ downAfterMs: DOWN_AFTER_MS });
    fx = await makePipelineFixture(inject('databaseUrl'), group.nodes[0].url, name);
    const sentinels = group.sentinels.map(({ host, port }) => ({ host, port }));
    // The test's own view of whichever node is master now.
    master = new Redis({ sentinels, name: group.masterName });
    // It reconnects by itself through the failover; its errors meanwhile are expected.
    master.on('error', () => undefined);
    const consumer = await fx.startConsumer({
      redisSentinels: sentinels,
      redisSentinelMaster: group.masterName,
      redisMinReplicas: minReplicas,
    });
    const rebuilds: RebuildCause[] = [];
    consumer.events.on('resync-started', ({ cause }) => rebuilds.push(cause));
    await waitFor(() => fx!.confirmedLsn(), { message: 'the slot to be created' });

    // The load comes as many transactions, so that positions are acknowledged while it flows.
    const load = (async () => {
      for (let first = 1; first <= LOAD_ROWS; first += ROWS_PER_TRANSACTION) {
        await fx!.sql.query(
          `insert into jobs (job_id, days_online, budget) select 'sf-' || g, 1 + g % 40, g / 10.0 from generate_series($1::int, $2::int) g`,
          [first, first + ROWS_PER_TRANSACTION - 1],
        );
      }
    })();
    // Killed while the consumer writes the load: part of it is in Redis, part not yet. The replica is stopped
    // (SIGSTOP) meanwhile, so the master confirms tens of MB of writes that never reach it, far more than the
    // sockets between them buffer: those are lost with the master.
    await waitFor(async () => (await master!.exists(`${fx!.config.keyPrefix}sf-1000`)) === 1, { message: 'the load to arrive' });
    const masterPort = await group.currentMasterPort();
    const replica = new Redis(group.nodes.find((node) => node.port !== masterPort)!.url);
    const replicaPid = Number(/process_id:(\d+)/.exec(await replica.info('server'))![1]);
    replica.disconnect();
    process.kill(replicaPid, 'SIGSTOP');
    let oldMasterPort: number;
    try {
      // Without WAIT the consumer goes on (and acknowledges) while the replica misses it all; with WAIT 1 it
      // holds its acknowledgements until a replica confirms, which none does now.
      await waitFor(
        async () =>
          minReplicas === 0
            ? (await master!.exists(`${fx!.config.keyPrefix}sf-${LOAD_ROWS / 2}`)) === 1
            : consumer.health().replicasBehind !== undefined,
        { timeoutMs: 60 * SECOND, message: 'the load to go on while the replica is stopped' },
      );
      ({ oldMasterPort } = await group.killMaster());
    } finally {
      process.kill(replicaPid, 'SIGCONT');
    }
    await load;
    await group.waitForFailover(oldMasterPort, 30 * SECOND);
    if (minReplicas > 0) {
      // The new master has no replica until the old one comes back: acknowledgements wait, and /readyz says why.
      await waitFor(() => consumer.health().replicasBehind, { message: 'the consumer to hold acknowledgements for a replica' });
    }
    // The old master comes back, and the Sentinels make it the new master's replica: with WAIT 1,
    // acknowledgements resume only then.
    const oldMaster = group.nodes.find((node) => node.port === oldMasterPort)!;
    await oldMaster.start();
    // Judged once the topology is settled: the old master a replica of the new one, in sync.
    const oldMasterClient = new Redis(oldMaster.url);
    oldMasterClient.on('error', () => undefined);
    try {
      await waitFor(
        async () => {
          const role = (await oldMasterClient.call('ROLE')) as unknown[];
          return role[0] === 'slave' && role[3] === 'connected';
        },
        { timeoutMs: 60 * SECOND, message: 'the old master to follow the new one' },
      );
    } finally {
      oldMasterClient.disconnect();
    }
    await fx.sql.query(`update jobs set budget = 1.00 where job_id in ('sf-1', 'sf-99999')`);
    await fx.waitForConfirmed(undefined, 90 * SECOND);
    expect(await compareRedisWithTable(fx.sql, master, fx.config.keyPrefix)).toEqual([]);
    expect(JSON.parse((await master.get(`${fx.config.keyPrefix}sf-99999`))!)).toMatchObject({ budget: '1.00' });
    return rebuilds;
  }

  it(
    'converges with --redis-min-replicas 0, rebuilding because the promoted replica missed acknowledged writes',
    { timeout: TEST_TIMEOUT_MS },
    async ({ annotate }) => {
      const rebuilds = await failOverDuringLoad('sentinel_wait0', 0);
      expect(rebuilds[0]).toBe('new-slot');
      // The replica slept through writes the master confirmed and the consumer acknowledged: detected, rebuilt.
      expect(rebuilds.slice(1)).toContain('redis-went-back');
      expect(rebuilds.slice(1).every((cause) => cause === 'redis-went-back')).toBe(true);
      await annotate(`rebuilds after the failover with --redis-min-replicas 0: ${rebuilds.length - 1}`);
    },
  );

  it(
    'converges with --redis-min-replicas 1 with no rebuild: the promoted replica holds every acknowledged write',
    { timeout: TEST_TIMEOUT_MS },
    async ({ annotate }) => {
      const rebuilds = await failOverDuringLoad('sentinel_wait1', 1);
      expect(rebuilds).toEqual(['new-slot']);
      await annotate(`rebuilds after the failover with --redis-min-replicas 1: ${rebuilds.length - 1}`);
    },
  );
});
