import { Redis, type RedisOptions } from 'ioredis';
import { connectionError } from '../errors.js';
import type { Logger } from '../logger.js';
import { describeRedisTarget, redisTargetSetting, type RedisTarget } from './redis-target.js';

/**
 * A Redis connection for the pipeline. Commands fail at once while disconnected (no offline queue)
 * instead of piling up in memory: the pipeline then stops, and resumes from the slot when Redis is back.
 * With Sentinels, ioredis asks them for the master, and again after every lost connection (a failover).
 */
export function makeRedis(target: RedisTarget, logger: Logger): Redis {
  const retryStrategy = (attempt: number): number => Math.min(100 * 2 ** Math.min(attempt, 8), 5_000) * (0.5 + Math.random() / 2);
  const options: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Commands in flight when a connection drops must not be sent again behind our back: the pipeline
    // replays from the slot, in order, instead.
    autoResendUnfulfilledCommands: false,
    connectionName: 'budget-cdc',
    retryStrategy,
  };
  // ioredis reads REDIS_URL (user, password, database, TLS) in both modes; with Sentinels, its host and port
  // give way to the master the Sentinels name.
  const redis =
    target.redisSentinelMaster === undefined
      ? new Redis(target.redisUrl, options)
      : new Redis(target.redisUrl, {
          ...options,
          sentinels: target.redisSentinels.map(({ host, port }) => ({ host, port })),
          name: target.redisSentinelMaster,
          role: 'master',
          sentinelRetryStrategy: retryStrategy,
          // Sentinels announce a failover (+switch-master): reconnect to the new master without waiting for a timeout.
          failoverDetector: true,
        });
  let lastError = '';
  redis.on('error', (error: Error) => {
    // ioredis emits the same error on every reconnect attempt; log each distinct one once.
    if (error.message !== lastError) logger.warn({ err: error.message }, 'redis connection error');
    lastError = error.message;
  });
  redis.on('ready', () => {
    if (lastError !== '') logger.info('redis connection restored');
    lastError = '';
  });
  return redis;
}

/** makeRedis, connected; a failure becomes a ConnectionError that says which setting to check. */
export async function connectRedis(target: RedisTarget, logger: Logger): Promise<Redis> {
  const redis = makeRedis(target, logger);
  // connect() rejects with a generic "Connection is closed"; the 'error' event carries the cause (ECONNREFUSED).
  let cause: unknown;
  const remember = (error: unknown): void => {
    cause ??= error;
  };
  redis.on('error', remember);
  try {
    await redis.connect();
    return redis;
  } catch (error) {
    redis.disconnect();
    throw connectionError('Redis', describeRedisTarget(target), redisTargetSetting(target), cause ?? error);
  } finally {
    redis.off('error', remember);
  }
}
