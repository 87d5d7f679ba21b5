import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterInfo, clusterNodes, startRedisCluster, withConnection, type RedisCluster } from '../support/redis-cluster.js';
import { waitFor } from '../support/wait-for.js';

// The harness for a Redis Cluster: three masters that share the slots, and a master whose replica takes over
// when it is killed.

const SECOND = 1000;
const SLOT_COUNT = 16384;
const FAILOVER_WAIT_MS = 20 * SECOND;

type SlotRange = [start: number, end: number, master: [host: string, port: number, ...rest: unknown[]], ...replicas: unknown[]];

describe('startRedisCluster with 3 masters', () => {
  let cluster: RedisCluster | undefined;
  let client: Cluster | undefined;

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    const [host = '', port = ''] = cluster.seeds.split(',')[0]!.split(':');
    client = new Cluster([{ host, port: Number(port) }]);
  });

  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  it('gives every master a part of the 16384 slots', async () => {
    const ranges = (await withConnection(cluster!.nodes[0]!.port, (redis) => redis.call('CLUSTER', 'SLOTS'))) as SlotRange[];
    const slotsByPort = new Map<number, number>();
    for (const [start, end, [, port]] of ranges) slotsByPort.set(port, (slotsByPort.get(port) ?? 0) + end - start + 1);

    expect([...slotsByPort.keys()].sort()).toEqual(cluster!.nodes.map(({ port }) => port).sort());
    expect([...slotsByPort.values()].every((count) => count > 0)).toBe(true);
    expect([...slotsByPort.values()].reduce((sum, count) => sum + count, 0)).toBe(SLOT_COUNT);
  });

  it('stores keys that land on different masters through the Cluster client', async () => {
    const ranges = (await client!.call('CLUSTER', 'SLOTS')) as SlotRange[];
    const ownerOf = (slot: number) => ranges.find(([start, end]) => start <= slot && slot <= end)![2][1];
    // One key per master: try job:0, job:1, ... until every master owns one.
    const keyByPort = new Map<number, string>();
    for (let index = 0; keyByPort.size < cluster!.nodes.length; index += 1) {
      const key = `job:${index}`;
      const port = ownerOf((await client!.call('CLUSTER', 'KEYSLOT', key)) as number);
      if (!keyByPort.has(port)) keyByPort.set(port, key);
    }

    for (const [port, key] of keyByPort) {
      expect(await client!.set(key, `on ${port}`)).toBe('OK');
      expect(await client!.get(key)).toBe(`on ${port}`);
      // The write reached the master that owns the slot, not just some node.
      expect(await withConnection(port, (redis) => redis.get(key))).toBe(`on ${port}`);
    }
  });

  it('hashes job:a and job:b to different slots, and {x}1 and {x}2 to the same one', async () => {
    const slotOf = async (key: string) => (await client!.call('CLUSTER', 'KEYSLOT', key)) as number;
    expect(await slotOf('job:a')).not.toBe(await slotOf('job:b'));
    expect(await slotOf('{x}1')).toBe(await slotOf('{x}2'));
  });
});

describe('startRedisCluster with a replica per master', () => {
  let cluster: RedisCluster | undefined;

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('promotes the replica of a killed master and is ok again', async () => {
    expect(cluster!.nodes).toHaveLength(6);
    const before = await clusterNodes(cluster!.nodes[0]!.port);
    const victim = before.find(({ flags }) => flags.includes('master'))!;
    const replica = before.find(({ masterId }) => masterId === victim.id);
    expect(replica, `a replica of the master on port ${victim.port}`).toBeDefined();

    await cluster!.nodes.find(({ port }) => port === victim.port)!.crash();

    const survivors = cluster!.nodes.filter(({ port }) => port !== victim.port);
    await waitFor(
      async () => {
        for (const { port } of survivors) {
          const view = await clusterNodes(port);
          const promoted = view.find(({ id }) => id === replica!.id);
          if (!promoted?.flags.includes('master')) return false;
          if ((await clusterInfo(port)).get('cluster_state') !== 'ok') return false;
        }
        return true;
      },
      {
        timeoutMs: FAILOVER_WAIT_MS,
        message: `every surviving node to see the replica on port ${replica!.port} as master and report cluster_state:ok`,
      },
    );
    const after = await clusterNodes(replica!.port);
    expect(after.find(({ id }) => id === victim.id)?.flags).toContain('fail');
  });
});
