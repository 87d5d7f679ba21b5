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

/** Options of `startRedis`. */
export interface RedisServerOptions {
  /** Port on 127.0.0.1; default: a free one picked by the kernel. */
  port?: number;
}

/** A throwaway Redis server without persistence that can be stopped and started again on the same port. */
export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server, waits until its port is free, and removes its files. */
  stop(): Promise<void>;
  /** Starts the server again on the same port after `stop()`; does nothing while it runs. */
  start(): Promise<void>;
}

/** Starts `redis-server` (from PATH) on 127.0.0.1 and waits until it answers. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await findFreePort());
  let running: RunningRedis | undefined = await launchRedis(port);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      if (!running) return;
      const stopping = running;
      running = undefined;
      await stopRedis(stopping, port);
    },
    async start() {
      if (running) return;
      running = await launchRedis(port);
    },
  };
}

interface RunningRedis {
  child: ChildProcess;
  dir: string;
}

async function launchRedis(port: number): Promise<RunningRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'budget-cdc-redis-'));
  trackTemporaryDir(dir);
  const logPath = join(dir, 'redis.log');
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  const server = spawnServer('redis-server', args, { cwd: dir }, logPath);
  const child = server.child;

  const running = { child, dir };
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
    return running;
  } catch (error) {
    // No waiting for the port here: when redis-server could not bind it, someone else holds it.
    await killChild(child);
    await rm(dir, { recursive: true, force: true });
    untrackTemporaryDir(dir);
    throw error;
  }
}

/** SIGTERM, SIGKILL after the deadline, then waits for the port, so that `start()` can bind it again. */
async function stopRedis({ child, dir }: RunningRedis, port: number): Promise<void> {
  await killChild(child);
  await waitFor(() => isPortFree(port), { timeoutMs: SHUTDOWN_TIMEOUT_MS, message: `port ${port} to be free` });
  await rm(dir, { recursive: true, force: true });
  untrackTemporaryDir(dir);
}

async function killChild(child: ChildProcess): Promise<void> {
  // A child that failed to spawn has no pid and will never emit 'exit'.
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
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
