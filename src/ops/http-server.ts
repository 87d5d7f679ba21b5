import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, type Registry } from 'prom-client';
import type { HealthConfig } from '../config.js';
import { SetupError } from '../errors.js';
import type { Logger } from '../logger.js';
import { evaluateReadiness, type ConsumerHealth } from './readiness.js';

/** What the endpoint serves: a consumer's metrics and health. */
export interface HealthSource {
  readonly metrics: Registry;
  health(): ConsumerHealth;
}

export interface HttpServer {
  /** http://host:port, with the port actually bound. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves /healthz (the process answers), /readyz (200 when ready, 503 with the reasons otherwise) and
 * /metrics (Prometheus text) on node:http. Returns undefined when the port is 0 (turned off), or when the
 * default port is taken (logged as a warning); a port that was chosen and is taken is a SetupError.
 */
export async function startHttpServer(source: HealthSource, config: HealthConfig, logger: Logger): Promise<HttpServer | undefined> {
  if (config.httpPort === 0) return undefined;
  collectDefaultMetrics({ register: source.metrics, prefix: 'budget_cdc_' });
  const server = createServer((request, response) => {
    handle(request, response, source, config).catch((error: unknown) => {
      logger.error({ err: error instanceof Error ? error.message : String(error), path: request.url }, 'health endpoint failed');
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('internal error\n');
    });
  });
  try {
    await listen(server, config.httpPort, config.httpHost);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const where = `${config.httpHost}:${config.httpPort}`;
    if (code === 'EADDRINUSE' && config.httpPortIsDefault) {
      logger.warn(
        { address: where },
        `port ${config.httpPort} is in use: /healthz, /readyz and /metrics are off; pass --http-port (or BUDGET_CDC_HTTP_PORT) to choose another`,
      );
      return undefined;
    }
    throw new SetupError(
      `cannot serve /healthz, /readyz and /metrics on ${where}: ${code === 'EADDRINUSE' ? 'the port is in use' : (error as Error).message}; ` +
        'choose another with --http-port or BUDGET_CDC_HTTP_PORT (0 turns the endpoint off), or the address with --http-host',
      { cause: error },
    );
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url }, 'serving /healthz, /readyz and /metrics');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function handle(request: IncomingMessage, response: ServerResponse, source: HealthSource, config: HealthConfig): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    response.end('only GET and HEAD\n');
    return;
  }
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  switch (path) {
    case '/healthz':
      send(response, 200, 'text/plain; charset=utf-8', 'ok\n');
      return;
    case '/readyz': {
      const readiness = evaluateReadiness(source.health(), config, Date.now());
      send(response, readiness.ready ? 200 : 503, 'application/json', JSON.stringify(readiness) + '\n');
      return;
    }
    case '/metrics':
      send(response, 200, source.metrics.contentType, await source.metrics.metrics());
      return;
    default:
      send(response, 404, 'text/plain; charset=utf-8', 'not found: try /healthz, /readyz or /metrics\n');
  }
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
