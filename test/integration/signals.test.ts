import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPortFree } from '../../src/local/free-port.js';
import { freePort } from '../support/cli-process.js';
import { waitFor } from '../support/wait-for.js';

// `npm start` as a service manager or a shell script runs it: a signal sent to the npm process alone, not to
// its process group (which is what a terminal's Ctrl-C does). npm forwards SIGTERM and SIGINT to the script's
// process; the script must `exec` its command, else the `sh -c` in between swallows them and node, PostgreSQL
// and Redis run on, orphaned.

const SECOND = 1000;
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const START_TIMEOUT_MS = 120 * SECOND;
/** The promise of the README: everything is gone this long after the signal. */
const STOP_DEADLINE_MS = 10 * SECOND;
/** Settings the parent's environment might hold; `npm start` must start its own servers here. */
const INHERITED_SETTING = /^(DATABASE_URL|REDIS_URL|LOG_LEVEL|PG_BIN|BUDGET_CDC_.*)$/;

describe('npm start forwards signals', () => {
  let root: string;
  let dataDir: string;
  let httpPort: number;
  let postgresPort: number;
  let redisPort: number;
  const started = new Set<number>();

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'budget-cdc-signals-'));
    // As root, PostgreSQL runs as the postgres user, who must be able to enter the folder.
    await chmod(root, 0o755);
    dataDir = join(root, 'data');
    await mkdir(dataDir);
    httpPort = await freePort();
    postgresPort = await freePort();
    redisPort = await freePort();
    // Ports of our own instead of the preferred 15432 and 16379, which quickstart.test.ts, running at the
    // same time, takes: `start` uses the ports its folder remembers.
    await writeFile(join(dataDir, 'quickstart.json'), JSON.stringify({ postgresPort, redisPort }) + '\n');
  });

  afterAll(async () => {
    // A failed case may leave processes behind: nothing may outlive the file.
    for (const pid of started) if (await isRunning(pid)) killQuietly(pid);
    for (const pidFile of [join(dataDir, 'postgres', 'postmaster.pid'), join(dataDir, 'redis', 'redis.pid')]) {
      const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).split('\n')[0]);
      if (Number.isInteger(pid) && pid > 0) killQuietly(pid);
    }
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
  });

  function npmStart(): { npm: ChildProcess; output: () => string; closed: Promise<{ code: number | null; signal: string | null }> } {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(process.env)) if (!INHERITED_SETTING.test(name)) env[name] = value;
    env.BUDGET_CDC_HTTP_PORT = String(httpPort);
    const npm = spawn('npm', ['start', '--', '--data-dir', dataDir], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    npm.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    npm.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const closed = new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
      npm.once('error', reject);
      npm.once('close', (code, signal) => resolve({ code, signal }));
    });
    started.add(npm.pid!);
    return { npm, output: () => output, closed };
  }

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(
      `${signal} to the npm process alone stops node, PostgreSQL and Redis within 10 s`,
      async () => {
        const { npm, output, closed } = npmStart();
        await waitFor(
          () => {
            if (npm.exitCode !== null) throw new Error(`npm start exited with ${npm.exitCode}: ${output()}`);
            return output().includes('Insert a job');
          },
          { timeoutMs: START_TIMEOUT_MS, intervalMs: 200, message: 'npm start to print its banner' },
        ).catch((error: unknown) => {
          throw new Error(`${(error as Error).message}\noutput: ${output()}`, { cause: error });
        });
        const tree = await descendants(npm.pid!);
        for (const pid of tree) started.add(pid);
        const names = await Promise.all(tree.map(commandName));
        // node itself directly under npm (no sh in between), and both servers under node.
        expect(names).toContain('node');
        expect(names).toContain('redis-server');
        expect(names).toContain('postgres');
        expect(await isPortFree(postgresPort)).toBe(false);
        expect(await isPortFree(redisPort)).toBe(false);

        const signalledAt = Date.now();
        process.kill(npm.pid!, signal);
        await waitFor(async () => (await Promise.all([npm.pid!, ...tree].map(isRunning))).every((running) => !running), {
          timeoutMs: STOP_DEADLINE_MS,
          message: `every process of npm start to exit after ${signal}`,
        });
        const stoppedAfterMs = Date.now() - signalledAt;
        expect(stoppedAfterMs).toBeLessThan(STOP_DEADLINE_MS);
        // The pipeline stopped gracefully (exit 0), and npm reports its exit code.
        expect(await closed, output()).toEqual({ code: 0, signal: null });
        expect(output()).toContain(`"signal":"${signal}"`);
        expect(output()).toContain('stopping the local servers');
        expect(await isPortFree(postgresPort)).toBe(true);
        expect(await isPortFree(redisPort)).toBe(true);
        expect(await isPortFree(httpPort)).toBe(true);
      },
      START_TIMEOUT_MS + 30 * SECOND,
    );
  }
});

/** Every process below `pid`, from /proc (Linux): children's children included. */
async function descendants(pid: number): Promise<number[]> {
  const children: number[] = [];
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => []);
  for (const task of tasks) {
    const text = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
    for (const child of text.split(' ').filter((word) => word !== '')) children.push(Number(child));
  }
  const below = await Promise.all(children.map(descendants));
  return [...children, ...below.flat()];
}

async function commandName(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
}

/** False once the process is gone or a zombie: PID 1 of a container may never reap an orphan. */
async function isRunning(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
