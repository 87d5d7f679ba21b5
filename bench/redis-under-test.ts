import type { Redis } from 'ioredis';
import { checkpointKey } from '../src/sink/internal-keys.js';
import type { BenchContext } from './bench-context.js';

const SCAN_COUNT = 10_000;

/** The Redis a measured consumer writes to: the bench's one server, or the masters of a Redis Cluster. */
export interface RedisUnderTest {
  /** For progress lines: "single Redis", "Redis Cluster, 3 masters". */
  name: string;
  /** The consumer's settings that point it here. */
  consumerEnv: Record<string, string>;
  /** A client of each master (the one server of a single Redis): keys are counted, CPU read and data flushed on each. */
  masters: Redis[];
  /** Whether the consumer has written the checkpoint of `keyPrefix` (every slot's, on a cluster). */
  hasCheckpoint(keyPrefix: string): Promise<boolean>;
}

/** The bench's own Redis server. */
export function singleRedis(context: BenchContext): RedisUnderTest {
  return {
    name: 'single Redis',
    // Empty is unset: a REDIS_CLUSTER_NODES in the bench's environment must not turn this into a cluster run.
    consumerEnv: { REDIS_URL: context.redisUrl, REDIS_CLUSTER_NODES: '' },
    masters: [context.redis],
    hasCheckpoint: async (keyPrefix) => (await context.redis.get(checkpointKey(keyPrefix))) !== null,
  };
}

/** Keys matching `pattern` (a SCAN MATCH glob) on each of `masters`, in their order. */
export async function countKeysPerMaster(masters: readonly Redis[], pattern: string): Promise<number[]> {
  return Promise.all(
    masters.map(async (master) => {
      let count = 0;
      for await (const keys of master.scanStream({ match: pattern, count: SCAN_COUNT })) count += (keys as string[]).length;
      return count;
    }),
  );
}

/** `text` as a SCAN MATCH glob that matches only itself. */
export function globLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** CPU seconds (INFO cpu: used_cpu_user + used_cpu_sys) the masters have used since they started, summed. */
export async function redisCpuSeconds(redis: RedisUnderTest): Promise<number> {
  const seconds = await Promise.all(
    redis.masters.map(async (master) => {
      const info = await master.info('cpu');
      const field = (name: string): number => {
        const value = new RegExp(`^${name}:([\\d.]+)\\r?$`, 'm').exec(info)?.[1];
        if (value === undefined) throw new Error(`no ${name} in INFO cpu of ${master.options.host}:${master.options.port}`);
        return Number(value);
      };
      return field('used_cpu_user') + field('used_cpu_sys');
    }),
  );
  return seconds.reduce((sum, value) => sum + value, 0);
}

/** Commands the masters have run since they started (INFO commandstats), summed: all of them, and EXECs. */
export async function redisCommandCalls(redis: RedisUnderTest): Promise<{ all: number; exec: number }> {
  const counts = await Promise.all(
    redis.masters.map(async (master) => {
      const info = await master.info('commandstats');
      let all = 0;
      let exec = 0;
      for (const [, command, calls] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),/gm)) {
        all += Number(calls);
        if (command === 'exec') exec += Number(calls);
      }
      return { all, exec };
    }),
  );
  return { all: counts.reduce((sum, c) => sum + c.all, 0), exec: counts.reduce((sum, c) => sum + c.exec, 0) };
}

/** PEXPIRETIME of `key` on the master that serves it: -2 when it does not exist, -1 when it has no expiry. */
export async function expiryOf(redis: RedisUnderTest, key: string): Promise<number> {
  const expiries = await Promise.all(
    // A cluster master answers MOVED for a key of another master's slot.
    redis.masters.map((master) => master.pexpiretime(key).catch((error: unknown) => (isMoved(error) ? undefined : Promise.reject(error)))),
  );
  const served = expiries.filter((expiry) => expiry !== undefined);
  if (served.length !== 1) throw new Error(`${served.length} masters of ${redis.name} serve ${key}, not 1`);
  return served[0]!;
}

function isMoved(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('MOVED ');
}

/** FLUSHALL on every master. */
export async function flushAll(redis: RedisUnderTest): Promise<void> {
  await Promise.all(redis.masters.map((master) => master.flushall()));
}
