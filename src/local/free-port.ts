import { createServer } from 'node:net';

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
