import { execFile, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import { findFreePort } from '../../src/local/free-port.js';
import { killRedis, makeTemporaryDir, removeTemporaryDir } from './redis-server.js';
import { spawnServer } from './server-process.js';
import { waitFor } from './wait-for.js';

// A Redis that speaks only TLS (`--port 0`), with a certificate signed by a CA made for it: what rediss:// URLs
// are tested against. launchRedis does not fit here: its readiness probe speaks plain RESP.

const SECOND = 1000;
const READY_TIMEOUT_MS = 30 * SECOND;
const PROBE_TIMEOUT_MS = SECOND;
const LOG_TAIL_CHARS = 3000;

/** The server certificate's names: a client may reach it as rediss://127.0.0.1, rediss://[::1] or rediss://localhost. */
const SERVER_NAMES = 'IP:127.0.0.1, IP:::1, DNS:localhost';

/**
 * openssl's settings for the CA and the server certificate; this file alone, so no system openssl.cnf matters. The
 * certificate serves clients too: on a TLS cluster bus each node presents it to the others, which require it.
 */
const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = ${SERVER_NAMES}
`;
/** A new P-256 key, unencrypted: quick to make, and redis-server reads it without a passphrase. */
const NEW_KEY = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';

/** Options of `startTlsRedis`. */
export interface TlsRedisServerOptions {
  /** Appended to the command line, after the options this harness sets, so they can override them. */
  extraArgs?: string[];
}

/** A throwaway redis-server that accepts TLS connections only, on 127.0.0.1 and (where the host has it) ::1. */
export interface TlsRedisServer {
  /** rediss://127.0.0.1:<port>; a client must trust `ca`. */
  url: string;
  port: number;
  /** PEM of the CA that signed the server certificate, for `tls: { ca }`. */
  ca: string;
  /** The file that holds `ca`, for NODE_EXTRA_CA_CERTS. */
  caPath: string;
  /** Stops the server, waits until its port is free, and removes its certificates and files. */
  stop(): Promise<void>;
}

/**
 * Makes a CA and a server certificate with `openssl` in a temp dir, starts `redis-server` (built with TLS) on a
 * free TLS port, and waits until it answers over TLS.
 */
export async function startTlsRedis(options: TlsRedisServerOptions = {}): Promise<TlsRedisServer> {
  const dir = await makeTemporaryDir('budget-cdc-redis-tls-');
  try {
    const files = await makeCertificates(dir);
    const ca = await readFile(files.ca, 'utf8');
    const port = await findFreePort();
    const args = [
      ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1 -::1'],
      ['--tls-cert-file', files.cert, '--tls-key-file', files.key, '--tls-ca-cert-file', files.ca, '--tls-auth-clients', 'no'],
      ['--save', '', '--appendonly', 'no', '--dir', dir],
      options.extraArgs ?? [],
    ].flat();
    const child = await launchTlsRedis(port, ca, dir, args);
    return {
      url: `rediss://127.0.0.1:${port}`,
      port,
      ca,
      caPath: files.ca,
      async stop() {
        await killRedis(child, port, 'SIGTERM');
        await removeTemporaryDir(dir);
      },
    };
  } catch (error) {
    await removeTemporaryDir(dir);
    throw error;
  }
}

/** PEM files made by `makeCertificates`. */
export interface CertificateFiles {
  ca: string;
  cert: string;
  key: string;
}

/** A CA, and a server certificate it signed for SERVER_NAMES, valid for two days; PEM files in `dir`. */
export async function makeCertificates(dir: string): Promise<CertificateFiles> {
  await writeFile(join(dir, 'openssl.cnf'), OPENSSL_CONFIG);
  // Run in `dir`: every file name below is relative to it, and no argument holds a space.
  const openssl = async (command: string): Promise<void> => {
    try {
      await promisify(execFile)('openssl', command.split(' '), { cwd: dir });
    } catch (error) {
      throw new Error(`openssl ${command} failed (is openssl installed?): ${(error as Error).message}`, { cause: error });
    }
  };
  await openssl(
    `req -x509 -new ${NEW_KEY} -days 2 -subj /CN=budget-cdc-test-ca -config openssl.cnf -extensions ca -keyout ca.key -out ca.pem`,
  );
  await openssl(`req -new ${NEW_KEY} -subj /CN=localhost -config openssl.cnf -keyout server.key -out server.csr`);
  await openssl(
    `x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 1 -days 2 -extfile openssl.cnf -extensions server -out server.pem`,
  );
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
}

/** Runs `redis-server args` with its log in `dir/redis.log`; on failure the process is gone. */
async function launchTlsRedis(port: number, ca: string, dir: string, args: string[]): Promise<ChildProcess> {
  const logPath = join(dir, 'redis.log');
  const server = spawnServer('redis-server', args, { cwd: dir }, logPath);
  try {
    const outcome = await waitFor(
      async () => {
        if (server.exit()) return 'exited' as const;
        return (await answersOverTls(port, ca, server.child.pid)) ? ('ready' as const) : undefined;
      },
      { timeoutMs: READY_TIMEOUT_MS, message: `redis-server to answer over TLS on port ${port}` },
    );
    if (outcome === 'exited') {
      const exit = server.exit();
      const how =
        exit && 'error' in exit
          ? `${exit.error.message}; install redis-server (version 7, built with TLS)`
          : `code ${exit?.code}, signal ${exit?.signal}`;
      const log = await readFile(logPath, 'utf8').catch(() => '(no log)');
      throw new Error(`redis-server exited during startup on TLS port ${port} (${how})\n--- ${logPath} ---\n${log.slice(-LOG_TAIL_CHARS)}`);
    }
    return server.child;
  } catch (error) {
    // No waiting for the port here (killRedis): when redis-server could not bind it, someone else holds it.
    if (server.exit() === undefined) {
      const exited = new Promise((resolve) => server.child.once('exit', resolve));
      server.child.kill('SIGKILL');
      await exited;
    }
    throw error;
  }
}

/**
 * True when the server on `port` completes a TLS handshake with a certificate `ca` signed for 127.0.0.1 and
 * reports our child's process id (`INFO server`): another Redis that holds the port would not.
 */
async function answersOverTls(port: number, ca: string, pid: number | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca });
    let reply = '';
    const finish = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('secureConnect', () => socket.write('INFO server\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      // An error reply (such as -LOADING) means "not yet".
      if (reply.startsWith('-')) finish(false);
      const processId = /\r\nprocess_id:(\d+)\r\n/.exec(reply)?.[1];
      if (processId !== undefined) finish(Number(processId) === pid);
    });
  });
}
