import { Redis } from 'ioredis';
import { INTERNAL_KEY_PREFIX } from '../src/config.js';
import { HASH_SLOTS } from '../src/sink/hash-slot.js';
import { startRedisCluster } from '../test/support/redis-cluster.js';
import { countKeysPerMaster, globLiteral, type RedisUnderTest } from './redis-under-test.js';

/**
 * Runs `fn` with a throwaway Redis Cluster of `masters` masters and no replicas, so that each node is a master
 * doing the work a single Redis would do for its share of the keys; stops it afterwards.
 */
export async function withRedisCluster<T>(masters: number, fn: (cluster: RedisUnderTest) => Promise<T>): Promise<T> {
  const cluster = await startRedisCluster({ masters, replicasPerMaster: 0 });
  const clients = cluster.nodes.map((node) => new Redis(node.url));
  try {
    for (const [index, client] of clients.entries()) {
      const role = /^role:(\w+)\r?$/m.exec(await client.info('replication'))?.[1];
      if (role !== 'master')
        throw new Error(`cluster node on port ${cluster.nodes[index]!.port} is a ${role ?? 'node of no role'}, not a master`);
    }
    return await fn({
      name: `Redis Cluster, ${masters} masters`,
      consumerEnv: { REDIS_URL: cluster.nodes[0]!.url, REDIS_CLUSTER_NODES: cluster.seeds },
      masters: clients,
      hasCheckpoint: async (keyPrefix) => {
        const pattern = `${INTERNAL_KEY_PREFIX}checkpoint:{*}:${globLiteral(keyPrefix)}`;
        const perMaster = await countKeysPerMaster(clients, pattern);
        return perMaster.reduce((sum, count) => sum + count, 0) === HASH_SLOTS;
      },
    });
  } finally {
    for (const client of clients) client.disconnect();
    await cluster.stop();
  }
}
