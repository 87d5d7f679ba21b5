import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.js';
import {
  checkLogLevel,
  checkNonNegativeInteger,
  checkNonNegativeNumber,
  checkPort,
  checkPositiveInteger,
  checkSqlName,
  checkUrl,
  MAX_PORT_NUMBER,
  redact,
} from './config-checks.js';
export { redact } from './config-checks.js';

/** Settings given on the command line; each overrides its environment variable. */
export interface ConfigOptions {
  databaseUrl?: string | undefined;
  redisUrl?: string | undefined;
  redisSentinels?: string | undefined;
  redisSentinelMaster?: string | undefined;
  redisClusterNodes?: string | undefined;
  redisMinReplicas?: string | undefined;
  slot?: string | undefined;
  publication?: string | undefined;
  keyPrefix?: string | undefined;
  batchSize?: string | undefined;
  distribution?: string | undefined;
  distributionTimeout?: string | undefined;
  /** --no-streaming: false; unset: the environment decides. */
  streaming?: boolean | undefined;
  logLevel?: string | undefined;
  httpPort?: string | undefined;
  httpHost?: string | undefined;
  maxLagBytes?: string | undefined;
  maxLagSeconds?: string | undefined;
  dataDir?: string | undefined;
  rolePassword?: string | undefined;
  rolePasswordFile?: string | undefined;
  redisAclUser?: string | undefined;
  redisPasswordFile?: string | undefined;
}

