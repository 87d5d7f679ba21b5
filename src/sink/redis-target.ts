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

/** The URL's connection settings, as separate values (for ioredis's Sentinel mode and the batch writer). */
export interface RedisUrlSettings {
  host: string;
  port: number;
  tls: boolean;
  username: string | undefined;
  password: string | undefined;
  database: number;
}

export function redisUrlSettings(redisUrl: string): RedisUrlSettings {
  const url = new URL(redisUrl);
  const database = url.pathname.replace(/^\//, '');
  return {
    // IPv6 literals come bracketed from URL: sockets want them bare.
    host: (url.hostname || '127.0.0.1').replace(/^\[|\]$/g, ''),
    port: Number(url.port || 6379),
    tls: url.protocol === 'rediss:',
    username: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
    database: database === '' ? 0 : Number(database),
  };
}
