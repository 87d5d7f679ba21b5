import { execFile } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { SetupError } from '../errors.js';
import { chownTree, spawnAs, type ProcessOwner } from './process-owner.js';
import { adoptServer, describeExit, logTail, spawnServer, type ServerProcess, type StopStep } from './server-process.js';

// One PostgreSQL process on 127.0.0.1, user postgres without password, for the quickstart and the test harness:
// initdb, start, stop, restart.

const SECOND = 1000;
const DEFAULT_READY_TIMEOUT_MS = 60 * SECOND;
const DEFAULT_FAST_SHUTDOWN_MS = 30 * SECOND;
// An immediate shutdown only tells the backends to quit, which takes no time unless the machine is stuck.
const IMMEDIATE_SHUTDOWN_MS = 5 * SECOND;
const POLL_INTERVAL_MS = 100;
const SETTING_NAME = /^[a-z_][a-z0-9_.]*$/i;
const execFileAsync = promisify(execFile);

/** Options of `initCluster`. */
export interface InitClusterOptions {
  initdb: string;
  pgdata: string;
  /** The folder initdb runs in; `owner` must be able to enter it. */
  cwd: string;
  /** The user the cluster belongs to, when not us (as root: postgres). */
  owner: ProcessOwner | undefined;
  /** initdb --no-sync, for a throwaway cluster whose files need not reach the disk; default false. */
  noSync?: boolean;
}

/** Creates a cluster in `pgdata` (created with mode 700 when missing): superuser postgres, trust, UTF8, C locale. */
export async function initCluster(options: InitClusterOptions): Promise<void> {
  const { initdb, pgdata, cwd, owner } = options;
  await mkdir(pgdata, { recursive: true, mode: 0o700 });
  await chmod(pgdata, 0o700);
  if (owner) {
    // initdb and postgres refuse to run as root, so as root they run as the postgres user, who must own the files.
    chownTree(pgdata, owner);
    await checkReachable(pgdata, owner);
  }
  // trust on 127.0.0.1 only: a local server, like the official image with POSTGRES_HOST_AUTH_METHOD=trust.
  // The C locale exists everywhere; a locale taken from the environment may not be installed.
  const args = ['-D', pgdata, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', ...(options.noSync ? ['--no-sync'] : [])];
  try {
    await execFileAsync(initdb, args, { ...spawnAs(cwd, owner), encoding: 'utf8' });
  } catch (error) {
    const output = error as { stdout?: string; stderr?: string };
    throw new SetupError(`initdb (${initdb}) failed on ${pgdata}: ${(output.stderr || output.stdout || String(error)).trim()}`, {
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
        'choose a data folder it can reach (budget-cdc start --data-dir /var/tmp/budget-cdc), or run as another user',
      { cause: error },
    );
  }
}

/** Options of `launchPostgres`. */
export interface PostgresLaunchOptions {
  /** The postgres program. */
  program: string;
  pgdata: string;
  port: number;
  /** `-c name=value` settings, over listen_addresses=127.0.0.1 and wal_level=logical. */
  settings: Record<string, string>;
  /** The folder the server runs in; `owner` must be able to enter it. */
  cwd: string;
  logPath: string;
  owner: ProcessOwner | undefined;
  /** See `SpawnServerOptions.detached`. */
  detached: boolean;
  /** How long it may take to accept connections; default 60 s. */
  readyTimeoutMs?: number;
  /** How long a fast shutdown may take before an immediate one is asked for; default 30 s. */
  fastShutdownMs?: number;
}

/** A PostgreSQL we run or adopted. */
export interface PostgresProcess {
  /** The running server process; another one after `restart()`. */
  readonly server: ServerProcess;
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  readonly adminUrl: string;
  /**
   * Fast shutdown (SIGINT: ends sessions, writes a checkpoint). Past the deadline an immediate one (SIGQUIT), which
   * also ends the server's child processes, and only then SIGKILL: a SIGKILL alone leaves backends holding shared
   * memory, and the next start on the same data folder fails.
   */
  stop(): Promise<void>;
  /** Stops the server and starts it again with the same options. */
  restart(): Promise<void>;
}

/** The admin URL of a server of ours on `port`. */
export function postgresAdminUrl(port: number): string {
  return `postgres://postgres@127.0.0.1:${port}/postgres`;
}

/** Starts postgres on an existing cluster and waits until it serves `pgdata` on the port; throws SetupError with its log. */
export async function launchPostgres(options: PostgresLaunchOptions): Promise<PostgresProcess> {
  return postgresProcess(await spawnUntilServing(options), options);
}

/** A server of `pgdata` left running by an earlier run, known by its pid; `restart()` starts it with `options`. */
export function adoptPostgres(pid: number, options: PostgresLaunchOptions): PostgresProcess {
  return postgresProcess(adoptServer(pid), options);
}

function postgresProcess(first: ServerProcess, options: PostgresLaunchOptions): PostgresProcess {
  const steps = stopSteps(options);
  let server = first;
  return {
    get server() {
      return server;
    },
    adminUrl: postgresAdminUrl(options.port),
    stop: () => server.stop(steps),
    async restart() {
      await server.stop(steps);
      server = await spawnUntilServing(options);
    },
  };
}

function stopSteps(options: PostgresLaunchOptions): StopStep[] {
  return [
    { signal: 'SIGINT', graceMs: options.fastShutdownMs ?? DEFAULT_FAST_SHUTDOWN_MS },
    { signal: 'SIGQUIT', graceMs: IMMEDIATE_SHUTDOWN_MS },
  ];
}

async function spawnUntilServing(options: PostgresLaunchOptions): Promise<ServerProcess> {
  const { pgdata, port, logPath } = options;
  const settings = { listen_addresses: '127.0.0.1', wal_level: 'logical', ...options.settings };
  const args = ['-D', pgdata, '-p', String(port), ...settingArgs(settings)];
  const server = spawnServer(options.program, args, { cwd: options.cwd, logPath, owner: options.owner, detached: options.detached });
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (server.exited()) {
      throw new SetupError(
        `PostgreSQL exited while starting (${describeExit(server.exit())}); its log says why:\n${await logTail(logPath)}`,
      );
    }
    if (await servesDataDir(postgresAdminUrl(port), pgdata)) return server;
    await sleep(POLL_INTERVAL_MS);
  }
  await server.stop(stopSteps(options));
  throw new SetupError(
    `PostgreSQL did not accept connections on 127.0.0.1:${port} within ${readyTimeoutMs / SECOND} s; its log says why:\n${await logTail(logPath)}`,
  );
}

/** `-c name=value` for each setting; a name holding '=' or a space would set something other than meant. */
function settingArgs(settings: Record<string, string>): string[] {
  return Object.entries(settings).flatMap(([name, value]) => {
    if (!SETTING_NAME.test(name)) throw new Error(`invalid PostgreSQL setting name: ${JSON.stringify(name)}`);
    return ['-c', `${name}=${value}`];
  });
}

/** True when the server at `url` is ours: another server could hold the port while ours fails to bind it. */
export async function servesDataDir(url: string, pgdata: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: SECOND });
  // An error after connect (the server going away) must not become an uncaught exception.
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
