import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { waitFor, type WaitForOptions } from '../test/support/wait-for.js';

const SECOND = 1000;
const OUTPUT_TAIL_CHARS = 4000;
const STOP_TIMEOUT_MS = 60 * SECOND;
const KIB = 1024;
/** Clock ticks per second of /proc/<pid>/stat: USER_HZ, 100 on Linux whatever the kernel's HZ. */
const USER_HZ = 100;

/** How a child ended, and when (performance.now()). */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
  at: number;
}

/** Options of `BenchChild`. */
export interface BenchChildOptions {
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** 'pipe' to write to the child's standard input, or an open file descriptor to read it from; default 'ignore'. */
  stdin?: 'ignore' | 'pipe' | number;
}

// Children still running, killed by killBenchChildren() when the bench stops early.
const live = new Set<BenchChild>();

/** A subprocess of the bench: timed from spawn to exit, with the tail of its output for error messages. */
export class BenchChild {
  readonly process: ChildProcess;
  /** performance.now() just before the spawn. */
  readonly spawnedAt: number;
  readonly exited: Promise<ChildExit>;
  exit: ChildExit | undefined;
  #output = '';

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    options: BenchChildOptions = {},
  ) {
    this.spawnedAt = performance.now();
    this.process = spawn(command, args, { env: { ...process.env, ...options.env }, stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'] });
    // Read continuously, so a chatty child never blocks on a full pipe.
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
    };
    this.process.stdout?.on('data', keep);
    this.process.stderr?.on('data', keep);
    live.add(this);
    this.exited = new Promise((resolve) => {
      const settle = (exit: ChildExit): void => {
        if (this.exit !== undefined) return;
        this.exit = exit;
        live.delete(this);
        resolve(exit);
      };
      this.process.once('error', (error) => settle({ code: null, signal: null, error, at: performance.now() }));
      this.process.once('exit', (code, signal) => settle({ code, signal, at: performance.now() }));
    });
  }

  /** Waits for the exit; returns the seconds from spawn to exit, or throws unless the exit code is 0. */
  async succeeded(): Promise<number> {
    const exit = await this.exited;
    if (exit.code !== 0) throw new Error(`${this.name} failed (${describeExit(exit)})${this.outputTail()}`);
    return (exit.at - this.spawnedAt) / SECOND;
  }

  /** SIGTERM, then waits for exit code 0; SIGKILL and an error after the deadline. */
  async stop(timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
    if (this.exit === undefined) this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), timeoutMs);
    let exit: ChildExit;
    try {
      exit = await this.exited;
    } finally {
      clearTimeout(timer);
    }
    if (exit.code !== 0) throw new Error(`${this.name} did not exit 0 on SIGTERM (${describeExit(exit)})${this.outputTail()}`);
  }

  /** The most memory the process has held (VmHWM of /proc/<pid>/status), in bytes; the process must be alive. */
  peakRssBytes(): number {
    const status = readFileSync(`/proc/${this.process.pid}/status`, 'utf8');
    const kib = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
    if (kib === undefined) throw new Error(`no VmHWM in /proc/${this.process.pid}/status of ${this.name}`);
    return Number(kib) * KIB;
  }

  /** CPU seconds (user + system, all threads) the process has used since it started; it must be alive. */
  cpuSeconds(): number {
    const stat = readFileSync(`/proc/${this.process.pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [utime, stime] = [Number(fields[11]), Number(fields[12])];
    if (!Number.isInteger(utime) || !Number.isInteger(stime))
      throw new Error(`no utime and stime in /proc/${this.process.pid}/stat of ${this.name}`);
    return (utime + stime) / USER_HZ;
  }

  /**
   * Polls `probe` until it returns a truthy value, and returns it: for a condition this child brings about.
   * Throws at once, with the child's output, when the child exits first.
   */
  async waitWhileRunning<T>(probe: () => Promise<T>, options: WaitForOptions): Promise<NonNullable<T>> {
    const outcome = await waitFor(async (): Promise<{ exited: ChildExit } | { value: NonNullable<T> } | undefined> => {
      const exit = this.exit;
      if (exit !== undefined) return { exited: exit };
      const value = await probe();
      return value ? { value } : undefined;
    }, options);
    if ('exited' in outcome) throw new Error(`${this.name} exited early (${describeExit(outcome.exited)})${this.outputTail()}`);
    return outcome.value;
  }

  outputTail(): string {
    return this.#output === '' ? '' : `\n--- last output of ${this.name} ---\n${this.#output.trimEnd()}`;
  }
}

/** SIGKILL to every child still running: for an interrupted bench. */
export function killBenchChildren(): void {
  for (const child of live) child.process.kill('SIGKILL');
}

function describeExit(exit: ChildExit): string {
  if (exit.error) return exit.error.message;
  return exit.signal === null ? `exit code ${exit.code}` : `signal ${exit.signal}`;
}