/** Resolved, validated settings. The only place that reads the environment is `loadConfig`. */
export interface Config {
  /** PostgreSQL connection string (DATABASE_URL, --database-url). No default. */
  readonly databaseUrl: string;
  /**
   * Redis connection string (REDIS_URL, --redis-url). Default redis://127.0.0.1:6379. With Sentinels, its
   * user, password, TLS (rediss://) and database apply to the data nodes; its host and port are not used.
   * With a cluster, its user, password and TLS apply to every node; its host and port are not used.
   */
  readonly redisUrl: string;
  /** Sentinels that name the Redis master (REDIS_SENTINELS, --redis-sentinels, host:port,…); empty: REDIS_URL's host. */
  readonly redisSentinels: readonly RedisAddress[];
  /** The master's name at the Sentinels (REDIS_SENTINEL_MASTER, --redis-sentinel-master); set exactly when redisSentinels is. */
  readonly redisSentinelMaster: string | undefined;
  /**
   * Nodes of a Redis Cluster to discover it from (REDIS_CLUSTER_NODES, --redis-cluster-nodes, host:port,…);
   * empty: not a cluster. Never set together with redisSentinels; REDIS_URL's database is then 0.
   */
  readonly redisClusterNodes: readonly RedisAddress[];
  /**
   * Replicas that must confirm a batch (WAIT) before its position is acknowledged to PostgreSQL
   * (BUDGET_CDC_REDIS_MIN_REPLICAS, --redis-min-replicas); with a cluster, replicas of each master written to.
   * Default 0 replicas: no WAIT.
   */
  readonly redisMinReplicas: number;
  /** Logical replication slot (BUDGET_CDC_SLOT, --slot). Default budget_cdc. */
  readonly slotName: string;
  /** Publication on the jobs table (BUDGET_CDC_PUBLICATION, --publication). Default budget_cdc. */
  readonly publicationName: string;
  /** Prefix of every Redis key written (BUDGET_CDC_KEY_PREFIX, --key-prefix). Default job:. */
  readonly keyPrefix: string;
  /** Redis commands sent per pipelined batch (BUDGET_CDC_BATCH_SIZE, --batch-size). Default 1000 commands. */
  readonly batchSize: number;
  /**
   * The budget rule (BUDGET_CDC_DISTRIBUTION, --distribution): `even`, the built-in exact split (default), or
   * the http(s) URL of a distribution service (docs/distribution-protocol.md).
   */
  readonly distribution: DistributionSetting;
  /**
   * Ask PostgreSQL 14 and later to stream large transactions while they run (protocol 2, streaming 'on'):
   * BUDGET_CDC_STREAMING on|off, --no-streaming. Default on; PostgreSQL 13 always gets protocol 1.
   */
  readonly streaming: boolean;
  /** Log level: fatal, error, warn, info, debug, trace (LOG_LEVEL, --log-level). Default info. */
  readonly logLevel: string;
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_SLOT_NAME = 'budget_cdc';
export const DEFAULT_PUBLICATION_NAME = 'budget_cdc';
export const DEFAULT_KEY_PREFIX = 'job:';
export const DEFAULT_BATCH_SIZE = 1000;
/**
 * On a Redis Cluster: each batch costs a MULTI/EXEC and a checkpoint per hash slot it touches, so more rows per
 * batch share them (bench/measure-cluster-designs.ts: 1.8x one Redis's CPU per row at 1,000 rows, 1.4x at 30,000).
 */
export const DEFAULT_CLUSTER_BATCH_SIZE = 60_000;
export const DEFAULT_REDIS_MIN_REPLICAS = 0;

/** Builds the Config from flags, then environment, then defaults; throws ConfigError saying what to set. */
export function loadConfig(options: ConfigOptions, env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = options.databaseUrl ?? env.DATABASE_URL;
  if (databaseUrl === undefined || databaseUrl === '') {
    throw new ConfigError(
      'DATABASE_URL',
      'DATABASE_URL is not set: set it or pass --database-url, e.g. postgres://user@localhost:5432/jobs',
    );
  }
  const redisUrl = options.redisUrl ?? env.REDIS_URL ?? DEFAULT_REDIS_URL;
  const sentinels = loadSentinels(options, env);
  const clusterNodes = loadClusterNodes(options, env, sentinels.addresses, redisUrl);
  const config: Config = {
    databaseUrl: checkUrl('DATABASE_URL', '--database-url', databaseUrl, ['postgres:', 'postgresql:']),
    redisUrl: checkUrl('REDIS_URL', '--redis-url', redisUrl, ['redis:', 'rediss:']),
    redisSentinels: sentinels.addresses,
    redisSentinelMaster: sentinels.masterName,
    // After redisUrl: its database is checked against a cluster's only one, so it must be a valid URL first.
    redisClusterNodes: clusterNodes,
    redisMinReplicas: checkNonNegativeInteger(
      'BUDGET_CDC_REDIS_MIN_REPLICAS',
      '--redis-min-replicas',
      options.redisMinReplicas ?? env.BUDGET_CDC_REDIS_MIN_REPLICAS ?? String(DEFAULT_REDIS_MIN_REPLICAS),
      'replicas',
    ),
    slotName: checkSqlName('BUDGET_CDC_SLOT', '--slot', options.slot ?? env.BUDGET_CDC_SLOT ?? DEFAULT_SLOT_NAME),
    publicationName: checkSqlName(
      'BUDGET_CDC_PUBLICATION',
      '--publication',
      options.publication ?? env.BUDGET_CDC_PUBLICATION ?? DEFAULT_PUBLICATION_NAME,
    ),
    keyPrefix: checkKeyPrefix(options.keyPrefix ?? env.BUDGET_CDC_KEY_PREFIX ?? DEFAULT_KEY_PREFIX),
    batchSize: checkPositiveInteger(
      'BUDGET_CDC_BATCH_SIZE',
      '--batch-size',
      options.batchSize ?? env.BUDGET_CDC_BATCH_SIZE ?? String(clusterNodes.length > 0 ? DEFAULT_CLUSTER_BATCH_SIZE : DEFAULT_BATCH_SIZE),
    ),
    distribution: loadDistribution(options, env),
    streaming: loadStreaming(options, env),
    logLevel: loadLogLevel(options, env),
  };
  return Object.freeze(config);
}

function loadStreaming(options: ConfigOptions, env: NodeJS.ProcessEnv): boolean {
  if (options.streaming !== undefined) return options.streaming;
  const value = env.BUDGET_CDC_STREAMING || 'on';
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new ConfigError('BUDGET_CDC_STREAMING', `BUDGET_CDC_STREAMING must be on or off, got "${value}" (or pass --no-streaming)`);
}

/** The budget rule: the built-in even split, or a distribution service at `url`. */
export type DistributionSetting =
  | { readonly kind: 'even' }
  | {
      readonly kind: 'service';
      readonly url: string;
      /** How long one request may take before it counts as failed and is retried (ms). */
      readonly timeoutMs: number;
    };

const DEFAULT_DISTRIBUTION_TIMEOUT_SECONDS = 10;

function loadDistribution(options: ConfigOptions, env: NodeJS.ProcessEnv): DistributionSetting {
  // An empty variable counts as unset, as a systemd EnvironmentFile line `BUDGET_CDC_DISTRIBUTION=` means.
  const value = options.distribution ?? (env.BUDGET_CDC_DISTRIBUTION || undefined) ?? 'even';
  const timeoutText =
    options.distributionTimeout ?? (env.BUDGET_CDC_DISTRIBUTION_TIMEOUT || undefined) ?? String(DEFAULT_DISTRIBUTION_TIMEOUT_SECONDS);
  const timeoutSeconds = checkNonNegativeNumber('BUDGET_CDC_DISTRIBUTION_TIMEOUT', '--distribution-timeout', timeoutText, false);
  if (timeoutSeconds <= 0) {
    throw new ConfigError(
      'BUDGET_CDC_DISTRIBUTION_TIMEOUT',
      `--distribution-timeout / BUDGET_CDC_DISTRIBUTION_TIMEOUT must be more than 0 seconds, got ${timeoutText}: e.g. 10`,
    );
  }
  if (value === 'even') return { kind: 'even' };
  if (!/^https?:/i.test(value)) {
    throw new ConfigError(
      'BUDGET_CDC_DISTRIBUTION',
      `--distribution / BUDGET_CDC_DISTRIBUTION "${redact(value)}" is neither "even" nor an http:// or https:// URL: ` +
        'use even (the built-in split) or the URL of a distribution service, e.g. http://127.0.0.1:8080/distribute',
    );
  }
  return {
    kind: 'service',
    url: checkUrl('BUDGET_CDC_DISTRIBUTION', '--distribution', value, ['http:', 'https:']),
    timeoutMs: Math.round(timeoutSeconds * 1000),
  };
}

/** The log level alone (LOG_LEVEL, --log-level), for commands that start before the rest is known. */
export function loadLogLevel(options: ConfigOptions, env: NodeJS.ProcessEnv = process.env): string {
  return checkLogLevel(options.logLevel ?? env.LOG_LEVEL ?? 'info');
}

/** A Redis server's address (a Sentinel's, a cluster node's, or a master's as a Sentinel names it). */
export interface RedisAddress {
  readonly host: string;
  readonly port: number;
}

// Sentinel master names are ASCII words in practice (redis.conf: "sentinel monitor <name> …" takes no spaces).
const SENTINEL_MASTER_NAME = /^[A-Za-z0-9._-]{1,128}$/;

/** REDIS_SENTINELS and REDIS_SENTINEL_MASTER: both or neither. */
function loadSentinels(
  options: ConfigOptions,
  env: NodeJS.ProcessEnv,
): { addresses: readonly RedisAddress[]; masterName: string | undefined } {
  const listText = options.redisSentinels ?? (env.REDIS_SENTINELS || undefined);
  const masterName = options.redisSentinelMaster ?? (env.REDIS_SENTINEL_MASTER || undefined);
  if (listText === undefined && masterName === undefined) return { addresses: Object.freeze([]), masterName: undefined };
  if (listText === undefined || listText === '') {
    throw new ConfigError(
      'REDIS_SENTINELS',
      'REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is not: set --redis-sentinels / REDIS_SENTINELS to host:port[,host:port…], or unset the master name to use REDIS_URL alone',
    );
  }
  if (masterName === undefined || !SENTINEL_MASTER_NAME.test(masterName)) {
    throw new ConfigError(
      'REDIS_SENTINEL_MASTER',
      masterName === undefined
        ? 'REDIS_SENTINELS is set but REDIS_SENTINEL_MASTER is not: set --redis-sentinel-master / REDIS_SENTINEL_MASTER to the name the Sentinels monitor (sentinel monitor <name> …)'
        : `--redis-sentinel-master / REDIS_SENTINEL_MASTER "${masterName}" is not a Sentinel master name: use letters, digits, '.', '_' and '-'`,
    );
  }
  const addresses = listText.split(',').map((item) => parseHostPort(item.trim(), SENTINEL_LIST));
  return { addresses: Object.freeze(addresses), masterName };
}

/** REDIS_CLUSTER_NODES: any node of the cluster will do, ioredis learns the others from it. */
function loadClusterNodes(
  options: ConfigOptions,
  env: NodeJS.ProcessEnv,
  sentinels: readonly RedisAddress[],
  redisUrl: string,
): readonly RedisAddress[] {
  const listText = options.redisClusterNodes ?? (env.REDIS_CLUSTER_NODES || undefined);
  if (listText === undefined) return Object.freeze([]);
  if (sentinels.length > 0) {
    throw new ConfigError(
      'REDIS_CLUSTER_NODES',
      'REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set, but a Redis Cluster fails over by itself, without Sentinels: ' +
        'unset --redis-sentinels / REDIS_SENTINELS and --redis-sentinel-master / REDIS_SENTINEL_MASTER to use the cluster, ' +
        'or unset --redis-cluster-nodes / REDIS_CLUSTER_NODES to use the Sentinels',
    );
  }
  const database = redisUrlDatabase(redisUrl);
  if (database !== undefined && Number.parseInt(database, 10) !== 0) {
    throw new ConfigError(
      'REDIS_URL',
      `REDIS_URL selects database ${database}, but a Redis Cluster has only database 0: remove the database ` +
        '(the /N path or ?db=N) from --redis-url / REDIS_URL, which with a cluster gives only the user, password and TLS',
    );
  }
  const addresses = listText.split(',').map((item) => parseHostPort(item.trim(), CLUSTER_NODE_LIST));
  return Object.freeze(addresses);
}

/**
 * The database REDIS_URL selects, as ioredis reads it (the path, else ?db=), undefined when none. Read here
 * rather than by ioredis itself so that config.ts, loaded by every command, does not load ioredis.
 */
function redisUrlDatabase(redisUrl: string): string | undefined {
  const url = new URL(redisUrl);
  if (url.pathname.length > 1) return decodeURIComponent(url.pathname.slice(1));
  return url.searchParams.get('db') ?? undefined;
}

/** A setting that holds a list of host:port, for parseHostPort's error message. */
interface AddressList {
  readonly variable: string;
  readonly flag: string;
  readonly example: string;
}

const SENTINEL_LIST: AddressList = {
  variable: 'REDIS_SENTINELS',
  flag: '--redis-sentinels',
  example: '10.0.0.1:26379,10.0.0.2:26379',
};
const CLUSTER_NODE_LIST: AddressList = {
  variable: 'REDIS_CLUSTER_NODES',
  flag: '--redis-cluster-nodes',
  example: '10.0.0.1:7000,10.0.0.2:7000',
};

function parseHostPort(text: string, list: AddressList): RedisAddress {
  // host:port, or [IPv6]:port
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || !(port >= 1 && port <= MAX_PORT_NUMBER)) {
    throw new ConfigError(
      list.variable,
      `${list.flag} / ${list.variable}: "${text}" is not host:port; give a comma-separated list such as ${list.example}`,
    );
  }
  return Object.freeze({ host: match[1] ?? match[2]!, port });
}

