import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { SetupError } from '../errors.js';
import type { PostgresBinaries } from './postgres-binaries.js';
import { chownTree, spawnAs, type ProcessOwner } from './process-owner.js';
import { adoptServer, isAlive, logTail, spawnServer, type ServerProcess } from './server-process.js';

const SECOND = 1000;
const READY_TIMEOUT_MS = 60 * SECOND;
const STOP_TIMEOUT_MS = 30 * SECOND;
/** The database the quickstart creates and points DATABASE_URL at. */
export const LOCAL_DATABASE_NAME = 'budget_cdc';
const execFileAsync = promisify(execFile);

/** A PostgreSQL on 127.0.0.1, its data in the quickstart's folder, user postgres without password. */
export interface LocalPostgres {
  url: string;
  /** False when an earlier run's server was still running and was taken over. */
  started: boolean;
  readonly server: ServerProcess;
  /** Fast shutdown (SIGINT): ends sessions, writes a checkpoint, so the data is on disk. */
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
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const url = `postgres://postgres@127.0.0.1:${port}/${LOCAL_DATABASE_NAME}`;
  const cwd = join(pgdata, '..');

  const leftover = await leftoverServer(pgdata, adminUrl);
  let server: ServerProcess;
  if (leftover !== undefined) {
    server = leftover;
  } else {
    if ((await clusterVersion(pgdata)) === undefined) await initCluster(binaries, pgdata, cwd, owner);
    const args = [
      '-D', pgdata, '-p', String(port),
      '-c', 'listen_addresses=127.0.0.1',
      // TCP only: a socket path inside a deep project folder could pass the 107-byte limit.
      '-c', 'unix_socket_directories=',
      '-c', 'wal_level=logical',
      '-c', 'max_replication_slots=10',
      '-c', 'max_wal_senders=10',
    ]; // prettier-ignore
    server = spawnServer(binaries.postgres, args, { cwd, logPath, owner }).server;
    await waitUntilServing(server, adminUrl, pgdata, logPath);
  }
  await ensureDatabase(adminUrl);
  return {
    url,
    started: leftover === undefined,
    server,
    stop: () => server.stop('SIGINT', STOP_TIMEOUT_MS),
  };
}

async function initCluster(binaries: PostgresBinaries, pgdata: string, cwd: string, owner: ProcessOwner | undefined): Promise<void> {
  await mkdir(pgdata, { recursive: true, mode: 0o700 });
  await chmod(pgdata, 0o700);
  if (owner) {
    chownTree(pgdata, owner);
    await checkReachable(pgdata, owner);
  }
  // trust on 127.0.0.1 only: a local development server, like the official image with POSTGRES_HOST_AUTH_METHOD=trust.
  // The C locale exists everywhere; a locale taken from the environment may not be installed.
  const args = ['-D', pgdata, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C'];
  try {
    await execFileAsync(binaries.initdb, args, { ...spawnAs(cwd, owner), encoding: 'utf8' });
  } catch (error) {
    const output = error as { stdout?: string; stderr?: string };
    throw new SetupError(`initdb (${binaries.initdb}) failed on ${pgdata}: ${(output.stderr || output.stdout || String(error)).trim()}`, {
      cause: error,
    });
  }
}

/** As root, the postgres user must be able to enter every folder above the data: a home folder of mode 700 stops it. */
async function checkReachable(pgdata: string, owner: ProcessOwner): Promise<void> {
  try {
    await execFileAsync('/bin/sh', ['-c', 'cd "$1"', 'sh', pgdata], { uid: owner.uid, gid: owner.gid });
  } catch (error) {
    throw new SetupError(
      `PostgreSQL runs as the postgres user (we are root), and that user cannot reach ${pgdata}: ` +
        'choose a data folder it can reach with --data-dir (e.g. /var/tmp/budget-cdc), or run as another user',
      { cause: error },
    );
  }
}

/** A server still running on this data folder (from a run that was killed) and answering on our port. */
async function leftoverServer(pgdata: string, adminUrl: string): Promise<ServerProcess | undefined> {
  const pidText = await readFile(join(pgdata, 'postmaster.pid'), 'utf8').catch(() => undefined);
  const pid = Number(pidText?.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  if (await servesDataDir(adminUrl, pgdata)) return adoptServer(pid);
  throw new SetupError(
    `a PostgreSQL (pid ${pid}) still runs on ${pgdata} but not on the expected port: stop it (kill ${pid}) and start again`,
  );
}

async function waitUntilServing(server: ServerProcess, adminUrl: string, pgdata: string, logPath: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.exited()) throw new SetupError(`PostgreSQL exited while starting; its log says:\n${await logTail(logPath)}`);
    if (await servesDataDir(adminUrl, pgdata)) return;
    await sleep(100);
  }
  await server.stop('SIGINT', STOP_TIMEOUT_MS);
  throw new SetupError(
    `PostgreSQL did not accept connections within ${READY_TIMEOUT_MS / SECOND} s; its log says:\n${await logTail(logPath)}`,
  );
}

/** True when the server at `url` is ours: another server could hold the port while ours fails to bind it. */
async function servesDataDir(url: string, pgdata: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: SECOND });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ data_directory: string }>('show data_directory');
    return rows[0]?.data_directory === pgdata;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
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
