import { parseArgs } from 'node:util';
import { loadConfig, loadHealthConfig, loadLogLevel, loadRedisAclConfig, loadRolePassword, type ConfigOptions } from './config.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './commands/exit-codes.js';
import { ConfigError, ConnectionError, SetupError } from './errors.js';
import { DEFAULT_DEMO_ROWS } from './commands/demo-rows.js';

// Parses the command line and dispatches to src/commands/, nothing more. Each command is imported when it
// runs: `load` or `--help` must not pay for loading the consumer, the HTTP server and the quickstart
// (start-up time counts in every short command).

const USAGE = `usage: budget-cdc <command> [options]

commands:
  start                the quickstart: without DATABASE_URL / REDIS_URL, start a local PostgreSQL and Redis
                       (data kept in --data-dir), then run the pipeline like "run"; Ctrl-C stops all
  demo                 load 100 000 generated jobs (--rows N) through "load" into the running pipeline, print
                       the rate and a few keys with their TTLs
  migrate              create or upgrade the jobs table and the publication; with --create-role NAME, also a
                       role for the consumer: LOGIN REPLICATION and SELECT on jobs, nothing more
  run                  apply pending migrations, follow the replication slot (created when missing) and
                       write budgets to Redis, until SIGINT or SIGTERM; serves /healthz, /readyz, /metrics
  load <file.csv | ->  COPY a CSV (header job_id,days_online,budget[,created_at]) into jobs, in one transaction
  resync               rebuild Redis from the table (alive rows), done by the running consumer; shows progress;
                       exit 7 when the consumer keeps failing or waits for its distribution service
  status               the slot (active, lag in bytes and seconds, wal_status, safe_wal_size, retained WAL),
                       Redis (checkpoint, dead letters); exit 0 healthy, 1 PostgreSQL or Redis unreachable,
                       3 lag over a threshold (or WAL at risk), 4 slot missing or lost, 5 Redis may evict
                       job keys (maxmemory-policy is not noeviction), 6 the jobs table breaks the contract
                       (a column renamed, REPLICA IDENTITY not FULL), 7 the consumer keeps failing or its
                       distribution service is unavailable
  inspect <job_id>     the job's row and its Redis key side by side, and whether they agree (exit 0) or not (3)
  dead-letters         rows that could not be processed, newest first
  redis-acl            print the ACL SETUSER line of a least-privilege Redis user for budget-cdc (--user NAME):
                       the key prefix and budget-cdc:* only, no channels, only the commands budget-cdc sends;
                       apply it with "budget-cdc redis-acl | redis-cli"

options (flag, then environment variable, then default):
  --database-url URL   PostgreSQL, DATABASE_URL; required (start: a local one when unset)
  --redis-url URL      Redis, REDIS_URL; default redis://127.0.0.1:6379 (start: a local one when unset)
  --redis-sentinels HOST:PORT,...
                       Sentinels that name the Redis master, REDIS_SENTINELS; REDIS_URL then gives only the
                       user, password, TLS and database; default none
  --redis-sentinel-master NAME
                       the master's name at the Sentinels, REDIS_SENTINEL_MASTER; required with --redis-sentinels
  --redis-cluster-nodes HOST:PORT,...
                       nodes of a Redis Cluster (any of them; the rest are discovered), REDIS_CLUSTER_NODES;
                       REDIS_URL then gives only the user, password and TLS (database 0 only); not with
                       --redis-sentinels; default none
  --redis-min-replicas N
                       acknowledge a write to PostgreSQL only once N Redis replicas confirmed it (WAIT), with
                       a cluster N replicas of each master written to, BUDGET_CDC_REDIS_MIN_REPLICAS; default 0
  --slot NAME          replication slot, BUDGET_CDC_SLOT; default budget_cdc
  --publication NAME   publication on jobs, BUDGET_CDC_PUBLICATION; default budget_cdc
  --key-prefix TEXT    prefix of the Redis keys, BUDGET_CDC_KEY_PREFIX; default job:
  --batch-size N       Redis commands per pipelined batch, BUDGET_CDC_BATCH_SIZE; default 1000 (60000 on a cluster)
  --distribution RULE  the budget rule, BUDGET_CDC_DISTRIBUTION: even (the built-in exact split) or the
                       http(s) URL of a distribution service (docs/distribution-protocol.md); changing it needs
                       "budget-cdc resync"; default even
  --distribution-timeout SECONDS
                       a request to the distribution service that takes longer failed and is retried,
                       BUDGET_CDC_DISTRIBUTION_TIMEOUT; default 10
  --no-streaming       receive large transactions whole after their commit (protocol 1) instead of while they
                       run (protocol 2, PostgreSQL 14 and later), BUDGET_CDC_STREAMING=off; default on
  --log-level LEVEL    fatal, error, warn, info, debug, trace, silent, LOG_LEVEL; default info
  --http-port N        port of /healthz, /readyz, /metrics, BUDGET_CDC_HTTP_PORT; default 9187; 0: off
  --http-host ADDRESS  address they listen on, BUDGET_CDC_HTTP_HOST; default 127.0.0.1
  --max-lag-bytes N    /readyz and status: unhealthy above this WAL lag, BUDGET_CDC_MAX_LAG_BYTES;
                       default 1073741824 (1 GiB)
  --max-lag-seconds N  /readyz and status: unhealthy above this lag, BUDGET_CDC_MAX_LAG_SECONDS; default 300
  --data-dir PATH      start and demo: folder of the local servers' data, BUDGET_CDC_DATA_DIR; default .budget-cdc
  --create-role NAME   migrate: create or update the consumer's role NAME
  --role-password-file PATH
                       migrate --create-role: a file holding its password (one trailing line break ignored);
                       or BUDGET_CDC_ROLE_PASSWORD; default none (no password)
  --role-password PW   the same on the command line, where ps and shell history show it: avoid
  --user NAME          redis-acl: the Redis user; default budget_cdc
  --redis-password-file PATH
                       redis-acl: a file holding the user's password, or BUDGET_CDC_REDIS_PASSWORD; the line
                       carries its SHA-256 (#…), never the password; default none (the user cannot log in)
  --rows N             demo: how many jobs; default 100000
  --json               status, inspect and dead-letters: print JSON
  --watch              status: refresh every second with rows/s, freshness p50/p99 and the stage split from the
                       consumer's /metrics (--http-host, --http-port), until Ctrl-C; with --json a line each
  --limit N            dead-letters: how many to print; default 100
  -h, --help           this text

exit codes: 0 success, 1 failure (unreachable server, failed load, ...), 2 usage or configuration error;
status and inspect add their own above.
`;

