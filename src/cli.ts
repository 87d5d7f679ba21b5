import { parseArgs } from 'node:util';
import { loadConfig, type Config, type ConfigOptions } from './config.js';
import { startConsumer } from './consumer/consumer.js';
import { requestResync } from './consumer/request-resync.js';
import { SingleBar } from 'cli-progress';
import { checkConnection } from './db/check-database.js';
import { withDatabase } from './db/database.js';
import { migrate } from './db/migrate.js';
import { ConfigError, ConnectionError, SetupError } from './errors.js';
import { loadCsv } from './load/load-csv.js';
import { makeLogger, makeSilentLogger } from './ops/logger.js';
import { formatStatus, readStatus } from './ops/status.js';
import { connectRedis } from './sink/redis-client.js';
import { RedisSink } from './sink/redis-sink.js';

const USAGE = `usage: budget-cdc <command> [options]

commands:
  migrate              create or upgrade the jobs table and the publication
  run                  apply pending migrations, follow the replication slot (created when missing) and
                       write budgets to Redis, until SIGINT or SIGTERM
  load <file.csv | ->  COPY a CSV (header job_id,days_online,budget[,created_at]) into jobs, in one transaction
  resync               rebuild Redis from the table (alive rows), done by the running consumer; shows progress
  status               the slot (exists, active, confirmed position, lag) and whether Redis answers
  dead-letters         rows that could not be processed, newest first

options (flag, then environment variable, then default):
  --database-url URL   PostgreSQL, DATABASE_URL; required
  --redis-url URL      Redis, REDIS_URL; default redis://127.0.0.1:6379
  --slot NAME          replication slot, BUDGET_CDC_SLOT; default budget_cdc
  --publication NAME   publication on jobs, BUDGET_CDC_PUBLICATION; default budget_cdc
  --key-prefix TEXT    prefix of the Redis keys, BUDGET_CDC_KEY_PREFIX; default job:
  --batch-size N       Redis commands per pipelined batch, BUDGET_CDC_BATCH_SIZE; default 1000
  --log-level LEVEL    fatal, error, warn, info, debug, trace, LOG_LEVEL; default info
  --json               status and dead-letters: print JSON
  --limit N            dead-letters: how many to print; default 100
  -h, --help           this text
`;

const COMMANDS = ['migrate', 'run', 'load', 'status', 'resync', 'dead-letters'];
const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

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
        slot: { type: 'string' },
        publication: { type: 'string' },
        'key-prefix': { type: 'string' },
        'batch-size': { type: 'string' },
        'log-level': { type: 'string' },
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
    slot: values.slot,
    publication: values.publication,
    keyPrefix: values['key-prefix'],
    batchSize: values['batch-size'],
    logLevel: values['log-level'],
  };
  try {
    const config = loadConfig(options);
    switch (command) {
      case 'migrate':
        return await migrateCommand(config);
      case 'run':
        return await runCommand(config);
      case 'load':
        return await loadCommand(config, args);
      case 'status':
        return await statusCommand(config, values.json);
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

function fail(message: string, code: number): number {
  process.stderr.write(`budget-cdc: ${message}\n`);
  return code;
}

async function migrateCommand(config: Config): Promise<number> {
  const result = await withDatabase(config.databaseUrl, async (db) => {
    await checkConnection(db, config.databaseUrl);
    return migrate(db, config.publicationName);
  });
  const applied = result.applied.length === 0 ? 'schema up to date' : `applied ${result.applied.join(', ')}`;
  const publication = result.publicationCreated ? `, publication ${config.publicationName} created` : '';
  process.stdout.write(`${applied}${publication}\n`);
  return EXIT_OK;
}

async function runCommand(config: Config): Promise<number> {
  const logger = makeLogger(config.logLevel);
  // Applying pending migrations first makes `run` the only command a new deployment needs; it is
  // idempotent and takes the migrator's lock, so several consumers starting at once are safe.
  const migrated = await withDatabase(config.databaseUrl, async (db) => {
    await checkConnection(db, config.databaseUrl);
    return migrate(db, config.publicationName);
  });
  if (migrated.applied.length > 0 || migrated.publicationCreated) {
    logger.info({ applied: migrated.applied, publicationCreated: migrated.publicationCreated }, 'schema migrated');
  }
  const consumer = await startConsumer(config, logger);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting without finishing the batch in flight');
      process.exit(EXIT_FAILURE);
    }
    logger.info({ signal }, 'stopping: writing and acknowledging the batch in flight');
    void consumer.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await consumer.done;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  logger.info('stopped');
  return EXIT_OK;
}

async function loadCommand(config: Config, args: string[]): Promise<number> {
  const [source, ...extra] = args;
  if (source === undefined || extra.length > 0) {
    return fail('load takes one argument: a CSV file, or - for standard input', EXIT_USAGE);
  }
  const { rows } = await loadCsv(config.databaseUrl, source, { progress: process.stderr.isTTY === true });
  process.stdout.write(`loaded ${rows} rows\n`);
  return EXIT_OK;
}

async function statusCommand(config: Config, json: boolean): Promise<number> {
  const report = await readStatus(config);
  process.stdout.write(json ? JSON.stringify(report) + '\n' : formatStatus(report) + '\n');
  return report.redis.reachable ? EXIT_OK : EXIT_FAILURE;
}

async function deadLettersCommand(config: Config, json: boolean, limitText: string): Promise<number> {
  const limit = /^[1-9]\d*$/.test(limitText) ? Number(limitText) : NaN;
  if (!Number.isSafeInteger(limit)) return fail(`--limit must be a positive integer, got "${limitText}"`, EXIT_USAGE);
  const redis = await connectRedis(config.redisUrl, makeSilentLogger());
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
  const terminal = process.stderr.isTTY === true;
  let bar: SingleBar | undefined;
  let lastLine = 0;
  const outcome = await requestResync(config, ({ totalRows, rowsDone }) => {
    if (terminal) {
      if (bar === undefined) {
        bar = new SingleBar({ format: 'resync [{bar}] {percentage}% | {value}/{total} rows | ETA {eta}s', stream: process.stderr });
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
  } else {
    process.stdout.write(
      `no consumer is running on slot ${config.slotName}: the checkpoint is removed, so the next "budget-cdc run" rebuilds Redis from the table before it streams\n`,
    );
  }
  return EXIT_OK;
}
