import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '../../src/local/free-port.js';
import { waitFor } from './wait-for.js';

// The example distribution service (examples/distribute-budget-service/) run as a user runs it, `node
// server.mjs` in a child process, for the tests of issue 14.

const SECOND = 1000;
const SERVER_PATH = fileURLToPath(new URL('../../examples/distribute-budget-service/server.mjs', import.meta.url));

export interface Service {
  url: string;
  /** SIGTERM, then the exit once it happened. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<Service>();

/** Starts the service with `rule` on a free port; `env` DISTRIBUTE_FAULTS=1 turns fault injection on. */
export async function startService(rule: 'even' | 'weekday', env: Record<string, string> = {}): Promise<Service> {
  const port = await findFreePort();
  const child = spawn(process.execPath, [SERVER_PATH, '--port', String(port), '--rule', rule], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const url = `http://127.0.0.1:${port}`;
  const service: Service = {
    url,
    async stop() {
      running.delete(service);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const [code, signal] = await exited;
      return { code, signal };
    },
  };
  running.add(service);
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}: ${output}`);
      return (await fetch(`${url}/healthz`)).ok;
    },
    { timeoutMs: 10 * SECOND, message: `the example service (rule ${rule}) to answer on ${url}` },
  );
  return service;
}

/** Stops every service still running (those of a test that failed before stopping its own). */
export async function stopAllServices(): Promise<void> {
  await Promise.all([...running].map((service) => service.stop()));
}
