import { type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait-for.js';
import { findFreePort } from '../../src/local/free-port.js';
import { spawnServer, trackTemporaryDir, untrackTemporaryDir } from './server-process.js';

const SECOND = 1000;
const READY_TIMEOUT_MS = 30 * SECOND;
const SHUTDOWN_TIMEOUT_MS = 10 * SECOND;
const PROBE_TIMEOUT_MS = SECOND;
const LOG_TAIL_CHARS = 3000;

/** How a server of `startRedis` keeps its data; see `RedisServerOptions.persistence`. */
export type RedisPersistence = 'none' | 'rdb' | 'aof';

/** Options of `startRedis`. */
export interface RedisServerOptions {
  /** Port on 127.0.0.1; default: a free one picked by the kernel. */
  port?: number;
  /**
   * What a `start()` after `crash()` loads; default 'none'. 'none' and 'rdb' take no automatic snapshots (an 'rdb' test
   * calls `SAVE` itself, so that it knows what `dump.rdb` holds); 'aof' syncs an append-only file on every write.
   */
  persistence?: RedisPersistence;
  /** Appended to the command line, after the options this harness sets, so they can override them. */
  extraArgs?: string[];
}

/** A throwaway Redis server that can be stopped or crashed and started again on the same port. */
export interface RedisServer {
  url: string;
  port: number;
  /** The data directory: kept by `crash()`, removed by `stop()`; a `start()` after `stop()` makes a new one. */
  readonly dir: string;
  /** Stops the server, waits until its port is free, and removes its files. */
  stop(): Promise<void>;
  /** Kills the server with SIGKILL and waits until its port is free; keeps its files. Does nothing while it is down. */
  crash(): Promise<void>;
  /**
   * Starts the server again on the same port after `stop()` (empty) or `crash()` (from the same directory, so it
   * loads what it had written: `dump.rdb` or the append-only file); does nothing while it runs.
   */
  start(): Promise<void>;
}

/** Starts `redis-server` (from PATH) on 127.0.0.1 and waits until it answers. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await findFreePort());
  const args = ['--port', String(port), '--bind', '127.0.0.1', ...persistenceArgs(options.persistence ?? 'none')];
  // Undefined after stop(), so that the next start() begins empty; crash() keeps it for the next start() to load.
  let dir: string | undefined;
  let lastDir = '';
  let running: ChildProcess | undefined;

  const start = async () => {
    if (running) return;
    const fresh = dir === undefined;
    const startDir = dir ?? (await makeTemporaryDir('budget-cdc-redis-'));
    dir = lastDir = startDir;
    try {
      running = await launchRedis(port, startDir, [...args, '--dir', startDir, ...(options.extraArgs ?? [])]);
    } catch (error) {
      if (fresh) {
        dir = undefined;
        await removeTemporaryDir(startDir);
      }
      throw error;
    }
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get dir() {
      return lastDir;
    },
    async stop() {
      const stopping = running;
      running = undefined;
      if (stopping) await killRedis(stopping, port, 'SIGTERM');
      if (dir === undefined) return;
      const removing = dir;
      dir = undefined;
      await removeTemporaryDir(removing);
    },
    async crash() {
      const crashing = running;
      running = undefined;
      if (crashing) await killRedis(crashing, port, 'SIGKILL');
    },
    start,
  };
}

function persistenceArgs(persistence: RedisPersistence): string[] {
  switch (persistence) {
    // 'rdb' starts the same server as 'none': snapshots are the test's own SAVE, so that it knows what one holds.
    case 'none':
    case 'rdb':
      return ['--save', '', '--appendonly', 'no'];
    case 'aof':
      return ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always'];
  }
}

/** A new directory under the temp dir, removed when the test process exits unless `removeTemporaryDir` is called. */
export async function makeTemporaryDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  trackTemporaryDir(dir);
  return dir;
}

/** Removes a directory of `makeTemporaryDir` now, instead of when the test process exits. */
export async function removeTemporaryDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  untrackTemporaryDir(dir);
}

/**
 * Runs `redis-server args` (a data node, or a Sentinel when args name its config file and `--sentinel`) in `dir` with
 * its log in `dir/redis.log`, and waits until it answers on `port`. On failure the process is gone and `dir` is left
 * to the caller.
 */
export async function launchRedis(port: number, dir: string, args: string[]): Promise<ChildProcess> {
  const logPath = join(dir, 'redis.log');
  const server = spawnServer('redis-server', args, { cwd: dir }, logPath);
  const child = server.child;
  try {
    const outcome = await waitFor(
      async () => {
        if (server.exit()) return 'exited' as const;
        return (await answersAsProcess(port, child.pid)) ? ('ready' as const) : undefined;
      },
      { timeoutMs: READY_TIMEOUT_MS, message: `redis-server to answer on port ${port}` },
    );
    if (outcome === 'exited') {
      const exit = server.exit();
      const how =
        exit && 'error' in exit
          ? `${exit.error.message}; install redis-server (version 7) or set TEST_REDIS_URL`
          : `code ${exit?.code}, signal ${exit?.signal}`;
      throw new Error(`redis-server exited during startup on port ${port} (${how})\n${await logTail(logPath)}`);
    }
    return child;
  } catch (error) {
    // No waiting for the port here: when redis-server could not bind it, someone else holds it.
    await killChild(child, 'SIGTERM');
    throw error;
  }
}

/**
 * Ends `child` with `signal` (SIGTERM becomes SIGKILL after a deadline), then waits for the port, so that a
 * restart can bind it again.
 */
export async function killRedis(child: ChildProcess, port: number, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  await killChild(child, signal);
  await waitFor(() => isPortFree(port), { timeoutMs: SHUTDOWN_TIMEOUT_MS, message: `port ${port} to be free` });
}

async function killChild(child: ChildProcess, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  // A child that failed to spawn has no pid and will never emit 'exit'.
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), SHUTDOWN_TIMEOUT_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Asks for the server's process id with an inline `INFO server` and compares it with our child's: a PING alone
 * could be answered by another Redis that holds the port while ours fails to bind it.
 */
async function answersAsProcess(port: number, pid: number | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      // An error reply (such as -LOADING) means "not yet".
      if (reply.startsWith('-')) finish(false);
      const processId = /\r\nprocess_id:(\d+)\r\n/.exec(reply)?.[1];
      if (processId !== undefined) finish(Number(processId) === pid);
    });
  });
}

async function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function logTail(logPath: string): Promise<string> {
  const text = await readFile(logPath, 'utf8').catch(() => '(no log)');
  return `--- ${logPath} ---\n${text.slice(-LOG_TAIL_CHARS)}`;
}
