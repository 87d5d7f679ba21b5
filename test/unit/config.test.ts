import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BATCH_SIZE,
  DEFAULT_KEY_PREFIX,
  DEFAULT_PUBLICATION_NAME,
  DEFAULT_REDIS_URL,
  DEFAULT_SLOT_NAME,
  loadConfig,
  redact,
  type ConfigOptions,
} from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const DATABASE_URL = 'postgres://app@db.example:5432/jobs';
/** Every variable loadConfig reads, set to a value other than its default. */
const EVERY_VARIABLE = {
  DATABASE_URL,
  REDIS_URL: 'redis://cache:6380/2',
  BUDGET_CDC_SLOT: 'env_slot',
  BUDGET_CDC_PUBLICATION: 'env_pub',
  BUDGET_CDC_KEY_PREFIX: 'env:',
  BUDGET_CDC_BATCH_SIZE: '250',
  LOG_LEVEL: 'debug',
  REDIS_SENTINELS: 'sentinel-a:26379,[::1]:26380',
  REDIS_SENTINEL_MASTER: 'env-master',
  BUDGET_CDC_REDIS_MIN_REPLICAS: '2',
  BUDGET_CDC_DISTRIBUTION: 'http://rules.internal:8080/distribute',
  BUDGET_CDC_DISTRIBUTION_TIMEOUT: '2.5',
  BUDGET_CDC_STREAMING: 'off',
};

