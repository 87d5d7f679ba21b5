import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadConfig, loadHealthConfig, loadQuickstartConfig, type ConfigOptions } from '../config.js';
import type { Logger } from '../logger.js';
import { runPipeline } from './run.js';
import { clusterVersion, startLocalPostgres, type LocalPostgres } from '../local/local-postgres.js';
import { findRedisServer, startLocalRedis, type LocalRedis } from '../local/local-redis.js';
import { findPostgresBinaries } from '../local/postgres-binaries.js';
import { postgresOwner } from '../local/process-owner.js';
import {
  choosePort,
  lockQuickstartFolder,
  quickstartPaths,
  readQuickstartState,
  writeQuickstartState,
} from '../local/quickstart-folder.js';
import { isAlive } from '../process-alive.js';

/** Ports tried first for the local servers: near the usual ones, but not them, which a system server may hold. */
export const PREFERRED_POSTGRES_PORT = 15432;
export const PREFERRED_REDIS_PORT = 16379;

/**
 * `budget-cdc start`: the pipeline on a fresh machine. Without DATABASE_URL it starts a local PostgreSQL
 * (wal_level=logical), without REDIS_URL a local Redis, both with their data in the data folder (kept between
 * runs), then runs the pipeline like `run` and prints how to use it. On SIGINT or SIGTERM it stops the pipeline,
 * then the servers. Returns the exit code.
 */
export async function runQuickstart(options: ConfigOptions, logger: Logger, stdout: NodeJS.WritableStream): Promise<number> {
  const settings = loadQuickstartConfig(options);
  const health = loadHealthConfig(options);
  const dataDir = resolve(settings.dataDir);
  const paths = quickstartPaths(dataDir);
  // Checked before anything starts, so that a missing Redis is said at once.
  const redisProgram = settings.redisUrl === undefined ? findRedisServer(settings.searchPath) : undefined;
  const binaries =
    settings.databaseUrl === undefined
      ? findPostgresBinaries({
          binDir: settings.postgresBinDir,
          searchPath: settings.searchPath,
          majorVersion: await clusterVersion(paths.pgdata),
        })
      : undefined;
  const owner = binaries === undefined ? undefined : postgresOwner();

  await mkdir(dataDir, { recursive: true });
  // As root, PostgreSQL runs as the postgres user, who must be able to enter the folder.
  if (owner !== undefined) await chmod(dataDir, 0o755);
  const unlock = await lockQuickstartFolder(dataDir);

  // A signal while the servers start must not leave them running: note it, and stop once started.
  let stopRequested = false;
  const onEarlySignal = (): void => {
    stopRequested = true;
  };
  process.on('SIGINT', onEarlySignal);
  process.on('SIGTERM', onEarlySignal);
  let postgres: LocalPostgres | undefined;
  let redis: LocalRedis | undefined;
  try {
    const state = await readQuickstartState(dataDir);
    if (binaries !== undefined) {
      const port = await choosePort(state.postgresPort, PREFERRED_POSTGRES_PORT, await pidFileAlive(join(paths.pgdata, 'postmaster.pid')));
      logger.info({ binDir: binaries.binDir, version: binaries.majorVersion, port, dataDir: paths.pgdata }, 'starting PostgreSQL');
      postgres = await startLocalPostgres({ pgdata: paths.pgdata, logPath: paths.postgresLog, port, binaries, owner });
      state.postgresPort = port;
    }
    if (redisProgram !== undefined && !stopRequested) {
      const port = await choosePort(state.redisPort, PREFERRED_REDIS_PORT, await pidFileAlive(join(paths.redisDir, 'redis.pid')));
      logger.info({ program: redisProgram, port, dataDir: paths.redisDir }, 'starting Redis');
      redis = await startLocalRedis({ program: redisProgram, dir: paths.redisDir, logPath: paths.redisLog, port });
      state.redisPort = port;
    }
    await writeQuickstartState(dataDir, state);
    process.off('SIGINT', onEarlySignal);
    process.off('SIGTERM', onEarlySignal);
    if (stopRequested) return 0;

    const config = loadConfig({
      ...options,
      databaseUrl: postgres?.url ?? settings.databaseUrl,
      redisUrl: redis?.url ?? settings.redisUrl,
    });
    return await runPipeline(config, health, logger, {
      onStarted: (endpointUrl) =>
        stdout.write(
          banner({ databaseUrl: config.databaseUrl, redisUrl: config.redisUrl, keyPrefix: config.keyPrefix, endpointUrl, dataDir }),
        ),
      beforeForcedExit: () => {
        // They stop cleanly by themselves, after we are gone.
        postgres?.server.signal('SIGINT');
        redis?.server.signal('SIGTERM');
      },
    });
  } finally {
    process.off('SIGINT', onEarlySignal);
    process.off('SIGTERM', onEarlySignal);
    const stopping = [postgres?.stop(), redis?.stop()];
    if (postgres !== undefined || redis !== undefined) logger.info('stopping the local servers');
    await Promise.all(stopping);
    await unlock();
  }
}

async function pidFileAlive(path: string): Promise<boolean> {
  const pid = Number((await readFile(path, 'utf8').catch(() => '')).split('\n')[0]?.trim());
  return Number.isInteger(pid) && pid > 0 && isAlive(pid);
}

function banner(info: {
  databaseUrl: string;
  redisUrl: string;
  keyPrefix: string;
  endpointUrl: string | undefined;
  dataDir: string;
}): string {
  const redis = new URL(info.redisUrl);
  const redisCli = `redis-cli -h ${redis.hostname} -p ${redis.port || '6379'}`;
  const key = `${info.keyPrefix}J-1`;
  return [
    '',
    `budget-cdc is running. Ctrl-C stops it; the local servers keep their data in ${info.dataDir}.`,
    '',
    `  PostgreSQL  ${info.databaseUrl}`,
    `  Redis       ${info.redisUrl}`,
    info.endpointUrl === undefined
      ? '  health      off'
      : `  health      ${info.endpointUrl}/readyz    metrics ${info.endpointUrl}/metrics`,
    '',
    'Insert a job, then read its key:',
    `  psql ${info.databaseUrl} -c "insert into jobs (job_id, days_online, budget) values ('J-1', 3, 100.00)"`,
    `  ${redisCli} get ${key}`,
    `  ${redisCli} pexpiretime ${key}`,
    '',
    'In another terminal, "npm run demo" loads 100 000 generated jobs. The other commands take the URLs from the environment:',
    `  export DATABASE_URL=${info.databaseUrl} REDIS_URL=${info.redisUrl}`,
    '  npx budget-cdc status',
    '',
  ].join('\n');
}
