import { fileURLToPath } from 'node:url';
import { findFreePort } from '../src/local/free-port.js';
import { BenchChild } from './bench-child.js';
import { cpuProfileFlags } from './consumer-process.js';

const SECOND = 1000;
const READY_TIMEOUT_MS = 30 * SECOND;
const READY_POLL_MS = 50;
/** The example distribution service of the repository, as a team would run it. */
const SERVICE_SCRIPT = fileURLToPath(new URL('../examples/distribute-budget-service/server.mjs', import.meta.url));

/** The example distribution service running as a child of the bench, and the URL the consumer asks. */
export interface DistributionServiceUnderTest {
  child: BenchChild;
  url: string;
}

/**
 * Starts `node examples/distribute-budget-service/server.mjs --rule <rule>` on a free loopback port and waits
 * until GET /healthz answers; runs `fn` with it, and stops it (SIGTERM, exit 0) afterwards.
 */
export async function withDistributionService<T>(rule: string, fn: (service: DistributionServiceUnderTest) => Promise<T>): Promise<T> {
  const port = await findFreePort();
  const child = new BenchChild(`distribution service (${rule})`, process.execPath, [
    ...cpuProfileFlags(),
    SERVICE_SCRIPT,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--rule',
    rule,
  ]);
  const url = `http://127.0.0.1:${port}/`;
  try {
    await child.waitWhileRunning(
      async () => {
        try {
          return (await fetch(new URL('/healthz', url))).ok;
        } catch {
          return false; // not listening yet
        }
      },
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: READY_POLL_MS, message: `${child.name} to answer GET /healthz on ${url}` },
    );
    const result = await fn({ child, url });
    await child.stop();
    return result;
  } finally {
    if (child.exit === undefined) {
      child.process.kill('SIGKILL');
      await child.exited;
    }
  }
}
