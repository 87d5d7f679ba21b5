import type { RedisAddress } from '../config.js';
import { RedisWriteError } from '../errors.js';
import { RespConnection, RespError, respCommand } from './resp-connection.js';

const SENTINEL_TIMEOUT_MS = 2_000;

/**
 * Asks the Sentinels, in order, where the master `masterName` is; the first that answers wins. Sentinels
 * are reached without TLS or password (see docs/operations.md, Redis behind Sentinel). Throws a RedisWriteError when none answers,
 * which ends the session like any lost Redis connection: the next one asks again.
 */
export async function findSentinelMaster(sentinels: readonly RedisAddress[], masterName: string): Promise<RedisAddress> {
  const failures: string[] = [];
  for (const sentinel of sentinels) {
    try {
      return await askSentinel(sentinel, masterName);
    } catch (error) {
      failures.push(`${sentinel.host}:${sentinel.port}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  throw new RedisWriteError(`no Sentinel named the master ${masterName}: ${failures.join('; ')}`);
}

async function askSentinel(sentinel: RedisAddress, masterName: string): Promise<RedisAddress> {
  let connection: RespConnection | undefined;
  const timeout = new Promise<never>((_, reject) => {
    setTimeout(() => reject(new Error(`no answer within ${SENTINEL_TIMEOUT_MS} ms`)), SENTINEL_TIMEOUT_MS).unref();
  });
  try {
    const reply = await Promise.race([
      (async () => {
        connection = await RespConnection.open(sentinel.host, sentinel.port, false);
        return (await connection.send(respCommand(['SENTINEL', 'get-master-addr-by-name', masterName]), 1))[0];
      })(),
      timeout,
    ]);
    if (reply instanceof RespError) throw new Error(reply.message);
    if (!Array.isArray(reply) || typeof reply[0] !== 'string' || typeof reply[1] !== 'string') {
      throw new Error(`it does not monitor a master named ${masterName}`);
    }
    return { host: reply[0], port: Number(reply[1]) };
  } finally {
    (connection as RespConnection | undefined)?.close();
  }
}

/** Throws unless the server on `connection` is a master: right after a failover the old one may still answer. */
export async function checkIsMaster(connection: RespConnection, address: RedisAddress): Promise<void> {
  const [reply] = await connection.send(respCommand(['ROLE']), 1);
  const role = Array.isArray(reply) ? reply[0] : reply instanceof RespError ? reply.message : reply;
  if (role !== 'master') {
    throw new RedisWriteError(
      `the Sentinels named ${address.host}:${address.port} as master, but it is ${String(role)}: a failover is under way`,
    );
  }
}
