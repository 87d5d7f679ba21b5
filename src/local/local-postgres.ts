import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { SetupError } from '../errors.js';
import type { PostgresBinaries } from './postgres-binaries.js';
import { adoptPostgres, initCluster, launchPostgres, postgresAdminUrl, servesDataDir, type PostgresProcess } from './postgres-process.js';
import type { ProcessOwner } from './process-owner.js';
import { isAlive } from '../process-alive.js';
import type { ServerProcess } from './server-process.js';

/** The database the quickstart creates and points DATABASE_URL at. */
export const LOCAL_DATABASE_NAME = 'budget_cdc';

/** A PostgreSQL on 127.0.0.1, its data in the quickstart's folder, user postgres without password. */
export interface LocalPostgres {
  url: string;
  /** False when an earlier run's server was still running and was taken over. */
  started: boolean;
  readonly server: ServerProcess;
  /** Fast shutdown (SIGINT), which writes a checkpoint so the data is on disk; immediate (SIGQUIT) and SIGKILL past deadlines. */
  stop(): Promise<void>;
}

/** The major version of an existing cluster in `pgdata` (its PG_VERSION file), or undefined when there is none yet. */
export async function clusterVersion(pgdata: string): Promise<number | undefined> {
  const text = await readFile(join(pgdata, 'PG_VERSION'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : Number(text.trim());
}

/**
 * Starts PostgreSQL on `pgdata` (creating the cluster and the budget_cdc database the first time), listening on
 * 127.0.0.1:`port` only, with wal_level=logical. As root, it runs as the postgres user. A server that an earlier,
 * killed run left running on the same folder and port is taken over instead.
 */
export async function startLocalPostgres(options: {
  pgdata: string;
  logPath: string;
  port: number;
  binaries: PostgresBinaries;
  owner: ProcessOwner | undefined;
}): Promise<LocalPostgres> {
  const { pgdata, logPath, port, binaries, owner } = options;
  const cwd = join(pgdata, '..');
  const launchOptions = {
    program: binaries.postgres,
    pgdata,
    port,
    settings: {
      // TCP only: a socket path inside a deep project folder could pass the 107-byte limit.
      unix_socket_directories: '',
      max_replication_slots: '10',
      max_wal_senders: '10',
    },
    cwd,
    logPath,
    owner,
    // Ctrl-C reaches only budget-cdc, which stops the pipeline before the servers.
    detached: true,
  };

  const leftoverPid = await leftoverServerPid(pgdata, postgresAdminUrl(port));
  let postgres: PostgresProcess;
  if (leftoverPid !== undefined) {
    postgres = adoptPostgres(leftoverPid, launchOptions);
  } else {
    if ((await clusterVersion(pgdata)) === undefined) await initCluster({ initdb: binaries.initdb, pgdata, cwd, owner });
    postgres = await launchPostgres(launchOptions);
  }
  await ensureDatabase(postgres.adminUrl);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/${LOCAL_DATABASE_NAME}`,
    started: leftoverPid === undefined,
    get server() {
      return postgres.server;
    },
    stop: () => postgres.stop(),
  };
}

/** The pid of a server still running on this data folder (from a run that was killed) and answering on our port. */
async function leftoverServerPid(pgdata: string, adminUrl: string): Promise<number | undefined> {
  const pidText = await readFile(join(pgdata, 'postmaster.pid'), 'utf8').catch(() => undefined);
  const pid = Number(pidText?.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  if (await servesDataDir(adminUrl, pgdata)) return pid;
  throw new SetupError(
    `a PostgreSQL (pid ${pid}) still runs on ${pgdata} but not on the expected port: stop it (kill ${pid}) and start again`,
  );
}

async function ensureDatabase(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [LOCAL_DATABASE_NAME]);
    // The name is a constant of ours, safe to put in SQL.
    if (rowCount === 0) await client.query(`create database ${LOCAL_DATABASE_NAME}`);
  } finally {
    await client.end();
  }
}