/** loadConfig's ConfigError, or a failure when it does not throw one. */
function configError(options: ConfigOptions, env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(options, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify({ options, env })}`);
}

describe('loadConfig', () => {
  it('uses the defaults when only DATABASE_URL is set', () => {
    expect(loadConfig({}, { DATABASE_URL })).toEqual({
      databaseUrl: DATABASE_URL,
      redisUrl: DEFAULT_REDIS_URL,
      redisSentinels: [],
      redisSentinelMaster: undefined,
      redisClusterNodes: [],
      redisMinReplicas: 0,
      slotName: DEFAULT_SLOT_NAME,
      publicationName: DEFAULT_PUBLICATION_NAME,
      keyPrefix: DEFAULT_KEY_PREFIX,
      batchSize: DEFAULT_BATCH_SIZE,
      distribution: { kind: 'even' },
      streaming: true,
      logLevel: 'info',
    });
    expect(DEFAULT_REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(DEFAULT_SLOT_NAME).toBe('budget_cdc');
    expect(DEFAULT_KEY_PREFIX).toBe('job:');
    expect(DEFAULT_BATCH_SIZE).toBe(1000);
  });

  it('takes the environment over the defaults', () => {
    const config = loadConfig({}, EVERY_VARIABLE);
    expect(config).toEqual({
      databaseUrl: DATABASE_URL,
      redisUrl: 'redis://cache:6380/2',
      redisSentinels: [
        { host: 'sentinel-a', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      redisSentinelMaster: 'env-master',
      redisClusterNodes: [],
      redisMinReplicas: 2,
      slotName: 'env_slot',
      publicationName: 'env_pub',
      keyPrefix: 'env:',
      batchSize: 250,
      distribution: { kind: 'service', url: 'http://rules.internal:8080/distribute', timeoutMs: 2500 },
      streaming: false,
      logLevel: 'debug',
    });
  });

  it('takes flags over the environment', () => {
    const env = EVERY_VARIABLE;
    const config = loadConfig(
      {
        databaseUrl: 'postgresql://flag@other:5433/jobs',
        redisUrl: 'rediss://secure:6379',
        slot: 'flag_slot',
        publication: 'flag_pub',
        keyPrefix: 'flag:',
        batchSize: '10',
        logLevel: 'warn',
        redisSentinels: 'flag-sentinel:5000',
        redisSentinelMaster: 'flag-master',
        redisMinReplicas: '1',
        distribution: 'even',
        streaming: true,
      },
      env,
    );
    expect(config).toEqual({
      databaseUrl: 'postgresql://flag@other:5433/jobs',
      redisUrl: 'rediss://secure:6379',
      redisSentinels: [{ host: 'flag-sentinel', port: 5000 }],
      redisSentinelMaster: 'flag-master',
      redisClusterNodes: [],
      redisMinReplicas: 1,
      slotName: 'flag_slot',
      publicationName: 'flag_pub',
      keyPrefix: 'flag:',
      batchSize: 10,
      distribution: { kind: 'even' },
      streaming: true,
      logLevel: 'warn',
    });
  });

  it('takes even or an http(s) URL for the distribution, and says what to set otherwise', () => {
    expect(loadConfig({ distribution: 'https://u:secret@rules:8443/d', distributionTimeout: '30' }, { DATABASE_URL }).distribution).toEqual(
      {
        kind: 'service',
        url: 'https://u:secret@rules:8443/d',
        timeoutMs: 30_000,
      },
    );
    // An empty variable is unset, as a systemd EnvironmentFile line "BUDGET_CDC_DISTRIBUTION=" means.
    expect(loadConfig({}, { DATABASE_URL, BUDGET_CDC_DISTRIBUTION: '' }).distribution).toEqual({ kind: 'even' });
    for (const value of ['uneven', 'ftp://rules/d', 'rules:8080']) {
      const error = configError({ distribution: value }, { DATABASE_URL });
      expect(error.message).toContain('--distribution / BUDGET_CDC_DISTRIBUTION');
      expect(error.message).toContain('even (the built-in split) or the URL of a distribution service');
    }
    expect(configError({ distribution: 'http://u:secret@[bad/d' }, { DATABASE_URL }).message).not.toContain('secret');
    for (const timeout of ['0', '-1', 'soon']) {
      expect(configError({ distributionTimeout: timeout }, { DATABASE_URL }).message).toContain('--distribution-timeout');
    }
  });

  it('streams large transactions unless told off, and says what to set for a wrong value', () => {
    expect(loadConfig({}, { DATABASE_URL, BUDGET_CDC_STREAMING: 'on' }).streaming).toBe(true);
    expect(loadConfig({}, { DATABASE_URL, BUDGET_CDC_STREAMING: '' }).streaming).toBe(true);
    expect(loadConfig({ streaming: false }, { DATABASE_URL, BUDGET_CDC_STREAMING: 'on' }).streaming).toBe(false);
    expect(configError({}, { DATABASE_URL, BUDGET_CDC_STREAMING: 'yes' }).message).toBe(
      'BUDGET_CDC_STREAMING must be on or off, got "yes" (or pass --no-streaming)',
    );
  });

  it('does not read process.env when given an environment', () => {
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = 'postgres://from-process-env/x';
    try {
      expect(() => loadConfig({}, {})).toThrow(ConfigError);
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
    }
  });

  it('returns a frozen Config', () => {
    const config = loadConfig({}, { DATABASE_URL });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it.each([
    ['unset', {}],
    ['empty', { DATABASE_URL: '' }],
  ])('rejects a DATABASE_URL that is %s, saying to set DATABASE_URL or --database-url', (_, env) => {
    const error = configError({}, env);
    expect(error.variable).toBe('DATABASE_URL');
    expect(error.message).toMatch(/DATABASE_URL/);
    expect(error.message).toMatch(/--database-url/);
  });

  it.each([
    ['DATABASE_URL', { DATABASE_URL: 'http://db.example:5432/jobs' }],
    ['DATABASE_URL', { DATABASE_URL: 'not a url' }],
    ['DATABASE_URL', { DATABASE_URL: 'redis://127.0.0.1:6379' }],
    ['REDIS_URL', { DATABASE_URL, REDIS_URL: 'http://cache:6379' }],
    ['REDIS_URL', { DATABASE_URL, REDIS_URL: 'postgres://cache:6379' }],
    ['REDIS_URL', { DATABASE_URL, REDIS_URL: 'cache:6379:x' }],
  ])('names %s when its URL is wrong (%j)', (variable, env) => {
    const error = configError({}, env);
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(variable);
    expect(error.message).toContain(variable === 'DATABASE_URL' ? '--database-url' : '--redis-url');
  });

  it.each([
    ['REDIS_SENTINEL_MASTER', { DATABASE_URL, REDIS_SENTINELS: 'a:26379' }, /REDIS_SENTINEL_MASTER is not/],
    ['REDIS_SENTINELS', { DATABASE_URL, REDIS_SENTINEL_MASTER: 'mymaster' }, /REDIS_SENTINELS is not/],
    ['REDIS_SENTINELS', { DATABASE_URL, REDIS_SENTINELS: 'a:26379,b', REDIS_SENTINEL_MASTER: 'm' }, /"b" is not host:port/],
    ['REDIS_SENTINELS', { DATABASE_URL, REDIS_SENTINELS: 'a:70000', REDIS_SENTINEL_MASTER: 'm' }, /"a:70000" is not host:port/],
    ['REDIS_SENTINEL_MASTER', { DATABASE_URL, REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_MASTER: 'my master' }, /not a Sentinel master name/],
    ['BUDGET_CDC_REDIS_MIN_REPLICAS', { DATABASE_URL, BUDGET_CDC_REDIS_MIN_REPLICAS: '-1' }, /--redis-min-replicas/],
  ])('names %s when the Sentinel or replica settings are wrong (%j)', (variable, env, message) => {
    const error = configError({}, env);
    expect(error.variable).toBe(variable);
    expect(error.message).toMatch(message);
  });

  it('reads the cluster nodes from REDIS_CLUSTER_NODES, IPv6 in brackets, spaces around commas allowed', () => {
    const config = loadConfig({}, { DATABASE_URL, REDIS_CLUSTER_NODES: 'node-a:7000, 10.0.0.2:7001,[::1]:7002' });
    expect(config.redisClusterNodes).toEqual([
      { host: 'node-a', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(config.redisSentinels).toEqual([]);
  });

  it('takes --redis-cluster-nodes over REDIS_CLUSTER_NODES, and an empty REDIS_CLUSTER_NODES as unset', () => {
    const env = { DATABASE_URL, REDIS_CLUSTER_NODES: 'env-node:7000' };
    expect(loadConfig({ redisClusterNodes: 'flag-node:7001' }, env).redisClusterNodes).toEqual([{ host: 'flag-node', port: 7001 }]);
    expect(loadConfig({}, { DATABASE_URL, REDIS_CLUSTER_NODES: '' }).redisClusterNodes).toEqual([]);
    // Empty, it does not clash with Sentinels either.
    const sentinels = { DATABASE_URL, REDIS_CLUSTER_NODES: '', REDIS_SENTINELS: 'a:26379', REDIS_SENTINEL_MASTER: 'm' };
    expect(loadConfig({}, sentinels).redisClusterNodes).toEqual([]);
  });

  it.each(['redis://user:pw@ignored:6379', 'rediss://user:pw@ignored:6379/0', 'redis://ignored?db=0', 'redis://ignored/'])(
    'accepts REDIS_URL %s with a cluster (database 0 or none)',
    (redisUrl) => {
      const config = loadConfig({ redisUrl }, { DATABASE_URL, REDIS_CLUSTER_NODES: 'a:7000' });
      expect(config).toMatchObject({ redisUrl, redisClusterNodes: [{ host: 'a', port: 7000 }] });
    },
  );

  it.each([
    ['REDIS_URL', { REDIS_CLUSTER_NODES: 'a:7000', REDIS_URL: 'redis://cache:6379/2' }, /selects database 2.*only database 0/],
    ['REDIS_URL', { REDIS_CLUSTER_NODES: 'a:7000', REDIS_URL: 'redis://cache:6379?db=1' }, /selects database 1.*--redis-url/],
    ['REDIS_URL', { REDIS_CLUSTER_NODES: 'a:7000', REDIS_URL: 'redis://cache:6379/x' }, /selects database x/],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: 'a:7000,b' }, /--redis-cluster-nodes \/ REDIS_CLUSTER_NODES: "b" is not host:port/],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: 'a:0' }, /REDIS_CLUSTER_NODES: "a:0" is not host:port.*10\.0\.0\.1:7000/],
    ['REDIS_CLUSTER_NODES', { REDIS_CLUSTER_NODES: 'a:7000,' }, /REDIS_CLUSTER_NODES: "" is not host:port/],
    [
      'REDIS_CLUSTER_NODES',
      { REDIS_CLUSTER_NODES: 'a:7000', REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_MASTER: 'm' },
      /both set.*unset --redis-sentinels.*or unset --redis-cluster-nodes/,
    ],
  ])('names %s when the cluster settings are wrong (%j)', (variable, env, message) => {
    const error = configError({}, { DATABASE_URL, ...env });
    expect(error.variable).toBe(variable);
    expect(error.message).toMatch(message);
  });

  it('names the cluster flag when the flag, not the environment, is malformed', () => {
    const error = configError({ redisClusterNodes: '' }, { DATABASE_URL, REDIS_CLUSTER_NODES: 'a:7000' });
    expect(error.variable).toBe('REDIS_CLUSTER_NODES');
    expect(error.message).toContain('--redis-cluster-nodes');
  });

  it('names the scheme it expects when the scheme is wrong', () => {
    expect(configError({}, { DATABASE_URL: 'http://db.example:5432/jobs' }).message).toMatch(/postgres:\/\/.*http:/);
  });

  it('names the flag when a flag, not the environment, holds the wrong URL', () => {
    const error = configError({ databaseUrl: 'mysql://db/jobs' }, { DATABASE_URL });
    expect(error.message).toContain('--database-url');
  });

  it('never prints the password of a URL it rejects', () => {
    const error = configError({}, { DATABASE_URL, REDIS_URL: 'http://user:s3cret@cache:6379' });
    expect(error.message).not.toContain('s3cret');
    const unparsable = configError({}, { DATABASE_URL: 'postgres://user:s3cret@db:notaport/jobs' });
    expect(unparsable.message).not.toContain('s3cret');
  });

  it.each([
    'Budget_CDC', // quoted identifiers only
    '1slot', // starts with a digit
    'slot-name',
    'slot name',
    'slot;drop table jobs',
    'a"b',
    '',
    'x'.repeat(64), // PostgreSQL truncates names at 63 bytes
  ])('rejects the slot and publication name %j', (name) => {
    const slotError = configError({ slot: name }, { DATABASE_URL });
    expect(slotError.variable).toBe('BUDGET_CDC_SLOT');
    expect(slotError.message).toContain('--slot');
    const publicationError = configError({}, { DATABASE_URL, BUDGET_CDC_PUBLICATION: name });
    expect(publicationError.variable).toBe('BUDGET_CDC_PUBLICATION');
    expect(publicationError.message).toContain('--publication');
  });

  it.each(['_slot', 'slot_1', 'a', 'x'.repeat(63)])('accepts the name %j', (name) => {
    expect(loadConfig({ slot: name, publication: name }, { DATABASE_URL })).toMatchObject({ slotName: name, publicationName: name });
  });

  it.each(['0', '-1', '1.5', 'abc', '', '1e3x', '9007199254740993'])('rejects the batch size %j', (value) => {
    const error = configError({ batchSize: value }, { DATABASE_URL });
    expect(error.variable).toBe('BUDGET_CDC_BATCH_SIZE');
    expect(error.message).toMatch(/--batch-size.*positive integer/);
  });

  it('rejects a batch size from the environment, naming the variable', () => {
    const error = configError({}, { DATABASE_URL, BUDGET_CDC_BATCH_SIZE: '0' });
    expect(error.message).toContain('BUDGET_CDC_BATCH_SIZE');
  });

  it.each(['1', '1000', '50000'])('accepts the batch size %j', (value) => {
    expect(loadConfig({ batchSize: value }, { DATABASE_URL }).batchSize).toBe(Number(value));
  });

  // TRUNCATE deletes every key under the prefix, so it must not reach budget-cdc's own keys.
  it.each(['', 'b', 'budget-cdc', 'budget-cdc:', 'budget-cdc:jobs:'])('rejects the key prefix %j, which covers budget-cdc:…', (prefix) => {
    const error = configError({ keyPrefix: prefix }, { DATABASE_URL });
    expect(error.variable).toBe('BUDGET_CDC_KEY_PREFIX');
    expect(error.message).toContain('--key-prefix');
    const fromEnv = configError({}, { DATABASE_URL, BUDGET_CDC_KEY_PREFIX: prefix });
    expect(fromEnv.variable).toBe('BUDGET_CDC_KEY_PREFIX');
  });

  it.each(['job:', 'budget:', 'budget-cdc-jobs:', 'tenant[1]:job:'])('accepts the key prefix %j', (prefix) => {
    expect(loadConfig({ keyPrefix: prefix }, { DATABASE_URL }).keyPrefix).toBe(prefix);
  });

  it('rejects an unknown log level, listing the valid ones', () => {
    const error = configError({ logLevel: 'verbose' }, { DATABASE_URL });
    expect(error.variable).toBe('LOG_LEVEL');
    expect(error.message).toMatch(/fatal, error, warn, info, debug, trace/);
  });
});

describe('redact', () => {
  it('hides the password and keeps the rest', () => {
    expect(redact('postgres://app:s3cret@db:5432/jobs')).toBe('postgres://app:***@db:5432/jobs');
    expect(redact('postgres://app@db:5432/jobs')).toBe('postgres://app@db:5432/jobs');
    expect(redact('postgres://app:s3cret@db:notaport/jobs')).not.toContain('s3cret');
    expect(redact('postgres://app:s3cret@db:notaport/jobs')).toBe('postgres://…');
  });

  it.each([`p@ss:w/rd%41!'\\x`, `@@::///%%''\\\\`, `s3cr:et@x:y/z`, `a/b@c:d`])(
    'never prints any part of an unencoded password in the error of a URL that does not parse (%s)',
    (password) => {
      for (const [variable, url] of [
        ['DATABASE_URL', `postgres://user:${password}@db.example:5432/jobs`],
        ['REDIS_URL', `redis://user:${password}@cache.example:6379/0`],
      ] as const) {
        let message = '';
        try {
          loadConfig({}, { DATABASE_URL, [variable]: url });
        } catch (error) {
          message = (error as Error).message;
        }
        expect(message).toMatch(/percent-encoded/);
        for (const piece of password.split(/[@:/]/).filter((p) => p.length >= 3)) expect(message).not.toContain(piece);
      }
    },
  );

  it('says which scheme an unparseable URL has, and nothing more', () => {
    expect(redact('redis://u:p@ss@host:port:x')).toBe('redis://…');
    expect(redact('no url at all')).toBe('(not shown)');
  });
});
