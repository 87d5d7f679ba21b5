import { describe, expect, it } from 'vitest';
import { loadHealthConfig, loadQuickstartConfig, loadRolePassword, redact } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

describe('loadHealthConfig', () => {
  it('defaults: port 9187 on 127.0.0.1, 1 GiB and 300 s of lag', () => {
    expect(loadHealthConfig({}, {})).toEqual({
      httpPort: 9187,
      httpPortIsDefault: true,
      httpHost: '127.0.0.1',
      maxLagBytes: 1024 ** 3,
      maxLagSeconds: 300,
    });
  });

  it('a flag wins over its variable, which wins over the default; port 0 turns the endpoint off', () => {
    const env = {
      BUDGET_CDC_HTTP_PORT: '9000',
      BUDGET_CDC_HTTP_HOST: '0.0.0.0',
      BUDGET_CDC_MAX_LAG_BYTES: '5',
      BUDGET_CDC_MAX_LAG_SECONDS: '2.5',
    };
    expect(loadHealthConfig({}, env)).toEqual({
      httpPort: 9000,
      httpPortIsDefault: false,
      httpHost: '0.0.0.0',
      maxLagBytes: 5,
      maxLagSeconds: 2.5,
    });
    expect(loadHealthConfig({ httpPort: '0', maxLagBytes: '7' }, env)).toMatchObject({
      httpPort: 0,
      httpPortIsDefault: false,
      maxLagBytes: 7,
    });
  });

  it.each([
    [{ httpPort: '65536' }, 'BUDGET_CDC_HTTP_PORT'],
    [{ httpPort: 'http' }, 'BUDGET_CDC_HTTP_PORT'],
    [{ maxLagBytes: '1.5' }, 'BUDGET_CDC_MAX_LAG_BYTES'],
    [{ maxLagSeconds: '-1' }, 'BUDGET_CDC_MAX_LAG_SECONDS'],
    [{ httpHost: '' }, 'BUDGET_CDC_HTTP_HOST'],
  ])('rejects %o naming %s', (options, variable) => {
    expect(() => loadHealthConfig(options, {})).toThrow(ConfigError);
    try {
      loadHealthConfig(options, {});
    } catch (error) {
      expect((error as ConfigError).variable).toBe(variable);
      expect((error as ConfigError).message).toContain(variable);
    }
  });
});

describe('loadQuickstartConfig', () => {
  it('leaves the URLs undefined when unset (local servers), and uses them when set', () => {
    expect(loadQuickstartConfig({}, { PATH: '/bin' })).toEqual({
      dataDir: '.budget-cdc',
      databaseUrl: undefined,
      redisUrl: undefined,
      postgresBinDir: undefined,
      searchPath: '/bin',
    });
    const given = loadQuickstartConfig(
      { dataDir: '/srv/q' },
      { DATABASE_URL: 'postgres://h/db', REDIS_URL: 'redis://h:1', PG_BIN: '/pg/bin' },
    );
    expect(given).toMatchObject({ dataDir: '/srv/q', databaseUrl: 'postgres://h/db', redisUrl: 'redis://h:1', postgresBinDir: '/pg/bin' });
  });

  it('checks a URL that is set, without printing its password', () => {
    expect(() => loadQuickstartConfig({}, { DATABASE_URL: 'mysql://u:pw-s3cret@h/db' })).toThrow(/DATABASE_URL must start with postgres/);
    expect(() => loadQuickstartConfig({}, { REDIS_URL: 'not a url :pw-s3cret@' })).toThrow(
      /^(?!.*pw-s3cret).*REDIS_URL is not a valid URL/,
    );
  });
});

describe('loadRolePassword and redact', () => {
  it('reads the role password from the flag or BUDGET_CDC_ROLE_PASSWORD', () => {
    expect(loadRolePassword({}, {})).toBeUndefined();
    expect(loadRolePassword({}, { BUDGET_CDC_ROLE_PASSWORD: 'a' })).toBe('a');
    expect(loadRolePassword({ rolePassword: 'b' }, { BUDGET_CDC_ROLE_PASSWORD: 'a' })).toBe('b');
  });

  it('masks a password given as a query parameter too', () => {
    expect(redact('postgres://u@h/db?password=s3cret&sslmode=require')).toBe('postgres://u@h/db?password=***&sslmode=require');
  });
});
