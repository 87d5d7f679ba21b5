import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '../../src/local/free-port.js';

// budget-cdc as a user runs it: `node bin/budget-cdc.js <args>` from the repository root, with only the
// settings a test gives it. Every process started here is killed by `killLiveCliProcesses` (afterAll).

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = 'bin/budget-cdc.js';
/** Settings the parent's environment might hold; the CLI gets only what each test gives it. */
const INHERITED_SETTING = /^(DATABASE_URL|REDIS_URL|LOG_LEVEL|PG_BIN|BUDGET_CDC_.*)$/;
const DEFAULT_TIMEOUT_MS = 60_000;

export interface CliOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  readonly child: ChildProcess;
  /** Output so far. */
  output(): { stdout: string; stderr: string };
  /** Settles once the process has exited and its output is read. */
  readonly closed: Promise<CliOutcome>;
  /** Waits for the exit; kills the process (SIGKILL) and fails when it has not exited within `timeoutMs`. */
  exit(timeoutMs?: number): Promise<CliOutcome>;
}

const liveProcesses = new Set<CliProcess>();

/** Starts `budget-cdc <args>` with `env` on top of the parent's environment less budget-cdc's settings. */
export function startCli(args: string[], env: Record<string, string | undefined>): CliProcess {
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!INHERITED_SETTING.test(name)) childEnv[name] = value;
  for (const [name, value] of Object.entries(env)) if (value !== undefined) childEnv[name] = value;
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  // Read both pipes all the time: a child blocks once a pipe it writes to is full.
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const closed = new Promise<CliOutcome>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  const cli: CliProcess = {
    child,
    output: () => ({ stdout, stderr }),
    closed,
    async exit(timeoutMs = DEFAULT_TIMEOUT_MS) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const outcome = await Promise.race([closed, deadline]).finally(() => clearTimeout(timer));
      if (outcome === 'timeout') {
        child.kill('SIGKILL');
        await closed.catch(() => undefined);
        throw new Error(`budget-cdc ${args.join(' ')} did not exit within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`);
      }
      return outcome;
    },
  };
  liveProcesses.add(cli);
  void closed.finally(() => liveProcesses.delete(cli)).catch(() => undefined);
  return cli;
}

/** Runs one command to its end. */
export function runCli(args: string[], env: Record<string, string | undefined>, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CliOutcome> {
  return startCli(args, env).exit(timeoutMs);
}

/** Stops a CLI process as an operator would (SIGTERM) and waits for its exit; does nothing for undefined. */
export async function stopCli(cli: CliProcess | undefined, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CliOutcome | undefined> {
  if (cli === undefined) return undefined;
  cli.child.kill('SIGTERM');
  return cli.exit(timeoutMs);
}

/** Kills (SIGKILL) every CLI process still running and waits for them: nothing may outlive a test file. */
export async function killLiveCliProcesses(): Promise<void> {
  const live = [...liveProcesses];
  for (const cli of live) cli.child.kill('SIGKILL');
  await Promise.all(live.map((cli) => cli.closed.catch(() => undefined)));
}

/** The lines of an output, without the final newline. */
export function linesOf(text: string): string[] {
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

/** A port that was free a moment ago, picked by the kernel. */
export const freePort = findFreePort;
