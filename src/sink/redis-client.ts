import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ConfigError, connectionError } from '../errors.js';
import type { Logger } from '../logger.js';
import { connectionSettingsOf, describeRedisTarget, isClusterTarget, redisTargetSetting, type RedisTarget } from './redis-target.js';

/** A connection to one Redis (directly or through Sentinels) or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * How long a cluster may take to answer with its slots and report cluster_state:ok. Without a deadline a
 * cluster that answers but is not ok (slots unassigned, a master down with no replica) keeps connect() waiting
 * for good: ioredis retries its ready check and never rejects.
 */
const CLUSTER_READY_TIMEOUT_MS = 10_000;

/**
 * A Redis connection for the pipeline. Commands fail at once while disconnected (no offline queue)
 * instead of piling up in memory: the pipeline then stops, and resumes from the slot when Redis is back.
 * With Sentinels, ioredis asks them for the master, and again after every lost connection (a failover).
 * With cluster nodes, a Cluster: it learns the slots from them and sends each key's command to its master.
 */
export function makeRedis(target: RedisTarget, logger: Logger): RedisClient {
  const retryStrategy = (attempt: number): number => Math.min(100 * 2 ** Math.min(attempt, 8), 5_000) * (0.5 + Math.random() / 2);
  // Options of every connection, to a single Redis or to each node of a cluster.
  const connectionOptions = {
    maxRetriesPerRequest: 0,
    // Commands in flight when a connection drops must not be sent again behind our back: the pipeline
    // replays from the slot, in order, instead.
    autoResendUnfulfilledCommands: false,
    connectionName: 'budget-cdc',
  } satisfies RedisOptions;
  const redis = isClusterTarget(target)
    ? makeCluster(target, connectionOptions, retryStrategy)
    : makeSingleRedis(target, { ...connectionOptions, lazyConnect: true, enableOfflineQueue: false, retryStrategy }, retryStrategy);
  let lastError = '';
  const onError = (error: Error, node?: string): void => {
    // ioredis emits the same error on every reconnect attempt; log each distinct one once.
    if (error.message !== lastError) logger.warn({ err: error.message, ...(node === undefined ? {} : { node }) }, 'redis connection error');
    lastError = error.message;
  };
  redis.on('error', (error: Error) => onError(error));
  // A Cluster emits 'error' only when no node answers; each node's own connection errors come as 'node error'.
  redis.on('node error', (error: Error, node: string) => onError(error, node));
  redis.on('ready', () => {
    if (lastError !== '') logger.info('redis connection restored');
    lastError = '';
  });
  return redis;
}

function makeSingleRedis(target: RedisTarget, options: RedisOptions, retryStrategy: (attempt: number) => number): Redis {
  // ioredis reads REDIS_URL (user, password, database, TLS) in both modes; with Sentinels, its host and port
  // give way to the master the Sentinels name.
  if (target.redisSentinelMaster === undefined) return new Redis(target.redisUrl, options);
  return new Redis(target.redisUrl, {
    ...options,
    sentinels: target.redisSentinels.map(({ host, port }) => ({ host, port })),
    name: target.redisSentinelMaster,
    role: 'master',
    sentinelRetryStrategy: retryStrategy,
    // Sentinels announce a failover (+switch-master): reconnect to the new master without waiting for a timeout.
    failoverDetector: true,
  });
}

function makeCluster(target: RedisTarget, connectionOptions: RedisOptions, retryStrategy: (attempt: number) => number): Cluster {
  // ioredis stays the one parser of REDIS_URL (percent-encoding, ?password=, rediss://): a client that never
  // connects reads it, and each node gets its user, password and TLS.
  const settings = connectionSettingsOf(new Redis(target.redisUrl, { lazyConnect: true }).options);
  if (settings.database !== 0) {
    // loadConfig refuses this already; checked again as ioredis reads the URL, so that no reading of it differs.
    throw new ConfigError(
      'REDIS_URL',
      `REDIS_URL selects database ${settings.database}, but a Redis Cluster has only database 0: remove the database from --redis-url / REDIS_URL`,
    );
  }
  return new Cluster(
    target.redisClusterNodes.map(({ host, port }) => ({ host, port })),
    {
      // ioredis gives each node's connection an offline queue and no reconnection of its own, whatever is set
      // here: commands wait only while that node connects, and a lost node is found again through the slots.
      redisOptions: {
        ...connectionOptions,
        username: settings.username,
        password: settings.password,
        ...(settings.tls === false ? {} : { tls: settings.tls }),
      },
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: retryStrategy,
      scaleReads: 'master',
      // A command whose connection closed may have run: ioredis would send it again after this delay (a
      // failover), behind our back, as autoResendUnfulfilledCommands does on one Redis. 0 turns that off; MOVED,
      // ASK, TRYAGAIN and CLUSTERDOWN are still followed, as the node refused those commands without running them.
      retryDelayOnFailover: 0,
      // No auto-pipelining: ioredis follows a MOVED inside an auto-pipeline only when every command of it got the
      // same redirection, so after a reshard or failover the 16,384 per-slot checkpoint reads of a session's start
      // failed with MOVED again and again. One command at a time, each redirection is followed and the slot map
      // refreshed; the reads still go out without waiting for each other's replies.
    },
  );
}

