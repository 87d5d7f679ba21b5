import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { SetupError } from '../errors.js';
import { launchRedis, persistenceArgs, redisProcess, redisProcessId, type RedisProcess } from './redis-process.js';
import { isAlive } from '../process-alive.js';
import { adoptServer, type ServerProcess } from './server-process.js';

/** SET … PXAT needs Redis 6.2. */
const MIN_VERSION: [number, number] = [6, 2];
const USUAL_BIN_DIRS = ['/opt/homebrew/bin', '/usr/local/bin', '/usr/bin', '/usr/sbin', '/snap/bin'];
export const REDIS_INSTALL_HINT =
  'install Redis 6.2 or later (Debian/Ubuntu: sudo apt-get install redis-server; Fedora: sudo dnf install redis; macOS: brew install redis), or set REDIS_URL to a running Redis';

/** A Redis on 127.0.0.1 whose data (an append-only file) stays in the quickstart's folder. */
export interface LocalRedis {
  url: string;
  /** False when an earlier run's server was still running and was taken over. */
  started: boolean;
  readonly server: ServerProcess;
  /** SIGTERM: Redis writes the append-only file out and exits; SIGKILL past a deadline. */
  stop(): Promise<void>;
}

/** Finds redis-server on PATH or in the usual places, version 6.2 or later; throws SetupError saying what to install. */
export function findRedisServer(searchPath: string): string {
  const dirs = [...searchPath.split(delimiter).filter((dir) => dir !== ''), ...USUAL_BIN_DIRS];
  for (const dir of dirs) {
    const program = join(dir, 'redis-server');
    if (!existsSync(program)) continue;
    let text: string;
    try {
      text = execFileSync(program, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    } catch {
      continue;
    }
    // "Redis server v=7.0.15 sha=…"
    const [major, minor] = (/v=(\d+)\.(\d+)/.exec(text)?.slice(1) ?? []).map(Number);
    if (major === undefined || minor === undefined) continue;
    if (major > MIN_VERSION[0] || (major === MIN_VERSION[0] && minor >= MIN_VERSION[1])) return program;
    throw new SetupError(`${program} is Redis ${major}.${minor}, and budget-cdc needs 6.2 or later (SET … PXAT): ${REDIS_INSTALL_HINT}`);
  }
  throw new SetupError(`redis-server not found (looked on PATH and in ${USUAL_BIN_DIRS.join(', ')}): ${REDIS_INSTALL_HINT}`);
}

/**
 * Starts redis-server on 127.0.0.1:`port` with its files in `dir`: an append-only file synced on every write, so
 * that what Redis confirmed survives a crash as well as a restart. A server an earlier, killed run left on the same
 * folder and port is taken over.
 */
export async function startLocalRedis(options: { program: string; dir: string; logPath: string; port: number }): Promise<LocalRedis> {
  const { program, dir, logPath, port } = options;
  await mkdir(dir, { recursive: true });
  const pidFile = join(dir, 'redis.pid');
  const leftover = await leftoverServer(pidFile, port);
  const redis: RedisProcess =
    leftover ??
    (await launchRedis({
      program,
      args: ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--pidfile', pidFile, ...persistenceArgs('aof')],
      port,
      cwd: dir,
      logPath,
      // Ctrl-C reaches only budget-cdc, which stops the pipeline before the servers.
      detached: true,
    }));
  return { url: `redis://127.0.0.1:${port}`, started: leftover === undefined, server: redis.server, stop: () => redis.stop() };
}

async function leftoverServer(pidFile: string, port: number): Promise<RedisProcess | undefined> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  if ((await redisProcessId(port)) === pid) return redisProcess(adoptServer(pid), port);
  return undefined; // a stale pid file whose number now belongs to another process
}