/** Where budget-cdc keeps its own keys (checkpoint, dead letters): no job key prefix may cover them. */
export const INTERNAL_KEY_PREFIX = 'budget-cdc:';

function checkKeyPrefix(value: string): string {
  // TRUNCATE deletes every key under the prefix: it must not reach the checkpoint or the dead letters.
  if (value === '' || INTERNAL_KEY_PREFIX.startsWith(value) || value.startsWith(INTERNAL_KEY_PREFIX)) {
    throw new ConfigError(
      'BUDGET_CDC_KEY_PREFIX',
      `--key-prefix / BUDGET_CDC_KEY_PREFIX "${value}" would cover budget-cdc's own keys (${INTERNAL_KEY_PREFIX}…): choose a non-empty prefix such as job:`,
    );
  }
  return value;
}

/** Settings of the health and metrics endpoint and of the lag thresholds (`run`, `start`, `status`). */
export interface HealthConfig {
  /** Port of /healthz, /readyz and /metrics (BUDGET_CDC_HTTP_PORT, --http-port); 0 turns the endpoint off. Default 9187. */
  readonly httpPort: number;
  /** True when the port is the default, not chosen: then a busy port is a warning, not a failure. */
  readonly httpPortIsDefault: boolean;
  /** Address the endpoint listens on (BUDGET_CDC_HTTP_HOST, --http-host). Default 127.0.0.1. */
  readonly httpHost: string;
  /** Lag above this many bytes of WAL is unhealthy (BUDGET_CDC_MAX_LAG_BYTES, --max-lag-bytes). Default 1 GiB. */
  readonly maxLagBytes: number;
  /** Lag above this many seconds is unhealthy (BUDGET_CDC_MAX_LAG_SECONDS, --max-lag-seconds). Default 300 s. */
  readonly maxLagSeconds: number;
}

