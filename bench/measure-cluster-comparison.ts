import type { BenchContext } from './bench-context.js';
import { describeCatchUp, type CatchUpRun } from './measure-catch-up.js';
import { measureEndToEnd } from './measure-end-to-end.js';
import { withRedisCluster } from './redis-cluster-under-test.js';
import { singleRedis } from './redis-under-test.js';

/** Masters of the compared cluster: the fewest `redis-cli --cluster create` accepts. */
export const CLUSTER_MASTERS = 3;

/** End-to-end runs into the single Redis and into the cluster, in the order they ran. */
export interface ClusterComparisonRuns {
  single: CatchUpRun[];
  cluster: CatchUpRun[];
}

/**
 * The end-to-end measurement into the bench Redis and into a throwaway Redis Cluster of CLUSTER_MASTERS masters
 * without replicas, alternated (single, cluster, single, …) so that drift hits both alike. Each run checks its
 * key count summed over the masters (measureCatchUp); a cluster run also that every master holds some of the keys.
 */
export async function measureClusterComparison(context: BenchContext, samples: number): Promise<ClusterComparisonRuns> {
  context.log(`starting a Redis Cluster of ${CLUSTER_MASTERS} masters, no replicas`);
  return withRedisCluster(CLUSTER_MASTERS, async (cluster) => {
    const runs: ClusterComparisonRuns = { single: [], cluster: [] };
    for (let sample = 1; sample <= samples; sample++) {
      const single = await measureEndToEnd(context, { purpose: 'single', redis: singleRedis(context) });
      runs.single.push(single);
      context.log(`end to end, single Redis, ${sample}/${samples}: ${describeCatchUp(single)}`);

      const clustered = await measureEndToEnd(context, { purpose: 'cluster', redis: cluster });
      if (clustered.keysPerMaster.length !== CLUSTER_MASTERS || clustered.keysPerMaster.some((keys) => keys === 0)) {
        throw new Error(
          `job keys per master ${clustered.keysPerMaster.join(', ')}: each of the ${CLUSTER_MASTERS} masters should hold some`,
        );
      }
      runs.cluster.push(clustered);
      context.log(
        `end to end, ${cluster.name}, ${sample}/${samples}: ${describeCatchUp(clustered)}, keys per master ${clustered.keysPerMaster.join(' + ')}`,
      );
    }
    return runs;
  });
}
