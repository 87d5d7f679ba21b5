import { ConfigError, DecodeError, PermanentError, RedisWriteError, SetupError } from '../errors.js';
import { formatLsn } from '../lsn.js';

// Which errors a new session cannot cure. Everything else (a server restart, a lost connection, a Redis
// that lost its state, a failover) is transient: the consumer retries with a growing delay.

/** PostgreSQL error codes that stay the same however often a session is retried. */
const PERMANENT_POSTGRES_CODES: Record<string, string> = {
  '42501': 'give the role the REPLICATION attribute and SELECT on jobs ("budget-cdc migrate --create-role NAME" as the table owner)',
  '28P01': 'fix the user or password in DATABASE_URL',
  '28000': 'allow the connection in pg_hba.conf (replication connections are matched by database name)',
  '3D000': 'fix the database name in DATABASE_URL',
  '42704': 'create the missing object ("budget-cdc migrate" creates the publication), or fix --publication',
};

/** Redis replies that mean a setting or an ACL is wrong, not that the server is away. */
const PERMANENT_REDIS_REPLIES: Array<[RegExp, string]> = [
  [/\b(WRONGPASS|NOAUTH)\b/, 'fix the user or password in REDIS_URL'],
  [/\bNOPERM\b/, 'grant the Redis user the commands and keys budget-cdc needs (see docs/operations.md, Redis ACL)'],
];

/** Messages of servers in between that cannot pass replication on. */
const PERMANENT_MESSAGES: Array<[RegExp, string]> = [
  [
    /unsupported startup parameter: replication/,
    'DATABASE_URL goes through a connection pooler (PgBouncer), which cannot pass logical replication on: point it at PostgreSQL itself',
  ],
];

/** The message to stop with when `error` is permanent, or undefined when a new session may succeed. */
export function permanentErrorMessage(error: Error): string | undefined {
  for (const [pattern, hint] of PERMANENT_MESSAGES) if (pattern.test(error.message)) return `${error.message}: ${hint}`;
  if (error instanceof PermanentError || error instanceof SetupError || error instanceof ConfigError) return error.message;
  if (error instanceof DecodeError) return `${error.message} (at WAL position ${formatLsn(error.lsn)})`;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code in PERMANENT_POSTGRES_CODES) return `${error.message}: ${PERMANENT_POSTGRES_CODES[code]}`;
  // ioredis names a Redis error reply ReplyError; the batch writer's are RedisWriteErrors.
  if (error instanceof RedisWriteError || error.name === 'ReplyError') {
    for (const [pattern, hint] of PERMANENT_REDIS_REPLIES) if (pattern.test(error.message)) return `${error.message}: ${hint}`;
  }
  return undefined;
}
