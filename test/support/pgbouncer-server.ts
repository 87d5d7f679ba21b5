import { execFileSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { redact } from '../../src/config.js';
import { findFreePort } from '../../src/local/free-port.js';
import { chownTree, postgresOwner, spawnAs } from '../../src/local/process-owner.js';
import { spawnServer, trackTemporaryDir, untrackTemporaryDir } from './server-process.js';
import { waitFor } from './wait-for.js';

// A throwaway PgBouncer in front of a PostgreSQL server, the way teams put one in front of theirs: transaction
// pooling, every database of the server reachable by its name.

const SECOND = 1000;
const READY_TIMEOUT_MS = 30 * SECOND;
const SHUTDOWN_TIMEOUT_MS = 5 * SECOND;
const LOG_TAIL_CHARS = 3000;
/** Where distributions put the program when it is not on PATH (Debian: /usr/sbin, outside a user's PATH). */
const FALLBACK_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/opt/homebrew/bin', '/opt/homebrew/sbin'];

/** Options of `startPgBouncer`. */
export interface PgBouncerOptions {
  /** Default 'transaction', what teams run. */
  poolMode?: 'session' | 'transaction' | 'statement';
  /** Server connections per database and user; default 5, fewer than the clients a test opens. */
  poolSize?: number;
  /**
   * The password clients must give (SCRAM-SHA-256, checked by PgBouncer against its auth file); default: none
   * asked (auth_type trust). Either way PgBouncer logs in to PostgreSQL with the upstream URL's credentials.
   */
  password?: string;
}

/** A running PgBouncer on 127.0.0.1. */
export interface PgBouncerServer {
  port: number;
  /** The user clients connect as: the upstream URL's. */
  user: string;
  /** The URL that reaches the database of `directUrl` (a URL of the upstream server) through PgBouncer. */
  urlFor(directUrl: string): string;
  /** Stops PgBouncer and removes its files. */
  stop(): Promise<void>;
}

/** The pgbouncer program on PATH or in the usual system folders, or undefined when it is not installed. */
export function pgbouncerPath(): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter((dir) => dir !== ''), ...FALLBACK_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, 'pgbouncer');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; the next folder may have it.
    }
  }
  return undefined;
}

/** The version of `program` as [major, minor], e.g. [1, 18]; undefined when `--version` says nothing readable. */
export function pgbouncerVersion(program: string): [number, number] | undefined {
  const output = execFileSync(program, ['--version'], { encoding: 'utf8' });
  const match = /PgBouncer (\d+)\.(\d+)/.exec(output);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

/** Starts PgBouncer on a free port in front of the server of `upstreamUrl` and waits until it serves that URL's database. */
export async function startPgBouncer(upstreamUrl: string, options: PgBouncerOptions = {}): Promise<PgBouncerServer> {
  const program = pgbouncerPath();
  if (program === undefined) throw new Error('no pgbouncer on PATH or in /usr/sbin: install it (Debian: apt-get install pgbouncer)');
  const upstream = new URL(upstreamUrl);
  const user = decodeURIComponent(upstream.username) || 'postgres';
  // PgBouncer refuses to run as root; as root it runs as the postgres user, who must own its files.
  const owner = postgresOwner();
  const rootDir = await mkdtemp(join(tmpdir(), 'budget-cdc-pgbouncer-'));
  trackTemporaryDir(rootDir);
  try {
    const port = await findFreePort();
    const configPath = join(rootDir, 'pgbouncer.ini');
    const authFile = join(rootDir, 'userlist.txt');
    const logPath = join(rootDir, 'pgbouncer.log');
    await writeFile(authFile, `${quoteAuthFileValue(user)} ${quoteAuthFileValue(options.password ?? '')}\n`, { mode: 0o600 });
    await writeFile(configPath, configText(upstream, user, port, authFile, options), { mode: 0o600 });
    if (owner) chownTree(rootDir, owner);

    const server = spawnServer(program, [configPath], spawnAs(rootDir, owner), logPath);
    const urlFor = (directUrl: string): string => {
      const url = new URL(directUrl);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      url.username = encodeURIComponent(user);
      url.password = options.password === undefined ? '' : encodeURIComponent(options.password);
      url.search = '';
      return url.toString();
    };
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await stopChild(server.child);
      await rm(rootDir, { recursive: true, force: true });
      untrackTemporaryDir(rootDir);
    };

    const outcome = await waitFor(
      async () => {
        if (server.exit()) return 'exited' as const;
        return (await isOurs(urlFor(upstreamUrl), authFile)) && (await answers(urlFor(upstreamUrl))) ? ('ready' as const) : undefined;
      },
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100, message: `PgBouncer on port ${port} to serve ${redact(upstreamUrl)}` },
    ).catch(async (error: unknown) => {
      await stopChild(server.child);
      throw new Error(`${(error as Error).message}\n--- ${logPath} ---\n${await logTail(logPath)}`, { cause: error });
    });
    if (outcome === 'exited') {
      const exit = server.exit();
      const how = exit && 'error' in exit ? exit.error.message : `code ${exit?.code}, signal ${exit?.signal}`;
      throw new Error(`pgbouncer exited during startup (${how})\n--- ${logPath} ---\n${await logTail(logPath)}`);
    }
    return { port, user, urlFor, stop };
  } catch (error) {
    await rm(rootDir, { recursive: true, force: true });
    untrackTemporaryDir(rootDir);
    throw error;
  }
}

