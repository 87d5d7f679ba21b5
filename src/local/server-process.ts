import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnAs, type ProcessOwner } from './process-owner.js';

const POLL_INTERVAL_MS = 100;
const LOG_TAIL_CHARS = 2000;

/** A local server process: started by us, or adopted from an earlier run that was killed before it could stop it. */
export interface ServerProcess {
  readonly pid: number;
  /** Asks the server to stop with `signal`, then SIGKILL after `timeoutMs`; resolves once it is gone. */
  stop(signal: NodeJS.Signals, timeoutMs: number): Promise<void>;
  /** Sends `signal` without waiting (for a forced exit). */
  signal(signal: NodeJS.Signals): void;
  /** True once the process has exited. */
  exited(): boolean;
}

/**
 * Starts a server in a process group of its own, so that Ctrl-C in the terminal reaches only budget-cdc, which
 * then stops the pipeline first and the servers after it. Output goes to `logPath`.
 */
export function spawnServer(
  program: string,
  args: string[],
  options: { cwd: string; logPath: string; owner?: ProcessOwner | undefined },
): {
  server: ServerProcess;
  child: ChildProcess;
} {
  // The parent opens the log, so the server's user needs no write access to it, and restarts append to it.
  const logFd = openSync(options.logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(program, args, { ...spawnAs(options.cwd, options.owner), detached: true, stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  let gone = false;
  child.once('exit', () => (gone = true));
  child.once('error', () => (gone = true));
  const server: ServerProcess = {
    get pid() {
      return child.pid ?? -1;
    },
    exited: () => gone,
    signal: (signal) => void (gone || child.kill(signal)),
    stop: async (signal, timeoutMs) => {
      if (gone) return;
      child.kill(signal);
      const deadline = Date.now() + timeoutMs;
      while (!gone && Date.now() < deadline) await sleep(POLL_INTERVAL_MS);
      if (!gone) child.kill('SIGKILL');
      while (!gone) await sleep(POLL_INTERVAL_MS);
    },
  };
  return { server, child };
}

/** A server started by an earlier run, known only by its pid. */
export function adoptServer(pid: number): ServerProcess {
  const alive = (): boolean => isAlive(pid);
  return {
    pid,
    exited: () => !alive(),
    signal: (signal) => void sendSignal(pid, signal),
    stop: async (signal, timeoutMs) => {
      if (!alive()) return;
      sendSignal(pid, signal);
      const deadline = Date.now() + timeoutMs;
      while (alive() && Date.now() < deadline) await sleep(POLL_INTERVAL_MS);
      if (alive()) sendSignal(pid, 'SIGKILL');
      while (alive()) await sleep(POLL_INTERVAL_MS);
    },
  };
}

/** True when a process with this pid exists (ours or not). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sendSignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Gone already.
  }
}

/** The end of a server's log, for an error message. */
export async function logTail(logPath: string): Promise<string> {
  const text = await readFile(logPath, 'utf8').catch(() => '(no log)');
  return `--- ${logPath} (end) ---\n${text.slice(-LOG_TAIL_CHARS)}`;
}
