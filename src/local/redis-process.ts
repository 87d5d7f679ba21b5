import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { SetupError } from '../errors.js';
import { waitUntilPortFree } from './free-port.js';
import { describeExit, logTail, spawnServer, type ServerProcess, type SpawnedServer } from './server-process.js';

// One redis-server process on 127.0.0.1 (a data node or a Sentinel), for the quickstart and the test harness:
// start, stop, crash.

const SECOND = 1000;
const DEFAULT_READY_TIMEOUT_MS = 30 * SECOND;
const DEFAULT_STOP_GRACE_MS = 30 * SECOND;
const PORT_RELEASE_TIMEOUT_MS = 10 * SECOND;
const PROBE_TIMEOUT_MS = SECOND;
const POLL_INTERVAL_MS = 100;

/**
 * How a data node keeps its data. 'none' and 'rdb' take no automatic snapshots (whoever wants one calls SAVE, and
 * then knows what dump.rdb holds); 'aof' syncs an append-only file on every write, so that what Redis confirmed
 * survives a crash as well as a restart.
 */
export type RedisPersistence = 'none' | 'rdb' | 'aof';

/** The redis-server options of a persistence mode. */
export function persistenceArgs(persistence: RedisPersistence): string[] {
  switch (persistence) {
    case 'none':
    case 'rdb':
      return ['--save', '', '--appendonly', 'no'];
    case 'aof':
      return ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always'];
  }
}

/** Options of `launchRedis`. */
export interface RedisLaunchOptions {
  /** The redis-server program. */
  program: string;
  /** Its whole command line: options, or a config file and --sentinel. */
  args: string[];
  /** The port it listens on, to tell when it is ready. */
  port: number;
  cwd: string;
  logPath: string;
  /** See `SpawnServerOptions.detached`. */
  detached: boolean;
  /** How long it may take to answer; default 30 s. */
  readyTimeoutMs?: number;
  /** How long it may take to write its files and exit after SIGTERM before SIGKILL; default 30 s. */
  stopGraceMs?: number;
}

/** A redis-server we run (`SpawnedServer`) or adopted. */
export interface RedisProcess<Server extends ServerProcess = ServerProcess> {
  readonly server: Server;
  readonly port: number;
  /** SIGTERM (Redis writes its append-only file or snapshot and exits), SIGKILL past the grace; then waits for the port. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash: nothing more is written; then waits for the port, so that a restart can bind it. */
  crash(): Promise<void>;
}

/**
 * Starts redis-server and waits until it answers on `port` with its own process id and has loaded its data.
 * Throws SetupError with its log when it exits or does not answer in time; the process is gone then.
 */
export async function launchRedis(options: RedisLaunchOptions): Promise<RedisProcess<SpawnedServer>> {
  const { port, logPath } = options;
  const server = spawnServer(options.program, options.args, { cwd: options.cwd, logPath, detached: options.detached });
  const stopGraceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    const exit = server.exit();
    if (exit !== undefined) {
      const hint = 'error' in exit ? ': install Redis 6.2 or later, with redis-server on PATH' : '; its log says why';
      throw new SetupError(`redis-server exited while starting on port ${port} (${describeExit(exit)})${hint}:\n${await logTail(logPath)}`);
    }
    if ((await redisProcessId(port)) === server.pid) return redisProcess(server, port, stopGraceMs);
    await sleep(POLL_INTERVAL_MS);
  }
  // No waiting for the port here: when redis-server could not bind it, someone else holds it.
  await server.stop([{ signal: 'SIGTERM', graceMs: stopGraceMs }]);
  throw new SetupError(
    `redis-server did not answer on port ${port} within ${readyTimeoutMs / SECOND} s; its log says why:\n${await logTail(logPath)}`,
  );
}

/** A RedisProcess for a server started otherwise: adopted from an earlier run, or a child spawned elsewhere. */
export function redisProcess<Server extends ServerProcess>(
  server: Server,
  port: number,
  stopGraceMs = DEFAULT_STOP_GRACE_MS,
): RedisProcess<Server> {
  return {
    server,
    port,
    async stop() {
      await server.stop([{ signal: 'SIGTERM', graceMs: stopGraceMs }]);
      await waitUntilPortFree(port, PORT_RELEASE_TIMEOUT_MS);
    },
    async crash() {
      await server.stop([]);
      await waitUntilPortFree(port, PORT_RELEASE_TIMEOUT_MS);
    },
  };
}

/**
 * The process id of the Redis answering on `port` (inline `INFO`), or undefined while it loads its data or when
 * none answers: a PING alone could be answered by another Redis that holds the port while ours fails to bind it.
 */
export function redisProcessId(port: number): Promise<number | undefined> {
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
      // An error reply (such as -LOADING) means "not yet".
      if (reply.startsWith('-')) finish(undefined);
      // A bulk string: "$<length>\r\n<text>\r\n"; wait for all of it.
      const header = /^\$(\d+)\r\n/.exec(reply);
      if (header === null || Buffer.byteLength(reply) < header[0].length + Number(header[1])) return;
      const processId = /\r\nprocess_id:(\d+)\r\n/.exec(reply)?.[1];
      // A Sentinel has no persistence section, and so no loading field: it has nothing to load.
      const loading = /\r\nloading:(\d)\r\n/.exec(reply)?.[1];
      finish(processId !== undefined && loading !== '1' ? Number(processId) : undefined);
    });
  });
}
