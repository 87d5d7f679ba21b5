import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';

// The servers the harness starts (PostgreSQL, Redis): spawned with their output in a log file, and killed
// with their temp dirs removed when the test process exits, even when a test forgot to stop them.

export type ServerExit = { code: number | null; signal: NodeJS.Signals | null } | { error: Error };

export interface ServerProcess {
  child: ChildProcess;
  /** How the process ended, or undefined while it runs. */
  exit(): ServerExit | undefined;
}

const liveChildren = new Set<ChildProcess>();
const temporaryDirs = new Set<string>();
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
  for (const dir of temporaryDirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // A killed server may still be writing; a leftover directory in the temp dir is harmless.
    }
  }
});

/** Spawns `program` with stdout and stderr appended to `logPath`, opened by this process. */
export function spawnServer(program: string, args: string[], options: SpawnOptions, logPath: string): ServerProcess {
  // The parent opens the log, so a server running as another user needs no write access to it.
  const logFd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(program, args, { ...options, stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  liveChildren.add(child);
  let exit: ServerExit | undefined;
  child.once('error', (error) => {
    exit = { error };
    liveChildren.delete(child);
  });
  child.once('exit', (code, signal) => {
    exit = { code, signal };
    liveChildren.delete(child);
  });
  return { child, exit: () => exit };
}

/** Removes `dir` when the test process exits, unless untrackTemporaryDir is called first. */
export function trackTemporaryDir(dir: string): void {
  temporaryDirs.add(dir);
}

export function untrackTemporaryDir(dir: string): void {
  temporaryDirs.delete(dir);
}
