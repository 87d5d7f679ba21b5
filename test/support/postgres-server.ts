import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { findFreePort } from '../../src/local/free-port.js';
import { initCluster, launchPostgres } from '../../src/local/postgres-process.js';
import { chownTree, postgresOwner } from '../../src/local/process-owner.js';
import { makeTemporaryDir, removeTemporaryDir } from './server-process.js';

const SECOND = 1000;
const DEFAULT_PG_BIN = '/usr/lib/postgresql/15/bin';
const READY_TIMEOUT_MS = 30 * SECOND;
const FAST_SHUTDOWN_MS = 15 * SECOND;

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
  const owner = postgresOwner();
  const rootDir = await makeTemporaryDir('budget-cdc-pg-');
  try {
    const dataDir = join(rootDir, 'data');
    const socketDir = join(rootDir, 'socket');
    await mkdir(socketDir, { mode: 0o700 });
    // As root the server runs as the postgres user, who must be able to enter the directory and use the socket dir.
    if (owner) chownTree(rootDir, owner);
    await initCluster({ initdb: join(binDir, 'initdb'), pgdata: dataDir, cwd: rootDir, owner, noSync: true });
    const port = await findFreePort();
    const postgres = await launchPostgres({
      program: join(binDir, 'postgres'),
      pgdata: dataDir,
      port,
      settings: { unix_socket_directories: socketDir, ...serverSettings(options) },
      cwd: rootDir,
      logPath: join(rootDir, 'postgres.log'),
      owner,
      detached: false,
      readyTimeoutMs: READY_TIMEOUT_MS,
      fastShutdownMs: FAST_SHUTDOWN_MS,
    });
    let stopped = false;
    return {
      url: postgres.adminUrl,
      port,
      dataDir,
      async stop() {
        if (stopped) return;
        stopped = true;
        await postgres.stop();
        await removeTemporaryDir(rootDir);
      },
      async restart() {
        if (stopped) throw new Error('restart() after stop(): this PostgreSQL server and its files are gone; start another one');
        await postgres.restart();
      },
    };
  } catch (error) {
    await removeTemporaryDir(rootDir);
    throw error;
  }
}

function serverSettings(options: PostgresServerOptions): Record<string, string> {
  return {
    max_replication_slots: '40',
    max_wal_senders: '40',
    // Durability is pointless for a throwaway server and costs seconds per test file.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    shared_buffers: '128MB',
    max_connections: '200',
    ...(options.timezone === undefined ? {} : { timezone: options.timezone }),
    ...options.extraSettings,
  };
}