function configText(upstream: URL, user: string, port: number, authFile: string, options: PgBouncerOptions): string {
  const target = [`host=${quoteConnValue(upstream.hostname)}`, `port=${upstream.port || '5432'}`];
  // Credentials in the database entry are the ones PgBouncer logs in with; without them it would use the
  // client's, and the test server's user needs no password.
  if (upstream.password !== '') {
    target.push(`user=${quoteConnValue(user)}`, `password=${quoteConnValue(decodeURIComponent(upstream.password))}`);
  }
  return [
    '[databases]',
    `* = ${target.join(' ')}`,
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    // No Unix socket: two PgBouncers on the same port number would fight over /tmp/.s.PGSQL.<port>.
    'unix_socket_dir =',
    `auth_type = ${options.password === undefined ? 'trust' : 'scram-sha-256'}`,
    `auth_file = ${authFile}`,
    // The admin console, to tell this PgBouncer from another program on the same port.
    `admin_users = ${user}`,
    `pool_mode = ${options.poolMode ?? 'transaction'}`,
    `default_pool_size = ${options.poolSize ?? 5}`,
    'max_client_conn = 200',
    '',
  ].join('\n');
}

/** A value of a connection string in PgBouncer's [databases] section: single quotes, doubled inside. */
function quoteConnValue(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** A field of the auth file: double quotes, doubled inside. */
function quoteAuthFileValue(value: string): string {
  return `"${value.replaceAll('"', '""')}"`;
}

/** True when the PgBouncer answering at `url` reads `authFile`: another program could hold the port while ours fails to bind it. */
async function isOurs(url: string, authFile: string): Promise<boolean> {
  const admin = new URL(url);
  admin.pathname = '/pgbouncer';
  return withClient(admin.toString(), async (client) => {
    // The admin console speaks only the simple query protocol, which a query without parameters uses.
    const { rows } = await client.query<{ key: string; value: string }>('SHOW CONFIG');
    return rows.some((row) => row.key === 'auth_file' && row.value === authFile);
  });
}

/** True when a query through PgBouncer reaches the upstream server. */
async function answers(url: string): Promise<boolean> {
  return withClient(url, async (client) => (await client.query('select 1 as one')).rows.length === 1);
}

async function withClient(url: string, fn: (client: pg.Client) => Promise<boolean>): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: SECOND });
  client.on('error', () => {});
  try {
    await client.connect();
    return await fn(client);
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** SIGTERM (an immediate shutdown up to 1.22, a safe one after), then SIGKILL: nothing of a throwaway pooler is worth waiting for. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const kill = setTimeout(() => child.kill('SIGKILL'), SHUTDOWN_TIMEOUT_MS);
  try {
    await exited;
  } finally {
    clearTimeout(kill);
  }
}

async function logTail(logPath: string): Promise<string> {
  const text = await readFile(logPath, 'utf8').catch(() => '(no log)');
  return text.slice(-LOG_TAIL_CHARS);
}
