import { parseArgs } from 'node:util';
import { loadConfig, loadHealthConfig, loadLogLevel, loadRolePassword, redact, type Config, type ConfigOptions } from './config.js';
import type { SingleBar } from 'cli-progress';
import { ConfigError, ConnectionError, SetupError } from './errors.js';
import { DEFAULT_DEMO_ROWS } from './ops/demo-rows.js';

// Each command imports what it needs when it runs: `load` or `--help` must not pay for loading the
// consumer, the HTTP server and the quickstart (start-up time counts in every short command).

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
                       exit 7 when the consumer keeps failing (the resync waits for it)
  status               the slot (active, lag in bytes and seconds, wal_status, safe_wal_size, retained WAL),
                       Redis (checkpoint, dead letters); exit 0 healthy, 1 PostgreSQL or Redis unreachable,
                       3 lag over a threshold (or WAL at risk), 4 slot missing or lost, 5 Redis may evict
                       job keys (maxmemory-policy is not noeviction), 6 the jobs table breaks the contract
                       (a column renamed, REPLICA IDENTITY not FULL), 7 the consumer keeps failing
  inspect <job_id>     the job's row and its Redis key side by side, and whether they agree (exit 0) or not (3)
  dead-letters         rows that could not be processed, newest first

options (flag, then environment variable, then default):
  --database-url URL   PostgreSQL, DATABASE_URL; required (start: a local one when unset)
  --redis-url URL      Redis, REDIS_URL; default redis://127.0.0.1:6379 (start: a local one when unset)
  --redis-sentinels HOST:PORT,...
                       Sentinels that name the Redis master, REDIS_SENTINELS; REDIS_URL then gives only the
                       user, password, TLS and database; default none
  --redis-sentinel-master NAME
                       the master's name at the Sentinels, REDIS_SENTINEL_MASTER; required with --redis-sentinels
  --redis-min-replicas N
                       acknowledge a write to PostgreSQL only once N Redis replicas confirmed it (WAIT),
                       BUDGET_CDC_REDIS_MIN_REPLICAS; default 0
  --slot NAME          replication slot, BUDGET_CDC_SLOT; default budget_cdc
  --publication NAME   publication on jobs, BUDGET_CDC_PUBLICATION; default budget_cdc
  --key-prefix TEXT    prefix of the Redis keys, BUDGET_CDC_KEY_PREFIX; default job:
  --batch-size N       Redis commands per pipelined batch, BUDGET_CDC_BATCH_SIZE; default 1000
  --log-level LEVEL    fatal, error, warn, info, debug, trace, silent, LOG_LEVEL; default info
  --http-port N        port of /healthz, /readyz, /metrics, BUDGET_CDC_HTTP_PORT; default 9187; 0: off
  --http-host ADDRESS  address they listen on, BUDGET_CDC_HTTP_HOST; default 127.0.0.1
  --max-lag-bytes N    /readyz and status: unhealthy above this WAL lag, BUDGET_CDC_MAX_LAG_BYTES;
                       default 1073741824 (1 GiB)
  --max-lag-seconds N  /readyz and status: unhealthy above this lag, BUDGET_CDC_MAX_LAG_SECONDS; default 300
  --data-dir PATH      start and demo: folder of the local servers' data, BUDGET_CDC_DATA_DIR; default .budget-cdc
  --create-role NAME   migrate: create or update the consumer's role NAME
  --role-password PW   migrate --create-role: its password, BUDGET_CDC_ROLE_PASSWORD; default none
  --rows N             demo: how many jobs; default 100000
  --json               status, inspect and dead-letters: print JSON
  --limit N            dead-letters: how many to print; default 100
  -h, --help           this text

