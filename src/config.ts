import { ConfigError } from './errors.js';

/** Settings given on the command line; each overrides its environment variable. */
export interface ConfigOptions {
  databaseUrl?: string | undefined;
  redisUrl?: string | undefined;
  slot?: string | undefined;
  publication?: string | undefined;
  keyPrefix?: string | undefined;
  batchSize?: string | undefined;
  logLevel?: string | undefined;
}

/** Resolved, validated settings. The only place that reads the environment is `loadConfig`. */
export interface Config {
  /** PostgreSQL connection string (DATABASE_URL, --database-url). No default. */
  readonly databaseUrl: string;
  /** Redis connection string (REDIS_URL, --redis-url). Default redis://127.0.0.1:6379. */
  readonly redisUrl: string;
  /** Logical replication slot (BUDGET_CDC_SLOT, --slot). Default budget_cdc. */
  readonly slotName: string;
  /** Publication on the jobs table (BUDGET_CDC_PUBLICATION, --publication). Default budget_cdc. */
  readonly publicationName: string;
  /** Prefix of every Redis key written (BUDGET_CDC_KEY_PREFIX, --key-prefix). Default job:. */
  readonly keyPrefix: string;
  /** Redis commands sent per pipelined batch (BUDGET_CDC_BATCH_SIZE, --batch-size). Default 1000 commands. */
  readonly batchSize: number;
  /** Log level: fatal, error, warn, info, debug, trace (LOG_LEVEL, --log-level). Default info. */
  readonly logLevel: string;
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_SLOT_NAME = 'budget_cdc';
export const DEFAULT_PUBLICATION_NAME = 'budget_cdc';
export const DEFAULT_KEY_PREFIX = 'job:';
export const DEFAULT_BATCH_SIZE = 1000;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

// PostgreSQL folds unquoted names to lower case and limits them to 63 bytes; we accept only names
// that need no quoting so that the same name works in SQL, in replication commands and in psql.
const SQL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

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
  const config: Config = {
    databaseUrl: checkUrl('DATABASE_URL', '--database-url', databaseUrl, ['postgres:', 'postgresql:']),
    redisUrl: checkUrl('REDIS_URL', '--redis-url', redisUrl, ['redis:', 'rediss:']),
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
      options.batchSize ?? env.BUDGET_CDC_BATCH_SIZE ?? String(DEFAULT_BATCH_SIZE),
    ),
    logLevel: checkLogLevel(options.logLevel ?? env.LOG_LEVEL ?? 'info'),
  };
  return Object.freeze(config);
}

function checkUrl(variable: string, flag: string, value: string, protocols: string[]): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(
      variable,
      `${variable} is not a valid URL (${redact(value)}): set it or ${flag} to a URL like ${protocols[0]}//host:port`,
    );
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(
      variable,
      `${variable} must start with ${protocols.map((p) => p + '//').join(' or ')}, got ${url.protocol}//: fix it or pass ${flag}`,
    );
  }
  return value;
}

function checkSqlName(variable: string, flag: string, value: string): string {
  if (!SQL_NAME.test(value)) {
    throw new ConfigError(
      variable,
      `${flag} / ${variable} "${value}" is not a valid name: use 1 to 63 lower-case letters, digits and underscores, starting with a letter or underscore`,
    );
  }
  return value;
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

function checkPositiveInteger(variable: string, flag: string, value: string): number {
  const n = /^[1-9]\d*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new ConfigError(variable, `${flag} / ${variable} must be a positive integer, got "${value}"`);
  }
  return n;
}

function checkLogLevel(value: string): string {
  if (!LOG_LEVELS.includes(value)) {
    throw new ConfigError('LOG_LEVEL', `--log-level / LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  }
  return value;
}

/** Hides a password so that error messages and logs never print it. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}
