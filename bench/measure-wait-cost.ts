import type { Redis } from 'ioredis';
import type { BenchContext } from './bench-context.js';
import { describeCatchUp, type CatchUpRun } from './measure-catch-up.js';
import { measureEndToEnd } from './measure-end-to-end.js';
import { withRedisReplica } from './redis-replica.js';

/** The settings compared: BUDGET_CDC_REDIS_MIN_REPLICAS, in the order each round runs them. */
const MIN_REPLICAS = [0, 1] as const;

/** End-to-end runs with one replica attached, per --redis-min-replicas, in the order they ran. */
export interface WaitCostRuns {
  wait0: CatchUpRun[];
  wait1: CatchUpRun[];
}

/**
 * The cost of WAIT: the end-to-end measurement with one replica attached to the bench Redis, with
 * BUDGET_CDC_REDIS_MIN_REPLICAS=0 and =1 alternated (0, 1, 0, 1, …) so that drift hits both alike. Each run is
 * checked against Redis's own count of WAIT commands: none with 0, some with 1.
 */
export async function measureWaitCost(context: BenchContext, samples: number): Promise<WaitCostRuns> {
  return withRedisReplica(context, async (checkReplica) => {
    const runs: WaitCostRuns = { wait0: [], wait1: [] };
    for (let sample = 1; sample <= samples; sample++) {
      for (const minReplicas of MIN_REPLICAS) {
        await checkReplica();
        const waitsBefore = await waitCalls(context.redis);
        const run = await measureEndToEnd(context, {
          purpose: `wait${minReplicas}`,
          consumerEnv: { BUDGET_CDC_REDIS_MIN_REPLICAS: String(minReplicas) },
        });
        const waits = (await waitCalls(context.redis)) - waitsBefore;
        if (waits > 0 !== minReplicas > 0) {
          throw new Error(`the consumer sent ${waits} WAIT commands with BUDGET_CDC_REDIS_MIN_REPLICAS=${minReplicas}`);
        }
        runs[`wait${minReplicas}`].push(run);
        context.log(`end to end, 1 replica, WAIT ${minReplicas}, ${sample}/${samples}: ${describeCatchUp(run)}, ${waits} WAITs`);
      }
    }
    return runs;
  });
}

/** How many WAIT commands Redis has run since it started (INFO commandstats). */
async function waitCalls(redis: Redis): Promise<number> {
  const calls = /^cmdstat_wait:calls=(\d+),/m.exec(await redis.info('commandstats'))?.[1];
  return calls === undefined ? 0 : Number(calls);
}
