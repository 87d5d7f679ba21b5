/** A setting is missing or wrong; the message names the variable or flag to fix. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
  }
}

/** The replication stream sent bytes we cannot decode; carries the WAL position. */
export class DecodeError extends Error {
  override name = 'DecodeError';
  constructor(
    message: string,
    readonly lsn: bigint,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A row passed the table's constraints but cannot be turned into a Redis value (e.g. created_at = infinity). */
export class RowError extends Error {
  override name = 'RowError';
  constructor(
    message: string,
    readonly jobId: string,
  ) {
    super(message);
  }
}

/** Redis answered a write with an error; the change must not be acknowledged. */
export class RedisWriteError extends Error {
  override name = 'RedisWriteError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A dependency (PostgreSQL, Redis) is unreachable or refuses us; the message says what to check. */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The database is reachable but not ready for budget-cdc (wal_level, missing table or publication). */
export class SetupError extends Error {
  override name = 'SetupError';
}

/**
 * An error that retrying will not cure (a slot of another plugin, a replication connection through a pooler,
 * a missing publication, a missing privilege): the consumer stops with this message, which says what to fix.
 */
export class PermanentError extends Error {
  override name = 'PermanentError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const CONNECTION_HINTS: Record<string, string> = {
  ECONNREFUSED: 'connection refused: is the server running on that host and port?',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  '28P01': 'password authentication failed',
  '3D000': 'the database does not exist',
};

/**
 * PostgreSQL answers 28000 (invalid_authorization_specification) for a missing role, a role without LOGIN and a
 * pg_hba.conf rejection alike; only the message tells them apart, and each has its own fix.
 */
function describeAuthorizationError(message: string): string {
  const missingRole = /role "(.*)" does not exist/.exec(message);
  if (missingRole !== null) {
    return `role "${missingRole[1]}" does not exist: create it ("budget-cdc migrate --create-role ${missingRole[1]}" as a superuser) or use an existing role`;
  }
  const noLogin = /role "(.*)" is not permitted to log in/.exec(message);
  if (noLogin !== null) return `role "${noLogin[1]}" may not log in: ALTER ROLE ${noLogin[1]} LOGIN, or use another role`;
  return `authentication rejected (${message}): allow this user, database and address in pg_hba.conf`;
}

/** Builds a one-line ConnectionError naming the server, the cause and the setting to fix. */
export function connectionError(service: 'PostgreSQL' | 'Redis', target: string, setting: string, error: unknown): ConnectionError {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const detail = code === '28000' ? describeAuthorizationError(message) : (code !== undefined && CONNECTION_HINTS[code]) || message;
  return new ConnectionError(`cannot connect to ${service} at ${target}: ${detail}; check ${setting}`, { cause: error });
}