export const DEFAULT_HTTP_PORT = 9187;
export const DEFAULT_HTTP_HOST = '127.0.0.1';
const GIB = 1024 * 1024 * 1024;
export const DEFAULT_MAX_LAG_BYTES = 1 * GIB;
export const DEFAULT_MAX_LAG_SECONDS = 300;

/** Builds the HealthConfig from flags, then environment, then defaults; throws ConfigError saying what to set. */
export function loadHealthConfig(options: ConfigOptions, env: NodeJS.ProcessEnv = process.env): HealthConfig {
  const portText = options.httpPort ?? env.BUDGET_CDC_HTTP_PORT;
  const httpPort = portText === undefined ? DEFAULT_HTTP_PORT : checkPort(portText);
  const httpHost = options.httpHost ?? env.BUDGET_CDC_HTTP_HOST ?? DEFAULT_HTTP_HOST;
  if (httpHost === '') {
    throw new ConfigError(
      'BUDGET_CDC_HTTP_HOST',
      '--http-host / BUDGET_CDC_HTTP_HOST is empty: set an address such as 127.0.0.1 or 0.0.0.0',
    );
  }
  return Object.freeze({
    httpPort,
    httpPortIsDefault: portText === undefined,
    httpHost,
    maxLagBytes: checkNonNegativeNumber(
      'BUDGET_CDC_MAX_LAG_BYTES',
      '--max-lag-bytes',
      options.maxLagBytes ?? env.BUDGET_CDC_MAX_LAG_BYTES ?? String(DEFAULT_MAX_LAG_BYTES),
      true,
    ),
    maxLagSeconds: checkNonNegativeNumber(
      'BUDGET_CDC_MAX_LAG_SECONDS',
      '--max-lag-seconds',
      options.maxLagSeconds ?? env.BUDGET_CDC_MAX_LAG_SECONDS ?? String(DEFAULT_MAX_LAG_SECONDS),
      false,
    ),
  });
}

