import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { chownTree, postgresOwner, spawnAs as spawnOptions, type ProcessOwner as Owner } from '../../src/local/process-owner.js';
import { waitFor } from './wait-for.js';
import { findFreePort } from '../../src/local/free-port.js';
import { spawnServer, trackTemporaryDir, untrackTemporaryDir } from './server-process.js';

const SECOND = 1000;
const DEFAULT_PG_BIN = '/usr/lib/postgresql/15/bin';
const READY_TIMEOUT_MS = 30 * SECOND;
const SHUTDOWN_TIMEOUT_MS = 15 * SECOND;
const LOG_TAIL_CHARS = 3000;
const SETTING_NAME = /^[a-z_][a-z0-9_.]*$/i;

/** Options of `startPostgres`. */
export interface PostgresServerOptions {
  /** The server's `timezone` setting; default: PostgreSQL's own (taken from the environment by initdb). */
  timezone?: string;
  /** More `-c name=value` settings, applied after the defaults so they can override them. */
  extraSettings?: Record<string, string>;
}

/** A throwaway PostgreSQL server on a free port of 127.0.0.1, user `postgres` without password. */
export interface PostgresServer {
  url: string;
  port: number;
  dataDir: string;
  /** Stops the server and removes its files. */
  stop(): Promise<void>;
  /** Stops the server and starts it again on the same port and data directory. */
  restart(): Promise<void>;
}

/** Where initdb and postgres live: env PG_BIN, else the Debian path of version 15, else `pg_config --bindir`. */
export function postgresBinDir(): string {
  const fromEnv = process.env['PG_BIN'];
  if (fromEnv) return fromEnv;
  if (existsSync(join(DEFAULT_PG_BIN, 'postgres'))) return DEFAULT_PG_BIN;
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  } catch {
    return DEFAULT_PG_BIN;
  }
}

/** Creates a fresh cluster in a temporary directory and starts PostgreSQL on it, ready for logical replication. */
export async function startPostgres(options: PostgresServerOptions = {}): Promise<PostgresServer> {
  const binDir = postgresBinDir();
  for (const program of ['initdb', 'postgres']) {
    if (!existsSync(join(binDir, program))) {
      throw new Error(`no ${program} in ${binDir}: install postgresql-15 or set PG_BIN to its bin directory`);
    }
  }
  const settings = serverSettings(options);
  const owner = postgresOwner();
  const rootDir = await mkdtemp(join(tmpdir(), 'budget-cdc-pg-'));
  trackTemporaryDir(rootDir);
  try {
    const dataDir = join(rootDir, 'data');
    const socketDir = join(rootDir, 'socket');
    const logPath = join(rootDir, 'postgres.log');
    await mkdir(dataDir, { mode: 0o700 });
    await mkdir(socketDir, { mode: 0o700 });
    // initdb and postgres refuse to run as root, so as root they run as the postgres user, who must own the files.
    if (owner) chownTree(rootDir, owner);

    await initdb(binDir, dataDir, rootDir, owner);
    const port = await findFreePort();
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const postgresArgs = ['-D', dataDir, '-p', String(port), '-k', socketDir, ...settings];
    const launch = () => launchPostgres(join(binDir, 'postgres'), postgresArgs, { rootDir, dataDir, logPath, url, owner });

    let child = await launch();
    let stopped = false;
    return {
      url,
      port,
      dataDir,
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopChild(child);
        await rm(rootDir, { recursive: true, force: true });
        untrackTemporaryDir(rootDir);
      },
      async restart() {
        if (stopped) throw new Error('restart() after stop(): this PostgreSQL server and its files are gone');
        await stopChild(child);
        child = await launch();
      },
    };
  } catch (error) {
    await rm(rootDir, { recursive: true, force: true });
    untrackTemporaryDir(rootDir);
    throw error;
  }
}

function serverSettings(options: PostgresServerOptions): string[] {
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    wal_level: 'logical',
    max_replication_slots: '40',
    max_wal_senders: '40',
    // Durability is pointless for a throwaway server and costs seconds per test file.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    shared_buffers: '128MB',
    max_connections: '200',
  };
  if (options.timezone !== undefined) settings['timezone'] = options.timezone;
  Object.assign(settings, options.extraSettings);
  return Object.entries(settings).flatMap(([name, value]) => {
    if (!SETTING_NAME.test(name)) throw new Error(`invalid PostgreSQL setting name: ${JSON.stringify(name)}`);
    return ['-c', `${name}=${value}`];
  });
}

async function initdb(binDir: string, dataDir: string, cwd: string, owner: Owner | undefined): Promise<void> {
  // The C locale exists everywhere; a locale taken from the environment may not be installed.
  const args = ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'];
  const child = spawn(join(binDir, 'initdb'), args, { ...spawnOptions(cwd, owner), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => resolve(exitCode));
  });
  if (code !== 0) throw new Error(`initdb exited with code ${code}:\n${output.slice(-LOG_TAIL_CHARS)}`);
}

interface LaunchOptions {
  rootDir: string;
  dataDir: string;
  logPath: string;
  url: string;
  owner: Owner | undefined;
}

async function launchPostgres(
  program: string,
  args: string[],
  { rootDir, dataDir, logPath, url, owner }: LaunchOptions,
): Promise<ChildProcess> {
  // Restarts append to the same log.
  const server = spawnServer(program, args, spawnOptions(rootDir, owner), logPath);
  const child = server.child;

  const outcome = await waitFor(
    async () => {
      if (server.exit()) return 'exited' as const;
      return (await servesDataDir(url, dataDir)) ? ('ready' as const) : undefined;
    },
    { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100, message: `PostgreSQL to accept connections at ${url}` },
  ).catch(async (error: unknown) => {
    await stopChild(child);
    throw new Error(`${(error as Error).message}\n--- ${logPath} ---\n${await logTail(logPath)}`, { cause: error });
  });
  if (outcome === 'exited') {
    const exit = server.exit();
    const how = exit && 'error' in exit ? exit.error.message : `code ${exit?.code}, signal ${exit?.signal}`;
    throw new Error(`PostgreSQL exited during startup (${how})\n--- ${logPath} ---\n${await logTail(logPath)}`);
  }
  return child;
}

/** True when the server at `url` is ours: another server could hold the port while ours fails to bind it. */
async function servesDataDir(url: string, dataDir: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: SECOND });
  // An error after connect (the server going away) must not become an uncaught exception.
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ data_directory: string }>('show data_directory');
    return rows[0]?.data_directory === dataDir;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Asks for a fast shutdown (SIGINT). Past the deadline it asks for an immediate one (SIGQUIT), which also
 * ends the server's child processes, and only then kills the postmaster: a SIGKILL alone leaves backends
 * holding shared memory, and the next start on the same data directory fails.
 */
async function stopChild(child: ChildProcess): Promise<void> {
  // A child that failed to spawn has no pid and will never emit 'exit'.
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGINT');
  const immediate = setTimeout(() => child.kill('SIGQUIT'), SHUTDOWN_TIMEOUT_MS);
  const kill = setTimeout(() => child.kill('SIGKILL'), SHUTDOWN_TIMEOUT_MS + IMMEDIATE_SHUTDOWN_TIMEOUT_MS);
  try {
    await exited;
  } finally {
    clearTimeout(immediate);
    clearTimeout(kill);
  }
}

const IMMEDIATE_SHUTDOWN_TIMEOUT_MS = 5_000;

async function logTail(logPath: string): Promise<string> {
  const text = await readFile(logPath, 'utf8').catch(() => '(no log)');
  return text.slice(-LOG_TAIL_CHARS);
}
