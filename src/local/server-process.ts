import { spawn, type ChildProcess } from 'node:child_process';
import { isAlive } from '../process-alive.js';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnAs, type ProcessOwner } from './process-owner.js';

const POLL_INTERVAL_MS = 100;
const LOG_TAIL_CHARS = 3000;

/** How a server process ended: its exit code or signal, or the error that kept it from starting. */
export type ServerExit = { code: number | null; signal: NodeJS.Signals | null } | { error: Error };

/** One step of a stop: send `signal`, then give the process `graceMs` to exit before the next step. */
export interface StopStep {
  signal: NodeJS.Signals;
  graceMs: number;
}

/** A local server process: started by us, or adopted from an earlier run that was killed before it could stop it. */
export interface ServerProcess {
  readonly pid: number;
  /** The child process when we spawned it; undefined for an adopted server. */
  readonly child: ChildProcess | undefined;
  /** Sends each step's signal in turn while the process lives, then SIGKILL; resolves once it is gone. No steps: SIGKILL at once. */
  stop(steps: readonly StopStep[]): Promise<void>;
  /** Sends `signal` without waiting (for a forced exit). */
  signal(signal: NodeJS.Signals): void;
  /** True once the process has exited. */
  exited(): boolean;
  /** How it ended, or undefined while it runs. An adopted server's exit code is not ours to know. */
  exit(): ServerExit | undefined;
}

/** A server process we spawned. */
export interface SpawnedServer extends ServerProcess {
  readonly child: ChildProcess;
}

/** Options of `spawnServer`. */
export interface SpawnServerOptions {
  /** The folder it runs in; a server running as `owner` must be able to enter it. */
  cwd: string;
  /** Where stdout and stderr go, appended. */
  logPath: string;
  /** The user it runs as, when not us (PostgreSQL as root). */
  owner?: ProcessOwner | undefined;
  /**
   * True: a process group of its own, so that Ctrl-C in the terminal reaches only us (the quickstart then stops
   * the pipeline first and the servers after it), and it outlives us when we are killed (a later run adopts it).
   * False: our process group, and SIGKILL when this process exits, so that a test run leaves nothing behind.
   */
  detached: boolean;
}

/** Children started with `detached: false`, killed when this process exits. */
const attachedChildren = new Set<ChildProcess>();

/** Starts `program args` with its output appended to `options.logPath`. */
export function spawnServer(program: string, args: string[], options: SpawnServerOptions): SpawnedServer {
  // The parent opens the log, so the server's user needs no write access to it, and restarts append to it.
  const logFd = openSync(options.logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(program, args, { ...spawnAs(options.cwd, options.owner), detached: options.detached, stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  if (!options.detached) attach(child);
  return watchChild(child);
}

/** A ServerProcess for a child spawned elsewhere (which may have exited already). */
export function watchChild(child: ChildProcess): SpawnedServer {
  let exit: ServerExit | undefined =
    child.exitCode !== null || child.signalCode !== null ? { code: child.exitCode, signal: child.signalCode } : undefined;
  const exited = new Promise<void>((resolve) => {
    if (exit !== undefined) resolve();
    child.once('exit', (code, signal) => {
      exit ??= { code, signal };
      resolve();
    });
    child.on('error', (error) => {
      // Also emitted when a signal cannot be sent; only without a pid did the process never start.
      if (child.pid !== undefined) return;
      exit ??= { error };
      resolve();
    });
  });
  // A child that failed to spawn has no pid and never emits 'exit'.
  const gone = (): boolean => exit !== undefined || child.pid === undefined;
  const send = (signal: NodeJS.Signals): void => void (gone() || child.kill(signal));
  return {
    get pid() {
      return child.pid ?? -1;
    },
    child,
    exit: () => exit,
    exited: () => exit !== undefined,
    signal: send,
    stop: (steps) => stopInSteps(steps, { gone, send, waitGone: (ms) => within(exited, ms) }),
  };
}

/** A server started by an earlier run, known only by its pid. */
export function adoptServer(pid: number): ServerProcess {
  const gone = (): boolean => !isAlive(pid);
  const send = (signal: NodeJS.Signals): void => sendSignal(pid, signal);
  return {
    pid,
    child: undefined,
    exit: () => (gone() ? { code: null, signal: null } : undefined),
    exited: gone,
    signal: send,
    stop: (steps) => stopInSteps(steps, { gone, send, waitGone: (ms) => pollUntil(gone, ms) }),
  };
}

/** SIGKILL to every server started with `detached: false` that still runs; also done when this process exits. */
export function killAttachedServers(): void {
  for (const child of attachedChildren) child.kill('SIGKILL');
}

function attach(child: ChildProcess): void {
  if (attachedChildren.size === 0) process.once('exit', killAttachedServers);
  attachedChildren.add(child);
  const detach = (): void => {
    attachedChildren.delete(child);
    if (attachedChildren.size === 0) process.off('exit', killAttachedServers);
  };
  child.once('exit', detach);
  child.once('error', () => {
    if (child.pid === undefined) detach();
  });
}

interface Stoppable {
  gone(): boolean;
  send(signal: NodeJS.Signals): void;
  /** Resolves when the process is gone or after `timeoutMs`, whichever comes first. */
  waitGone(timeoutMs: number): Promise<void>;
}

async function stopInSteps(steps: readonly StopStep[], process: Stoppable): Promise<void> {
  for (const { signal, graceMs } of steps) {
    if (process.gone()) return;
    process.send(signal);
    await process.waitGone(graceMs);
  }
  if (process.gone()) return;
  process.send('SIGKILL');
  await process.waitGone(Infinity);
}

function within(promise: Promise<void>, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = Number.isFinite(timeoutMs) ? setTimeout(resolve, timeoutMs) : undefined;
    void promise.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function pollUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await sleep(POLL_INTERVAL_MS);
}

function sendSignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Gone already.
  }
}

/** "code 1", "signal SIGKILL" or the spawn error, for a message. */
export function describeExit(exit: ServerExit | undefined): string {
  if (exit === undefined) return 'still running';
  if ('error' in exit) return exit.error.message;
  return exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/** The end of a server's log, for an error message. */
export async function logTail(logPath: string): Promise<string> {
  const text = await readFile(logPath, 'utf8').catch(() => '(no log)');
  return `--- ${logPath} (end) ---\n${text.slice(-LOG_TAIL_CHARS)}`;
}