/** Settings of `budget-cdc start` (the local quickstart). */
export interface QuickstartConfig {
  /** Folder of the local PostgreSQL and Redis data (BUDGET_CDC_DATA_DIR, --data-dir). Default .budget-cdc in the current directory. */
  readonly dataDir: string;
  /** DATABASE_URL when set: then no local PostgreSQL is started. */
  readonly databaseUrl: string | undefined;
  /** REDIS_URL when set: then no local Redis is started. */
  readonly redisUrl: string | undefined;
  /** Where initdb and postgres are (PG_BIN); default: searched on PATH and in the usual places. */
  readonly postgresBinDir: string | undefined;
  /** PATH, where postgres, initdb and redis-server are looked for first. */
  readonly searchPath: string;
}

export const DEFAULT_DATA_DIR = '.budget-cdc';

/** Builds the QuickstartConfig; the URLs are left undefined when not given, so that local servers are started. */
export function loadQuickstartConfig(options: ConfigOptions, env: NodeJS.ProcessEnv = process.env): QuickstartConfig {
  const databaseUrl = options.databaseUrl ?? (env.DATABASE_URL || undefined);
  const redisUrl = options.redisUrl ?? (env.REDIS_URL || undefined);
  const dataDir = options.dataDir ?? env.BUDGET_CDC_DATA_DIR ?? DEFAULT_DATA_DIR;
  if (dataDir === '')
    throw new ConfigError('BUDGET_CDC_DATA_DIR', '--data-dir / BUDGET_CDC_DATA_DIR is empty: set a folder, e.g. .budget-cdc');
  return Object.freeze({
    dataDir,
    databaseUrl:
      databaseUrl === undefined ? undefined : checkUrl('DATABASE_URL', '--database-url', databaseUrl, ['postgres:', 'postgresql:']),
    redisUrl: redisUrl === undefined ? undefined : checkUrl('REDIS_URL', '--redis-url', redisUrl, ['redis:', 'rediss:']),
    postgresBinDir: env.PG_BIN || undefined,
    searchPath: env.PATH ?? '',
  });
}