const COMMANDS = ['start', 'demo', 'migrate', 'run', 'load', 'status', 'inspect', 'resync', 'dead-letters', 'redis-acl'];

export async function main(argv: string[]): Promise<number> {
  exitQuietlyWhenStdoutCloses();
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        'database-url': { type: 'string' },
        'redis-url': { type: 'string' },
        'redis-sentinels': { type: 'string' },
        'redis-sentinel-master': { type: 'string' },
        'redis-cluster-nodes': { type: 'string' },
        'redis-min-replicas': { type: 'string' },
        slot: { type: 'string' },
        publication: { type: 'string' },
        'key-prefix': { type: 'string' },
        'batch-size': { type: 'string' },
        distribution: { type: 'string' },
        'distribution-timeout': { type: 'string' },
        'no-streaming': { type: 'boolean' },
        'log-level': { type: 'string' },
        'http-port': { type: 'string' },
        'http-host': { type: 'string' },
        'max-lag-bytes': { type: 'string' },
        'max-lag-seconds': { type: 'string' },
        'data-dir': { type: 'string' },
        'create-role': { type: 'string' },
        'role-password': { type: 'string' },
        'role-password-file': { type: 'string' },
        user: { type: 'string' },
        'redis-password-file': { type: 'string' },
        rows: { type: 'string', default: String(DEFAULT_DEMO_ROWS) },
        json: { type: 'boolean', default: false },
        watch: { type: 'boolean', default: false },
        limit: { type: 'string', default: '100' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    return fail(`${(error as Error).message}; see "budget-cdc --help"`, EXIT_USAGE);
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined && !values.help ? EXIT_USAGE : EXIT_OK;
  }
  if (command === undefined || !COMMANDS.includes(command)) {
    return fail(`unknown command "${command}"; see "budget-cdc --help"`, EXIT_USAGE);
  }
  if (values.watch && command !== 'status') return fail(`--watch is for "status" only; see "budget-cdc --help"`, EXIT_USAGE);
  const options: ConfigOptions = {
    databaseUrl: values['database-url'],
    redisUrl: values['redis-url'],
    redisSentinels: values['redis-sentinels'],
    redisSentinelMaster: values['redis-sentinel-master'],
    redisClusterNodes: values['redis-cluster-nodes'],
    redisMinReplicas: values['redis-min-replicas'],
    slot: values.slot,
    publication: values.publication,
    keyPrefix: values['key-prefix'],
    batchSize: values['batch-size'],
    distribution: values.distribution,
    distributionTimeout: values['distribution-timeout'],
    streaming: values['no-streaming'] === true ? false : undefined,
    logLevel: values['log-level'],
    httpPort: values['http-port'],
    httpHost: values['http-host'],
    maxLagBytes: values['max-lag-bytes'],
    maxLagSeconds: values['max-lag-seconds'],
    dataDir: values['data-dir'],
    rolePassword: values['role-password'],
    rolePasswordFile: values['role-password-file'],
    redisAclUser: values.user,
    redisPasswordFile: values['redis-password-file'],
  };
  if (values['role-password'] !== undefined) {
    process.stderr.write(
      'budget-cdc: warning: --role-password is visible to every user of this machine (ps) and stays in shell history; ' +
        'pass --role-password-file PATH or set BUDGET_CDC_ROLE_PASSWORD instead\n',
    );
  }
  try {
    // start and demo find their servers themselves: DATABASE_URL is not required.
    if (command === 'start') {
      // start owns local servers that an exit here would orphan; it stops them on Ctrl-C or SIGTERM.
      stdoutClosedAction = 'ignore';
      const [{ runQuickstart }, { makeLogger }] = await Promise.all([import('./commands/start.js'), import('./logger.js')]);
      return await runQuickstart(options, makeLogger(loadLogLevel(options)), process.stdout);
    }
    if (command === 'redis-acl') {
      return (await import('./commands/redis-acl.js')).redisAclCommand(loadRedisAclConfig(options));
    }
    if (command === 'demo') return await (await import('./commands/demo.js')).demoCommand(options, values.rows);
    const config = loadConfig(options);
    switch (command) {
      case 'migrate':
        return await (await import('./commands/migrate.js')).migrateCommand(config, values['create-role'], loadRolePassword(options));
      case 'run': {
        const [{ runPipeline }, { makeLogger }] = await Promise.all([import('./commands/run.js'), import('./logger.js')]);
        return await runPipeline(config, loadHealthConfig(options), makeLogger(config.logLevel));
      }
      case 'load':
        return await (await import('./commands/load.js')).loadCommand(config, args);
      case 'status':
        if (values.watch) {
          return await (await import('./commands/status-watch.js')).statusWatchCommand(config, loadHealthConfig(options), values.json);
        }
        return await (await import('./commands/status.js')).statusCommand(config, loadHealthConfig(options), values.json);
      case 'inspect':
        return await (await import('./commands/inspect.js')).inspectCommand(config, args, values.json);
      case 'resync':
        return await (await import('./commands/resync.js')).resyncCommand(config);
      case 'dead-letters':
        return await (await import('./commands/dead-letters.js')).deadLettersCommand(config, values.json, values.limit);
      default:
        return fail(`unknown command "${command}"; see "budget-cdc --help"`, EXIT_USAGE);
    }
  } catch (error) {
    if (error instanceof ConfigError) return fail(error.message, EXIT_USAGE);
    if (error instanceof ConnectionError || error instanceof SetupError) return fail(error.message, EXIT_FAILURE);
    const message = error instanceof Error ? error.message : String(error);
    return fail(message.split('\n')[0] ?? message, EXIT_FAILURE);
  }
}

/**
 * `budget-cdc demo | head`: once the reader has what it wanted and closes the pipe, the next write fails with
 * EPIPE, which would otherwise end the process with a stack trace. The output was cut short on purpose, so
 * this exits at once and quietly, as `yes | head` does (exit 0: a shell's pipefail should not report the
 * reader's choice). Registered once per process: main() runs once per process in bin/, many times in tests.
 */
let stdoutClosedAction: 'exit' | 'ignore' = 'exit';

function exitQuietlyWhenStdoutCloses(): void {
  if (process.stdout.listeners('error').includes(onStdoutError)) return;
  process.stdout.on('error', onStdoutError);
}

function onStdoutError(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EPIPE') throw error;
  if (stdoutClosedAction === 'exit') process.exit(EXIT_OK);
}

function fail(message: string, code: number): number {
  process.stderr.write(`budget-cdc: ${message}\n`);
  return code;
}
