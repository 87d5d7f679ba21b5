import type { Redis } from 'ioredis';
import { masterNodes, type RedisClient } from './redis-client.js';

/** The only maxmemory-policy under which Redis never deletes a job key before its expiry. */
export const SAFE_EVICTION_POLICY = 'noeviction';

/** What Redis says of eviction: its policy, and how many keys it has evicted since it started. */
export interface EvictionState {
  /** maxmemory-policy, e.g. noeviction, volatile-lru, allkeys-lru. */
  policy: string;
  /** evicted_keys of INFO stats: keys Redis deleted under memory pressure since it started. */
  evictedKeys: number;
}

/**
 * Reads the eviction policy and count with INFO, which managed Redis services allow where they refuse CONFIG.
 * Job keys are the ones carrying a TTL, so any volatile-* policy evicts them first; allkeys-* evicts them too.
 * A cluster's masters each evict their own keys: a policy other than noeviction on any of them is reported,
 * with the keys evicted on all of them.
 */
export async function readEvictionState(client: RedisClient): Promise<EvictionState> {
  const states = await Promise.all(masterNodes(client).map(readServerEvictionState));
  const reported = states.find((state) => state.policy !== SAFE_EVICTION_POLICY) ?? states[0];
  // No master known (a cluster client between losing its nodes and finding them again): not a safe policy.
  if (reported === undefined) throw new Error('no Redis master to read INFO from: the cluster client knows none');
  return {
    policy: reported.policy,
    evictedKeys: states.reduce((sum, state) => sum + state.evictedKeys, 0),
  };
}

async function readServerEvictionState(redis: Redis): Promise<EvictionState> {
  const memory = await redis.info('memory');
  const stats = await redis.info('stats');
  const policy = /^maxmemory_policy:(\S+)\r?$/m.exec(memory)?.[1];
  const evicted = /^evicted_keys:(\d+)\r?$/m.exec(stats)?.[1];
  if (policy === undefined || evicted === undefined) {
    throw new Error('redis INFO gave no maxmemory_policy or evicted_keys: is this a Redis server?');
  }
  return { policy, evictedKeys: Number(evicted) };
}

/** The warning for a policy other than noeviction, saying what to change. */
export function evictionWarning(policy: string): string {
  return (
    `Redis has maxmemory-policy ${policy}: under memory pressure it deletes keys before their expiry, job keys first ` +
    `(they carry a TTL), and nothing brings them back until a resync; set maxmemory-policy ${SAFE_EVICTION_POLICY} ` +
    '(CONFIG SET, redis.conf or the parameter group of a managed Redis) and give Redis the memory the jobs need'
  );
}
