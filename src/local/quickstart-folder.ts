import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SetupError } from '../errors.js';
import { isAlive } from '../process-alive.js';
import { findFreePort, isPortFree } from './free-port.js';

/** What the quickstart remembers in its folder between runs, so that the URLs stay the same. */
export interface QuickstartState {
  postgresPort?: number;
  redisPort?: number;
}

/** Where things live in the quickstart's folder. */
export function quickstartPaths(dataDir: string): {
  pgdata: string;
  postgresLog: string;
  redisDir: string;
  redisLog: string;
  state: string;
  lock: string;
} {
  return {
    pgdata: join(dataDir, 'postgres'),
    postgresLog: join(dataDir, 'postgres.log'),
    redisDir: join(dataDir, 'redis'),
    redisLog: join(dataDir, 'redis.log'),
    state: join(dataDir, 'quickstart.json'),
    lock: join(dataDir, 'start.pid'),
  };
}

export async function readQuickstartState(dataDir: string): Promise<QuickstartState> {
  const text = await readFile(quickstartPaths(dataDir).state, 'utf8').catch(() => undefined);
  if (text === undefined) return {};
  const value = JSON.parse(text) as QuickstartState;
  return { postgresPort: value.postgresPort, redisPort: value.redisPort };
}

export async function writeQuickstartState(dataDir: string, state: QuickstartState): Promise<void> {
  await writeFile(quickstartPaths(dataDir).state, JSON.stringify(state, null, 2) + '\n');
}

/** The pid of the `budget-cdc start` running on this folder, if one runs. */
export async function runningQuickstartPid(dataDir: string): Promise<number | undefined> {
  const pid = Number((await readFile(quickstartPaths(dataDir).lock, 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

/** Marks the folder as used by this process; throws SetupError when another `start` uses it. Returns the release function. */
export async function lockQuickstartFolder(dataDir: string): Promise<() => Promise<void>> {
  const other = await runningQuickstartPid(dataDir);
  if (other !== undefined && other !== process.pid) {
    throw new SetupError(
      `another "budget-cdc start" (pid ${other}) uses ${dataDir}: stop it first (Ctrl-C there, or kill ${other}), or choose another folder with --data-dir`,
    );
  }
  const lock = quickstartPaths(dataDir).lock;
  await writeFile(lock, `${process.pid}\n`);
  return async () => {
    if ((await runningQuickstartPid(dataDir)) === process.pid) await rm(lock, { force: true });
  };
}

/**
 * The port to use: the one remembered (when free, or held by our own server left from a killed run), else the
 * preferred one when free, else one the kernel picks.
 */
export async function choosePort(remembered: number | undefined, preferred: number, heldByLeftover: boolean): Promise<number> {
  if (remembered !== undefined && (heldByLeftover || (await isPortFree(remembered)))) return remembered;
  if (await isPortFree(preferred)) return preferred;
  return findFreePort();
}
