import { existsSync } from 'node:fs';
import { request, type RequestOptions } from 'node:http';
import { join } from 'node:path';
import pg from 'pg';
import { postgresBinDir, startPostgres } from './postgres-server.js';
import { startRedis } from './redis-server.js';

const SECOND = 1000;
const DOCKER_PING_TIMEOUT_MS = SECOND;
const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';
const POSTGRES_SETTINGS = ['wal_level=logical', 'max_replication_slots=40', 'max_wal_senders=40', 'max_connections=200'];

/** The PostgreSQL and Redis servers the test suite shares. */
export interface Services {
  /** Admin URL (user postgres) of a PostgreSQL 15 server with wal_level=logical. */
  databaseUrl: string;
  redisUrl: string;
  /** Stops what `startServices` started; servers given by URL are left alone. */
  stop(): Promise<void>;
}

/**
 * Finds servers for the tests, in order: TEST_DATABASE_URL and TEST_REDIS_URL, containers when a container
 * runtime answers, then local binaries. Fails once, with what to install or set, when none works.
 */
export async function startServices(): Promise<Services> {
  const givenDatabaseUrl = process.env['TEST_DATABASE_URL'];
  const givenRedisUrl = process.env['TEST_REDIS_URL'];
  if (givenDatabaseUrl && givenRedisUrl) {
    return checked({ databaseUrl: givenDatabaseUrl, redisUrl: givenRedisUrl, stop: async () => {} }, 'TEST_DATABASE_URL');
  }

  const failures: string[] = [];
  if (await containerRuntimeAnswers()) {
    try {
      return await checked(await startContainers(givenDatabaseUrl, givenRedisUrl), 'the postgres:15 container');
    } catch (error) {
      failures.push(`containers: ${(error as Error).message}`);
    }
  } else {
    failures.push(`containers: no container runtime answers at ${dockerHostDescription()}`);
  }

  const binDir = postgresBinDir();
  if (givenDatabaseUrl || existsSync(join(binDir, 'postgres'))) {
    try {
      return await checked(await startLocalServers(givenDatabaseUrl, givenRedisUrl), 'the local PostgreSQL');
    } catch (error) {
      failures.push(`local binaries: ${(error as Error).message}`);
    }
  } else {
    failures.push(`local binaries: no PostgreSQL 15 binaries in ${binDir}`);
  }

  throw new Error(
    'cannot start PostgreSQL and Redis for the tests. Install postgresql-15 and redis-server (Debian: ' +
      'apt-get install postgresql-15 redis-server), or run Docker, or set TEST_DATABASE_URL (a PostgreSQL 15 ' +
      'server with wal_level=logical, as a superuser) and TEST_REDIS_URL.\n' +
      failures.map((failure) => `  - ${failure}`).join('\n'),
  );
}

/** A server the tests use, and how to stop it if we started it. */
interface Server {
  url: string;
  stop(): Promise<void>;
}

function givenServer(url: string): Server {
  return { url, stop: async () => {} };
}

async function startLocalServers(givenDatabaseUrl: string | undefined, givenRedisUrl: string | undefined): Promise<Services> {
  return startBoth(
    async () => (givenDatabaseUrl ? givenServer(givenDatabaseUrl) : startPostgres()),
    async () => (givenRedisUrl ? givenServer(givenRedisUrl) : startRedis()),
  );
}

async function startContainers(givenDatabaseUrl: string | undefined, givenRedisUrl: string | undefined): Promise<Services> {
  // Imported only here, so that machines without a container runtime never load it.
  const { GenericContainer, Wait } = await import('testcontainers');
  const startPostgresContainer = async (): Promise<Server> => {
    const container = await new GenericContainer('postgres:15')
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
      .withCommand(POSTGRES_SETTINGS.flatMap((setting) => ['-c', setting]))
      .withExposedPorts(5432)
      // The image's entrypoint first runs a temporary server to initialise, so the second message counts.
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    return {
      url: `postgres://postgres@${container.getHost()}:${container.getMappedPort(5432)}/postgres`,
      async stop() {
        await container.stop();
      },
    };
  };
  const startRedisContainer = async (): Promise<Server> => {
    const container = await new GenericContainer('redis:7')
      .withExposedPorts(6379)
      .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
      .start();
    return {
      url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
      async stop() {
        await container.stop();
      },
    };
  };
  return startBoth(
    async () => (givenDatabaseUrl ? givenServer(givenDatabaseUrl) : startPostgresContainer()),
    async () => (givenRedisUrl ? givenServer(givenRedisUrl) : startRedisContainer()),
  );
}

/** Starts PostgreSQL, then Redis; stops PostgreSQL again if Redis cannot start. */
async function startBoth(startPostgresServer: () => Promise<Server>, startRedisServer: () => Promise<Server>): Promise<Services> {
  const postgres = await startPostgresServer();
  try {
    const redis = await startRedisServer();
    return {
      databaseUrl: postgres.url,
      redisUrl: redis.url,
      async stop() {
        await Promise.all([postgres.stop(), redis.stop()]);
      },
    };
  } catch (error) {
    await postgres.stop().catch(() => {});
    throw error;
  }
}

/** Stops the servers again unless PostgreSQL is usable for logical replication, naming `origin` in the error. */
async function checked(source: Services, origin: string): Promise<Services> {
  try {
    const client = new pg.Client({ connectionString: source.databaseUrl, connectionTimeoutMillis: 10 * SECOND });
    try {
      await client.connect();
      const { rows } = await client.query<{ wal_level: string }>('show wal_level');
      const walLevel = rows[0]?.wal_level;
      if (walLevel !== 'logical') {
        throw new Error(
          `PostgreSQL from ${origin} (${redact(source.databaseUrl)}) has wal_level=${walLevel}: ` +
            'set wal_level=logical in postgresql.conf and restart PostgreSQL, or point TEST_DATABASE_URL elsewhere',
        );
      }
    } finally {
      await client.end().catch(() => {});
    }
    return source;
  } catch (error) {
    await source.stop().catch(() => {});
    throw error;
  }
}

/** True when a Docker-compatible API answers `GET /_ping` quickly; testcontainers would otherwise hang or throw late. */
async function containerRuntimeAnswers(): Promise<boolean> {
  const target = dockerRequestTarget();
  if (!target) return false;
  return new Promise((resolve) => {
    const req = request({ ...target, method: 'GET', path: '/_ping', timeout: DOCKER_PING_TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

function dockerRequestTarget(): RequestOptions | undefined {
  const dockerHost = process.env['DOCKER_HOST'];
  if (!dockerHost) return existsSync(DEFAULT_DOCKER_SOCKET) ? { socketPath: DEFAULT_DOCKER_SOCKET } : undefined;
  if (dockerHost.startsWith('unix://')) return { socketPath: dockerHost.slice('unix://'.length) };
  if (dockerHost.startsWith('tcp://')) {
    const url = new URL(dockerHost);
    // A TLS-protected daemon (DOCKER_TLS_VERIFY) would need certificates; such setups can use TEST_*_URL instead.
    return { host: url.hostname, port: Number(url.port || 2375) };
  }
  return undefined;
}

function dockerHostDescription(): string {
  return process.env['DOCKER_HOST'] || DEFAULT_DOCKER_SOCKET;
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
