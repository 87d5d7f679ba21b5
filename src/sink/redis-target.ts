import type { ConnectionOptions } from 'node:tls';
import type { RedisOptions } from 'ioredis';
import type { Config, RedisAddress } from '../config.js';

/**
 * Where Redis is: REDIS_URL alone, Sentinels that name the master (REDIS_URL then gives user, password, TLS,
 * database), or the nodes of a Redis Cluster (REDIS_URL then gives user, password, TLS).
 */
export type RedisTarget = Pick<Config, 'redisUrl' | 'redisSentinels' | 'redisSentinelMaster' | 'redisClusterNodes'>;

/** True when the target is a Redis Cluster (REDIS_CLUSTER_NODES is set). */
export function isClusterTarget(target: RedisTarget): boolean {
  return target.redisClusterNodes.length > 0;
}

/** The settings a user fixes when Redis cannot be reached, for error messages. */
export function redisTargetSetting(target: RedisTarget): string {
  if (isClusterTarget(target)) return 'REDIS_CLUSTER_NODES or --redis-cluster-nodes';
  return target.redisSentinelMaster === undefined
    ? 'REDIS_URL or --redis-url'
    : 'REDIS_SENTINELS / --redis-sentinels and REDIS_SENTINEL_MASTER / --redis-sentinel-master';
}

/**
 * "host:port", "master mymaster via Sentinels a:26379,b:26379" or "cluster via a:7000,b:7000", without any
 * password, for messages.
 */
export function describeRedisTarget(target: RedisTarget): string {
  if (isClusterTarget(target)) return `cluster via ${target.redisClusterNodes.map(formatAddress).join(',')}`;
  if (target.redisSentinelMaster !== undefined) {
    return `master ${target.redisSentinelMaster} via Sentinels ${target.redisSentinels.map(formatAddress).join(',')}`;
  }
  const url = new URL(target.redisUrl);
  return `${url.hostname || 'localhost'}:${url.port || '6379'}`;
}

/** host:port, with an IPv6 host in brackets as it was given. */
function formatAddress({ host, port }: RedisAddress): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
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
