import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SetupError } from '../errors.js';
import { adoptServer, isAlive, logTail, spawnServer, type ServerProcess } from './server-process.js';

const SECOND = 1000;
const READY_TIMEOUT_MS = 30 * SECOND;
const STOP_TIMEOUT_MS = 30 * SECOND;
const PROBE_TIMEOUT_MS = SECOND;
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
  /** SIGTERM: Redis writes the append-only file out and exits. */
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
  const url = `redis://127.0.0.1:${port}`;
  const leftover = await leftoverServer(pidFile, port);
  let server: ServerProcess;
  if (leftover !== undefined) {
    server = leftover;
  } else {
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--pidfile', pidFile,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '',
    ]; // prettier-ignore
    server = spawnServer(program, args, { cwd: dir, logPath }).server;
    await waitUntilServing(server, port, logPath);
  }
  return { url, started: leftover === undefined, server, stop: () => server.stop('SIGTERM', STOP_TIMEOUT_MS) };
}

async function leftoverServer(pidFile: string, port: number): Promise<ServerProcess | undefined> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  if ((await redisProcessId(port)) === pid) return adoptServer(pid);
  return undefined; // a stale pid file whose number now belongs to another process
}

async function waitUntilServing(server: ServerProcess, port: number, logPath: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.exited()) throw new SetupError(`redis-server exited while starting; its log says:\n${await logTail(logPath)}`);
    if ((await redisProcessId(port)) === server.pid) return;
    await sleep(100);
  }
  await server.stop('SIGTERM', STOP_TIMEOUT_MS);
  throw new SetupError(`redis-server did not answer within ${READY_TIMEOUT_MS / SECOND} s; its log says:\n${await logTail(logPath)}`);
}

/**
 * The process id of the Redis answering on `port` (inline `INFO`), or undefined while it loads its data or when
 * none answers: a PING alone could be answered by another Redis that holds the port while ours fails to bind it.
 */
function redisProcessId(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (pid: number | undefined): void => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(undefined));
    socket.once('error', () => finish(undefined));
    socket.once('connect', () => socket.write('INFO\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.startsWith('-')) finish(undefined);
      // A bulk string: "$<length>\r\n<text>\r\n"; wait for all of it.
      const header = /^\$(\d+)\r\n/.exec(reply);
      if (header === null || Buffer.byteLength(reply) < header[0].length + Number(header[1])) return;
      const processId = /\r\nprocess_id:(\d+)\r\n/.exec(reply)?.[1];
      const loading = /\r\nloading:(\d)\r\n/.exec(reply)?.[1];
      finish(processId !== undefined && loading === '0' ? Number(processId) : undefined);
    });
  });
}
