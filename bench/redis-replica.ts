import { Redis } from 'ioredis';
import { startRedis } from '../test/support/redis-server.js';
import { waitFor } from '../test/support/wait-for.js';
import type { BenchContext } from './bench-context.js';

const SECOND = 1000;
const SYNC_TIMEOUT_MS = 60 * SECOND;

/** Checks that the replica is still attached and in sync with the bench Redis; throws otherwise. */
export type ReplicaCheck = () => Promise<void>;

/**
 * Runs `fn` with a second redis-server attached as a replica of the bench Redis, once the master counts it
 * (`connected_slaves:1`) and it has loaded the master's data (`master_link_status:up`); stops it afterwards,
 * so the measurements outside `fn` see a Redis without replicas.
 */
export async function withRedisReplica<T>(context: BenchContext, fn: (check: ReplicaCheck) => Promise<T>): Promise<T> {
  const master = context.redis;
  const masterPort = new URL(context.redisUrl).port;
  // Diskless sync (Redis 7's default) waits 5 s for more replicas before it starts: there is only this one.
  const [, syncDelay = '5'] = (await master.config('GET', 'repl-diskless-sync-delay')) as string[];
  await master.config('SET', 'repl-diskless-sync-delay', '0');
  const server = await startRedis({ extraArgs: ['--replicaof', '127.0.0.1', masterPort] });
  const replica = new Redis(server.url);
  const attached = async (): Promise<boolean> => {
    const [masterInfo, replicaInfo] = await Promise.all([master.info('replication'), replica.info('replication')]);
    return /^connected_slaves:1\r?$/m.test(masterInfo) && /^master_link_status:up\r?$/m.test(replicaInfo);
  };
  try {
    await waitFor(attached, {
      timeoutMs: SYNC_TIMEOUT_MS,
      message: `the replica on port ${server.port} to sync with the bench Redis on port ${masterPort}`,
    });
    return await fn(async () => {
      if (!(await attached())) throw new Error(`the replica on port ${server.port} is no longer attached to port ${masterPort}`);
    });
  } finally {
    replica.disconnect();
    await server.stop();
    await master.config('SET', 'repl-diskless-sync-delay', syncDelay);
    await waitFor(async () => /^connected_slaves:0\r?$/m.test(await master.info('replication')), {
      message: 'the bench Redis to see its replica gone',
    });
  }
}
