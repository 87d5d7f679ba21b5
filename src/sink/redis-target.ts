import type { ConnectionOptions } from 'node:tls';
import type { RedisOptions } from 'ioredis';
import type { Config } from '../config.js';

/** Where Redis is: REDIS_URL alone, or Sentinels that name the master (REDIS_URL then gives user, password, TLS, database). */
export type RedisTarget = Pick<Config, 'redisUrl' | 'redisSentinels' | 'redisSentinelMaster'>;

/** The settings a user fixes when Redis cannot be reached, for error messages. */
export function redisTargetSetting(target: RedisTarget): string {
  return target.redisSentinelMaster === undefined
    ? 'REDIS_URL or --redis-url'
    : 'REDIS_SENTINELS / --redis-sentinels and REDIS_SENTINEL_MASTER / --redis-sentinel-master';
}

/** "host:port", or "master mymaster via Sentinels a:26379,b:26379", without any password, for messages. */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.redisSentinelMaster !== undefined) {
    const sentinels = target.redisSentinels.map((s) => `${s.host}:${s.port}`).join(',');
    return `master ${target.redisSentinelMaster} via Sentinels ${sentinels}`;
  }
  const url = new URL(target.redisUrl);
  return `${url.hostname || 'localhost'}:${url.port || '6379'}`;
}

/** How the batch writer reaches a Redis server: what ioredis made of REDIS_URL, so that both connections agree. */
export interface RedisConnectionSettings {
  host: string;
  port: number;
  /** TLS options (rediss://), or false for a plain connection. */
  tls: ConnectionOptions | false;
  username: string | undefined;
  password: string | undefined;
  database: number;
}

/**
 * The settings of an ioredis client's options. ioredis is the one parser of REDIS_URL (path or `?db=`,
 * `?password=`, percent-encoding, IPv6 brackets, rediss://): the batch writer must not read the URL otherwise.
 */
export function connectionSettingsOf(options: RedisOptions): RedisConnectionSettings {
  const tls = options.tls as ConnectionOptions | boolean | undefined;
  return {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 6379,
    tls: tls === undefined || tls === false ? false : tls === true ? {} : tls,
    username: options.username || undefined,
    password: options.password || undefined,
    database: options.db ?? 0,
  };
}
