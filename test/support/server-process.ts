import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAttachedServers, spawnServer as spawnLocalServer, type ServerExit } from '../../src/local/server-process.js';

// The test harness's side of src/local's launcher: servers it spawns are attached to the test process (killed
// when it exits, even when a test forgot to stop them), and their temp dirs are removed then too.

export type { ServerExit };

/** A server process the harness spawned. */
export interface ServerProcess {
  child: ChildProcess;
  /** How the process ended, or undefined while it runs. */
  exit(): ServerExit | undefined;
}

const temporaryDirs = new Set<string>();
process.once('exit', () => {
  // Killed first, so that no server writes into a directory being removed.
  killAttachedServers();
  for (const dir of temporaryDirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // A killed server may still be writing; a leftover directory in the temp dir is harmless.
    }
  }
});

/** Spawns `program` in `options.cwd` (as `options.uid`/`gid` when given) with stdout and stderr appended to `logPath`. */
export function spawnServer(program: string, args: string[], options: SpawnOptions, logPath: string): ServerProcess {
  if (typeof options.cwd !== 'string') throw new Error(`spawnServer(${program}) needs options.cwd as a path string`);
  const owner = options.uid !== undefined && options.gid !== undefined ? { uid: options.uid, gid: options.gid } : undefined;
  const server = spawnLocalServer(program, args, { cwd: options.cwd, logPath, owner, detached: false });
  return { child: server.child, exit: () => server.exit() };
}

/** Removes `dir` when the test process exits, unless untrackTemporaryDir is called first. */
export function trackTemporaryDir(dir: string): void {
  temporaryDirs.add(dir);
}

export function untrackTemporaryDir(dir: string): void {
  temporaryDirs.delete(dir);
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
