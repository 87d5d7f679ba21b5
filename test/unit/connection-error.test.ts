import { describe, expect, it } from 'vitest';
import { connectionError } from '../../src/errors.js';

// PostgreSQL's 28000 covers a missing role, a role without LOGIN and pg_hba.conf; 28P01 is a wrong password.

function postgresError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function describe28(message: string, code: string): string {
  return connectionError('PostgreSQL', 'localhost:5432/jobs', 'DATABASE_URL or --database-url', postgresError(message, code)).message;
}

describe('connectionError for PostgreSQL authentication', () => {
  it('names a role that does not exist and how to create it, not pg_hba.conf', () => {
    const message = describe28('role "nobody" does not exist', '28000');
    expect(message).toBe(
      'cannot connect to PostgreSQL at localhost:5432/jobs: role "nobody" does not exist: create it ' +
        '("budget-cdc migrate --create-role nobody" as a superuser) or use an existing role; check DATABASE_URL or --database-url',
    );
    expect(message).not.toContain('pg_hba');
  });

  it('tells a role without LOGIN apart', () => {
    expect(describe28('role "reader" is not permitted to log in', '28000')).toContain(
      'role "reader" may not log in: ALTER ROLE reader LOGIN',
    );
  });

  it('points a pg_hba.conf rejection at pg_hba.conf, with the server message', () => {
    const message = describe28('no pg_hba.conf entry for host "10.0.0.1", user "app", database "jobs", no encryption', '28000');
    expect(message).toContain('authentication rejected (no pg_hba.conf entry for host "10.0.0.1"');
    expect(message).toContain('allow this user, database and address in pg_hba.conf');
  });

  it('reports a wrong password as such', () => {
    expect(describe28('password authentication failed for user "app"', '28P01')).toBe(
      'cannot connect to PostgreSQL at localhost:5432/jobs: password authentication failed; check DATABASE_URL or --database-url',
    );
  });
});
