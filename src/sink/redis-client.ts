import { Redis } from 'ioredis';
import { connectionError } from '../errors.js';
import type { Logger } from '../ops/logger.js';

/**
 * A Redis connection for the pipeline. Commands fail at once while disconnected (no offline queue)
 * instead of piling up in memory: the pipeline then stops, and resumes from the slot when Redis is back.
 */
export function makeRedis(redisUrl: string, logger: Logger): Redis {
  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Commands in flight when a connection drops must not be sent again behind our back: the pipeline
    // replays from the slot, in order, instead.
    autoResendUnfulfilledCommands: false,
    connectionName: 'budget-cdc',
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 8), 5_000) * (0.5 + Math.random() / 2),
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

/** Where a Redis URL points, without its password, for messages. */
export function describeRedisUrl(redisUrl: string): string {
  const url = new URL(redisUrl);
  return `${url.hostname || 'localhost'}:${url.port || '6379'}`;
}

/** makeRedis, connected; a failure becomes a ConnectionError that says which setting to check. */
export async function connectRedis(redisUrl: string, logger: Logger): Promise<Redis> {
  const redis = makeRedis(redisUrl, logger);
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
    throw connectionError('Redis', describeRedisUrl(redisUrl), 'REDIS_URL or --redis-url', cause ?? error);
  } finally {
    redis.off('error', remember);
  }
}