exit codes: 0 success, 1 failure (unreachable server, failed load, ...), 2 usage or configuration error;
status and inspect add their own above.
`;

const COMMANDS = ['start', 'demo', 'migrate', 'run', 'load', 'status', 'inspect', 'resync', 'dead-letters'];
const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
/** inspect: the key does not hold what the row implies. */
const EXIT_DISAGREE = 3;
/** resync: the consumer's sessions keep failing; the same code as status's. */
const EXIT_CONSUMER_FAILING = 7;

/** Runs one command; returns the process exit code. Errors end as one line on stderr. */
export async function main(argv: string[]): Promise<number> {
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
        'redis-min-replicas': { type: 'string' },
        slot: { type: 'string' },
        publication: { type: 'string' },
        'key-prefix': { type: 'string' },
        'batch-size': { type: 'string' },
        'log-level': { type: 'string' },
        'http-port': { type: 'string' },
        'http-host': { type: 'string' },
        'max-lag-bytes': { type: 'string' },
        'max-lag-seconds': { type: 'string' },
        'data-dir': { type: 'string' },
        'create-role': { type: 'string' },
        'role-password': { type: 'string' },
        rows: { type: 'string', default: String(DEFAULT_DEMO_ROWS) },
        json: { type: 'boolean', default: false },
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
  const options: ConfigOptions = {
    databaseUrl: values['database-url'],
    redisUrl: values['redis-url'],
    redisSentinels: values['redis-sentinels'],
    redisSentinelMaster: values['redis-sentinel-master'],
    redisMinReplicas: values['redis-min-replicas'],
    slot: values.slot,
    publication: values.publication,
    keyPrefix: values['key-prefix'],
    batchSize: values['batch-size'],
    logLevel: values['log-level'],
    httpPort: values['http-port'],
    httpHost: values['http-host'],
    maxLagBytes: values['max-lag-bytes'],
    maxLagSeconds: values['max-lag-seconds'],
    dataDir: values['data-dir'],
    rolePassword: values['role-password'],
  };
  try {
    // start and demo find their servers themselves: DATABASE_URL is not required.
    if (command === 'start') {
      const [{ runQuickstart }, { makeLogger }] = await Promise.all([import('./local/quickstart.js'), import('./logger.js')]);
      return await runQuickstart(options, makeLogger(loadLogLevel(options)), process.stdout);
    }
    if (command === 'demo') return await demoCommand(options, values.rows);
    const config = loadConfig(options);
    switch (command) {
      case 'migrate':
        return await migrateCommand(config, values['create-role'], loadRolePassword(options));
      case 'run': {
        const [{ runPipeline }, { makeLogger }] = await Promise.all([import('./ops/run-pipeline.js'), import('./logger.js')]);
        return await runPipeline(config, loadHealthConfig(options), makeLogger(config.logLevel));
      }
      case 'load':
        return await loadCommand(config, args);
      case 'status':
        return await statusCommand(config, options, values.json);
      case 'inspect':
        return await inspectCommand(config, args, values.json);
      case 'resync':
        return await resyncCommand(config);
      case 'dead-letters':
        return await deadLettersCommand(config, values.json, values.limit);
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

async function demoCommand(options: ConfigOptions, rowsText: string): Promise<number> {
  const rows = /^[1-9]\d{0,8}$/.test(rowsText) ? Number(rowsText) : NaN;
  if (!Number.isSafeInteger(rows)) return fail(`--rows must be a positive integer up to 999999999, got "${rowsText}"`, EXIT_USAGE);
  const { runDemo } = await import('./ops/demo.js');
  return runDemo(options, rows, process.stdout);
}

async function inspectCommand(config: Config, args: string[], json: boolean): Promise<number> {
  const [jobId, ...extra] = args;
  if (jobId === undefined || extra.length > 0) return fail('inspect takes one argument: a job_id', EXIT_USAGE);
  const { inspectJob, formatInspection } = await import('./ops/inspect-job.js');
  const inspection = await inspectJob(config, jobId);
  process.stdout.write(json ? JSON.stringify(inspection) + '\n' : formatInspection(inspection) + '\n');
  return inspection.agree ? EXIT_OK : EXIT_DISAGREE;
}

function fail(message: string, code: number): number {
  process.stderr.write(`budget-cdc: ${message}\n`);
  return code;
}

// Role names reach SQL (quoted anyway): the same rule as slot and publication names.
const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

async function migrateCommand(config: Config, roleName: string | undefined, rolePassword: string | undefined): Promise<number> {
  if (roleName !== undefined && !ROLE_NAME.test(roleName)) {
    return fail(`--create-role "${roleName}" is not a valid name: use 1 to 63 lower-case letters, digits and underscores`, EXIT_USAGE);
  }
  if (roleName === undefined && rolePassword !== undefined) return fail('--role-password goes with --create-role NAME', EXIT_USAGE);
  const [{ withDatabase }, { checkConnection }, { migrate }, { createConsumerRole }, { repairTableContract }] = await Promise.all([
    import('./db/database.js'),
    import('./db/check-database.js'),
    import('./db/migrate.js'),
    import('./db/create-role.js'),
    import('./db/table-contract.js'),
  ]);
  const { result, repaired, role } = await withDatabase(config.databaseUrl, async (db) => {
    await checkConnection(db, config.databaseUrl);
    const migrated = await migrate(db, config.publicationName);
    // The migration records say what was applied once; someone may have changed the table since.
    const repairs = await repairTableContract(db, config.publicationName);
    return {
      result: migrated,
      repaired: repairs,
      role: roleName === undefined ? undefined : await createConsumerRole(db, roleName, rolePassword),
    };
  });
  const applied = result.applied.length === 0 ? 'schema up to date' : `applied ${result.applied.join(', ')}`;
  const publication =
    result.publication === 'unchanged'
      ? ''
      : `, publication ${config.publicationName} ${result.publication === 'created' ? 'created' : 'publishes jobs again'}`;
  const repairs = repaired.length === 0 ? '' : `, repaired: ${repaired.join(', ')}`;
  process.stdout.write(`${applied}${publication}${repairs}\n`);
  if (result.publication === 'jobs-added' || repaired.length > 0) {
    process.stdout.write('changes made while the contract was broken may be missing or stale in Redis: run "budget-cdc resync"\n');
  }
  if (roleName !== undefined && role !== undefined) {
    const url = new URL(config.databaseUrl);
    url.username = roleName;
    url.password = role.passwordSet ? '***' : '';
    process.stdout.write(
      `role ${roleName} ${role.created ? 'created' : 'updated'}: LOGIN REPLICATION, SELECT on jobs${role.passwordSet ? ', password set' : ', no password (set one with --role-password)'}; ` +
        `run the consumer as ${redact(url.toString())}\n`,
    );
  }
  return EXIT_OK;
}

async function loadCommand(config: Config, args: string[]): Promise<number> {
  const [source, ...extra] = args;
  if (source === undefined || extra.length > 0) {
    return fail('load takes one argument: a CSV file, or - for standard input', EXIT_USAGE);
  }
  const { loadCsv } = await import('./load/load-csv.js');
  const { rows } = await loadCsv(config.databaseUrl, source, { progress: process.stderr.isTTY === true });
  process.stdout.write(`loaded ${rows} rows\n`);
  return EXIT_OK;
}

async function statusCommand(config: Config, options: ConfigOptions, json: boolean): Promise<number> {
  const { readStatus, formatStatus } = await import('./ops/status.js');
  const report = await readStatus(config, loadHealthConfig(options));
  process.stdout.write(json ? JSON.stringify(report) + '\n' : formatStatus(report) + '\n');
  return report.health.exitCode;
}

async function deadLettersCommand(config: Config, json: boolean, limitText: string): Promise<number> {
  const limit = /^[1-9]\d*$/.test(limitText) ? Number(limitText) : NaN;
  if (!Number.isSafeInteger(limit)) return fail(`--limit must be a positive integer, got "${limitText}"`, EXIT_USAGE);
  const [{ connectRedis }, { makeSilentLogger }, { RedisSink }] = await Promise.all([
    import('./sink/redis-client.js'),
    import('./logger.js'),
    import('./sink/redis-sink.js'),
  ]);
  const redis = await connectRedis(config, makeSilentLogger());
  try {
    const entries = await new RedisSink(redis, config.keyPrefix, config.slotName).readDeadLetters(limit);
    if (json) process.stdout.write(JSON.stringify(entries.map((e) => JSON.parse(e) as unknown)) + '\n');
    else process.stdout.write(entries.length === 0 ? 'no dead letters\n' : entries.join('\n') + '\n');
    return EXIT_OK;
  } finally {
    redis.disconnect();
  }
}

async function resyncCommand(config: Config): Promise<number> {
  const [{ requestResync }, { SingleBar: ProgressBar }] = await Promise.all([
    import('./consumer/request-resync.js'),
    import('cli-progress'),
  ]);
  const terminal = process.stderr.isTTY === true;
  let bar: SingleBar | undefined;
  let lastLine = 0;
  const outcome = await requestResync(config, ({ totalRows, rowsDone }) => {
    if (terminal) {
      if (bar === undefined) {
        bar = new ProgressBar({ format: 'resync [{bar}] {percentage}% | {value}/{total} rows | ETA {eta}s', stream: process.stderr });
        bar.start(totalRows, rowsDone);
      }
      bar.setTotal(totalRows);
      bar.update(rowsDone);
    } else if (Date.now() - lastLine > 5_000) {
      lastLine = Date.now();
      process.stderr.write(`resync: ${rowsDone}/${totalRows} rows\n`);
    }
  });
  bar?.stop();
  if (outcome.state === 'rebuilt') {
    process.stdout.write('resync finished: Redis holds the alive rows of the table, and the stream goes on from there\n');
  } else if (outcome.state === 'consumer-failing') {
    const { describeFailing } = await import('./ops/failure-tracker.js');
    const { consumer } = outcome;
    process.stdout.write(
      `the consumer ${consumer.process} is failing (${describeFailing(consumer.failing!)}): the resync is requested and runs ` +
        'as soon as one of its sessions gets past that error; fix the error first ("budget-cdc status" follows it)\n',
    );
    return EXIT_CONSUMER_FAILING;
  } else {
    process.stdout.write(
      `no consumer is running on slot ${config.slotName}: the checkpoint is removed, so the next "budget-cdc run" rebuilds Redis from the table before it streams\n`,
    );
  }
  return EXIT_OK;
}