/**
 * The password of the role `migrate --create-role` creates: --role-password, else --role-password-file, else
 * BUDGET_CDC_ROLE_PASSWORD; undefined when none is given.
 */
export function loadRolePassword(options: ConfigOptions, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (options.rolePassword !== undefined && options.rolePasswordFile !== undefined) {
    throw new ConfigError('--role-password-file', '--role-password and --role-password-file both give the password: keep one');
  }
  const password =
    options.rolePassword ??
    (options.rolePasswordFile === undefined ? undefined : readSecretFile('--role-password-file', options.rolePasswordFile)) ??
    env.BUDGET_CDC_ROLE_PASSWORD;
  return password === '' ? undefined : password;
}

/**
 * A password kept in a file (a Docker or Kubernetes secret, a file readable by its owner only), so that it is
 * never on a command line, where `ps` and shell history show it. One trailing line break is not part of it.
 */
export function readSecretFile(flag: string, path: string): string {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new ConfigError(flag, `${flag} ${path}: cannot read it (${reason}): give a file holding the password`);
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') throw new ConfigError(flag, `${flag} ${path} is empty: write the password into it`);
  return secret;
}

export const DEFAULT_REDIS_ACL_USER = 'budget_cdc';
/** Letters, digits, _ . -: a name that needs no quoting anywhere (Redis refuses spaces in user names). */
const REDIS_ACL_USER = /^[A-Za-z0-9_.-]{1,100}$/;

/** What `budget-cdc redis-acl` needs to print the ACL SETUSER line of budget-cdc's Redis user. */
export interface RedisAclConfig {
  /** The Redis user (--user). Default budget_cdc. */
  readonly user: string;
  /** Its password (--redis-password-file, BUDGET_CDC_REDIS_PASSWORD); undefined: none set by the line. */
  readonly password: string | undefined;
  /** The job keys' prefix (--key-prefix, BUDGET_CDC_KEY_PREFIX). Default job:. */
  readonly keyPrefix: string;
  /** True with --redis-min-replicas / BUDGET_CDC_REDIS_MIN_REPLICAS above 0: WAIT is needed. */
  readonly minReplicas: number;
  /** True with --redis-sentinels / REDIS_SENTINELS: ROLE is needed. */
  readonly sentinels: boolean;
  /** True with --redis-cluster-nodes / REDIS_CLUSTER_NODES: the CLUSTER commands and ASKING are needed. */
  readonly cluster: boolean;
}

/** Settings of `budget-cdc redis-acl`; needs no DATABASE_URL, and reads the password from a file or the environment only. */
export function loadRedisAclConfig(options: ConfigOptions, env: NodeJS.ProcessEnv = process.env): RedisAclConfig {
  const user = options.redisAclUser ?? DEFAULT_REDIS_ACL_USER;
  if (!REDIS_ACL_USER.test(user)) {
    throw new ConfigError('--user', `--user "${user}" is not a usable Redis user name: use letters, digits, _ . and -`);
  }
  if (user === 'default') {
    throw new ConfigError(
      '--user',
      '--user default would take every right from the user that clients log in as without a name: choose another name',
    );
  }
  const password =
    options.redisPasswordFile === undefined
      ? env.BUDGET_CDC_REDIS_PASSWORD || undefined
      : readSecretFile('--redis-password-file', options.redisPasswordFile);
  return Object.freeze({
    user,
    password,
    keyPrefix: checkKeyPrefix(options.keyPrefix ?? env.BUDGET_CDC_KEY_PREFIX ?? DEFAULT_KEY_PREFIX),
    minReplicas: checkNonNegativeInteger(
      'BUDGET_CDC_REDIS_MIN_REPLICAS',
      '--redis-min-replicas',
      options.redisMinReplicas ?? env.BUDGET_CDC_REDIS_MIN_REPLICAS ?? String(DEFAULT_REDIS_MIN_REPLICAS),
      'replicas',
    ),
    sentinels: (options.redisSentinels ?? env.REDIS_SENTINELS ?? '') !== '',
    cluster: (options.redisClusterNodes ?? env.REDIS_CLUSTER_NODES ?? '') !== '',
  });
}
