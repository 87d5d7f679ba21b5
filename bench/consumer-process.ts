import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { BenchChild } from './bench-child.js';
import { CLI, type BenchContext } from './bench-context.js';
import { readSlotProgress } from './bench-sql.js';
import type { RedisUnderTest } from './redis-under-test.js';
import { findFreePort } from '../src/local/free-port.js';

const SECOND = 1000;
const READY_TIMEOUT_MS = 60 * SECOND;

/** The names one consumer uses: its own slot and key prefix, so no measurement sees another's state. */
export interface ConsumerNames {
  slot: string;
  keyPrefix: string;
}

/** Fresh names for one measurement. */
export function makeConsumerNames(purpose: string): ConsumerNames {
  const suffix = randomBytes(4).toString('hex');
  return { slot: `bench_${purpose}_${suffix}`, keyPrefix: `bench:${purpose}:${suffix}:job:` };
}

/**
 * Starts `node bin/budget-cdc.js run` on `databaseUrl`, as a user would; `extraEnv` adds settings
 * (such as BUDGET_CDC_REDIS_MIN_REPLICAS, or a RedisUnderTest's consumerEnv) to the bench's own.
 */
export async function startConsumer(
  context: BenchContext,
  databaseUrl: string,
  names: ConsumerNames,
  extraEnv: Record<string, string> = {},
): Promise<BenchChild> {
  return new BenchChild(
    'budget-cdc run',
    process.execPath,
    [...cpuProfileFlags(), CLI, 'run', '--slot', names.slot, '--key-prefix', names.keyPrefix],
    {
      env: {
        DATABASE_URL: databaseUrl,
        REDIS_URL: context.redisUrl,
        // The metrics endpoint stays on, as in production, on a port no other process on this machine holds.
        BUDGET_CDC_HTTP_PORT: String(await findFreePort()),
        ...extraEnv,
      },
    },
  );
}

/**
 * Node's flags that write a CPU profile of a child into BENCH_CPU_PROF_DIR when that is set (for finding where a
 * measurement's time goes; node refuses --cpu-prof in NODE_OPTIONS). The profile is written when the child exits.
 */
export function cpuProfileFlags(): string[] {
  const dir = process.env.BENCH_CPU_PROF_DIR;
  return dir === undefined || dir === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', dir];
}

/**
 * Waits until the consumer has created its slot and written its first checkpoint (it has a snapshot of the table)
 * in `redis`.
 */
export async function waitForSlotAndCheckpoint(
  redis: RedisUnderTest,
  client: pg.Client,
  consumer: BenchChild,
  names: ConsumerNames,
): Promise<void> {
  await consumer.waitWhileRunning(
    async () => {
      const { exists } = await readSlotProgress(client, names.slot);
      return exists && (await redis.hasCheckpoint(names.keyPrefix));
    },
    { timeoutMs: READY_TIMEOUT_MS, message: `${consumer.name} to create slot ${names.slot} and write its checkpoint` },
  );
}