/** makeRedis, connected; a failure becomes a ConnectionError that says which setting to check. */
export async function connectRedis(target: RedisTarget, logger: Logger): Promise<RedisClient> {
  const redis = makeRedis(target, logger);
  // connect() rejects with a generic "Connection is closed" (a cluster: "None of startup nodes is available");
  // the first 'error' event (a cluster: 'node error') carries the cause (ECONNREFUSED, WRONGPASS).
  let cause: unknown;
  let lastNodeError: string | undefined;
  const remember = (error: unknown): void => {
    cause ??= error;
  };
  const rememberNode = (error: Error, node: string): void => {
    cause ??= error;
    lastNodeError = `${node} ${error.message}`;
  };
  redis.on('error', remember);
  redis.on('node error', rememberNode);
  try {
    if (redis instanceof Cluster) {
      await connectCluster(redis, () => lastNodeError);
      await connectMasters(redis);
    } else {
      await redis.connect();
    }
    return redis;
  } catch (error) {
    redis.disconnect();
    const reason = error instanceof ClusterNotReadyError ? error : (clusterCause(redis, cause) ?? cause ?? error);
    throw connectionError('Redis', describeRedisTarget(target), redisTargetSetting(target), reason);
  } finally {
    redis.off('error', remember);
    redis.off('node error', rememberNode);
  }
}

/** The cluster answered, but did not report cluster_state:ok in time. */
class ClusterNotReadyError extends Error {
  override name = 'ClusterNotReadyError';
}

/** Resolves once the cluster gave its slots and reports cluster_state:ok (ioredis's ready check), or rejects. */
async function connectCluster(cluster: Cluster, lastNodeError: () => string | undefined): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const last = lastNodeError();
      reject(
        new ClusterNotReadyError(
          `the cluster did not report cluster_state:ok within ${CLUSTER_READY_TIMEOUT_MS / 1000} s: see CLUSTER INFO ` +
            `and CLUSTER NODES on a node (every slot assigned, a master of each reachable)${last === undefined ? '' : `; last node error: ${last}`}`,
        ),
      );
    }, CLUSTER_READY_TIMEOUT_MS);
  });
  try {
    // A rejection of connect() after the deadline is handled by the race, and ignored.
    await Promise.race([cluster.connect(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * ioredis reads a cluster's slots over a connection of its own whose socket errors (ECONNREFUSED) it drops:
 * what remains is "Connection is closed.", which says nothing. Said plainly instead.
 */
function clusterCause(client: RedisClient, cause: unknown): Error | undefined {
  const generic = cause === undefined || (cause instanceof Error && cause.message === CONNECTION_CLOSED && !('code' in cause));
  if (!(client instanceof Cluster) || !generic) return undefined;
  return new Error('no node answered CLUSTER SLOTS (refused, unreachable, or closed the connection): are the nodes running there?', {
    cause,
  });
}

/** ioredis's message when a connection closes under a command (utils CONNECTION_CLOSED_ERROR_MSG). */
const CONNECTION_CLOSED = 'Connection is closed.';

/** How long connectMasters waits for a master's connection. */
const MASTER_READY_TIMEOUT_MS = 10_000;

/**
 * Opens every master's connection and waits until each is ready. Without an offline queue, ioredis refuses a
 * command routed to a master whose connection is still being opened ("Connection is closed."), and it opens one
 * only on the first command sent there: 16,384 checkpoint reads sent at once failed on every master but the first.
 */
export async function connectMasters(cluster: Cluster): Promise<void> {
  await Promise.all(
    cluster.nodes('master').map(async (node) => {
      if (node.status === 'ready') return;
      if (node.status === 'wait') {
        await node.connect();
        return;
      }
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          node.off('ready', ready);
          reject(
            new Error(
              `the Redis Cluster master ${node.options.host}:${node.options.port} was not ready within ${MASTER_READY_TIMEOUT_MS / 1000} s`,
            ),
          );
        }, MASTER_READY_TIMEOUT_MS);
        const ready = (): void => {
          clearTimeout(timer);
          resolve();
        };
        node.once('ready', ready);
      });
    }),
  );
}

/**
 * The servers that each hold a part of the keys: the client itself, or every master of a cluster. For what a
 * server answers about its own keys only (SCAN, INFO, CONFIG GET), which a cluster client sends to one node.
 */
export function masterNodes(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}
