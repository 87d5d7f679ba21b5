import { describe, expect, it } from 'vitest';
import { RedisStateLostError, RedisWentBackError } from '../../src/consumer/session-errors.js';
import { permanentErrorMessage } from '../../src/consumer/error-kind.js';
import { ConfigError, ConnectionError, DecodeError, PermanentError, RedisWriteError, SetupError } from '../../src/errors.js';

/** An error as pg gives it: a message and PostgreSQL's SQLSTATE. */
function postgresError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** An error reply as ioredis gives it. */
function replyError(message: string): Error {
  return Object.assign(new Error(message), { name: 'ReplyError' });
}

describe('permanentErrorMessage', () => {
  it.each([
    ['a slot of another plugin', new PermanentError('replication slot s uses the test_decoding plugin'), /test_decoding/],
    [
      'a column the decoder cannot read',
      new DecodeError('the jobs table has no column budget', 0x16b374d848n),
      /no column budget.*16\/B374D848/,
    ],
    ['a missing publication or table', new SetupError('the jobs table does not exist: run "budget-cdc migrate" first'), /migrate/],
    ['a wrong setting', new ConfigError('REDIS_URL', 'REDIS_URL is not a valid URL'), /REDIS_URL/],
    [
      'no REPLICATION privilege',
      postgresError('must be superuser or replication role to start walsender', '42501'),
      /REPLICATION attribute/,
    ],
    ['a wrong PostgreSQL password', postgresError('password authentication failed for user "x"', '28P01'), /fix the user or password/],
    ['a publication dropped meanwhile', postgresError('publication "p" does not exist', '42704'), /budget-cdc migrate/],
    [
      'a wrong Redis password',
      new RedisWriteError('redis refused the connection setup: WRONGPASS invalid username-password pair'),
      /REDIS_URL/,
    ],
    ['a Redis ACL refusal (ioredis)', replyError("NOPERM this user has no permissions to run the 'set' command"), /ACL/],
    ['PgBouncer in between', postgresError('unsupported startup parameter: replication', '08P01'), /PgBouncer.*PostgreSQL itself/],
  ])('stops on %s, saying what to fix', (_, error, hint) => {
    expect(permanentErrorMessage(error)).toMatch(hint);
  });

  it.each([
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['a server shutting down', postgresError('terminating connection due to administrator command', '57P01')],
    ['a lost Redis connection', new RedisWriteError('redis connection closed')],
    [
      'a failover in progress',
      new RedisWriteError("redis refused command 3 of the batch: READONLY You can't write against a read only replica."),
    ],
    ['a Redis that lost its state', new RedisStateLostError()],
    ['a Redis that went back in time', new RedisWentBackError('0/1#1', '0/0#1')],
    ['an unreachable server at start', new ConnectionError('cannot connect to Redis at h:6379: connection refused')],
    ['a slot held by another process', postgresError('replication slot "s" is active for PID 42', '55006')],
  ])('retries %s', (_, error) => {
    expect(permanentErrorMessage(error)).toBeUndefined();
  });
});
