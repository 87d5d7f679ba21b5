import { Redis } from 'ioredis';

const PROBE_TIMEOUT_MS = 1000;
/**
 * A node that is up may answer late: a cluster node blocked in MIGRATE during a reshard, or any node while the two
 * cores are busy with a load (a 1 s limit failed CI's reshard test once). A node that is down fails at connect.
 */
const COMMAND_TIMEOUT_MS = 5000;

/**
 * Runs `use` with a fresh connection to 127.0.0.1:`port` for one probe, then closes it: it fails at once
 * instead of queueing or retrying while a node is down.
 */
export async function withConnection<T>(port: number, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // connect() rejects with the same error; without a listener ioredis would also print it.
  redis.on('error', () => {});
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}
