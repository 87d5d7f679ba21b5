import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { SetupError } from '../errors.js';

const POLL_INTERVAL_MS = 50;

/** A port on 127.0.0.1 that was free a moment ago; the kernel picks it, so parallel users do not collide. */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not read the port of a listening socket'))));
    });
  });
}

/** True when `port` of 127.0.0.1 can be listened on now. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * Waits until `port` is free, so that a server stopped on it can be started on it again; throws SetupError after
 * `timeoutMs`, when another program holds it.
 */
export async function waitUntilPortFree(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await isPortFree(port))) {
    if (Date.now() >= deadline) {
      throw new SetupError(
        `port ${port} of 127.0.0.1 is still taken ${timeoutMs} ms after its server stopped: find what holds it (ss -ltnp) and stop it`,
      );
    }
    await sleep(POLL_INTERVAL_MS);
  }
}
