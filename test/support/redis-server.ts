import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { findFreePort } from '../../src/local/free-port.js';
import {
  launchRedis as launchRedisProcess,
  persistenceArgs,
  redisProcess,
  type RedisPersistence,
  type RedisProcess,
} from '../../src/local/redis-process.js';
import { watchChild, type SpawnedServer } from '../../src/local/server-process.js';
import { makeTemporaryDir, removeTemporaryDir } from './server-process.js';

export { makeTemporaryDir, removeTemporaryDir, type RedisPersistence };

const SECOND = 1000;
const READY_TIMEOUT_MS = 30 * SECOND;
const STOP_GRACE_MS = 10 * SECOND;

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
  let running: RedisProcess | undefined;

  const start = async () => {
    if (running) return;
    const fresh = dir === undefined;
    const startDir = dir ?? (await makeTemporaryDir('budget-cdc-redis-'));
    dir = lastDir = startDir;
    try {
      running = await launch(port, startDir, [...args, '--dir', startDir, ...(options.extraArgs ?? [])]);
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
      await stopping?.stop();
      if (dir === undefined) return;
      const removing = dir;
      dir = undefined;
      await removeTemporaryDir(removing);
    },
    async crash() {
      const crashing = running;
      running = undefined;
      await crashing?.crash();
    },
    start,
  };
}

/**
 * Runs `redis-server args` (a data node, or a Sentinel when args name its config file and `--sentinel`) in `dir` with
 * its log in `dir/redis.log`, and waits until it answers on `port`. On failure the process is gone and `dir` is left
 * to the caller.
 */
export async function launchRedis(port: number, dir: string, args: string[]): Promise<ChildProcess> {
  return (await launch(port, dir, args)).server.child;
}

/**
 * Ends `child` with `signal` (SIGTERM becomes SIGKILL after a deadline), then waits for the port, so that a
 * restart can bind it again.
 */
export async function killRedis(child: ChildProcess, port: number, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const redis = redisProcess(watchChild(child), port, STOP_GRACE_MS);
  await (signal === 'SIGKILL' ? redis.crash() : redis.stop());
}

async function launch(port: number, dir: string, args: string[]): Promise<RedisProcess<SpawnedServer>> {
  return launchRedisProcess({
    program: 'redis-server',
    args,
    port,
    cwd: dir,
    logPath: join(dir, 'redis.log'),
    detached: false,
    readyTimeoutMs: READY_TIMEOUT_MS,
    stopGraceMs: STOP_GRACE_MS,
  });
}
