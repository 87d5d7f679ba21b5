import { ConfigError } from './errors.js';

// The checks of config.ts, one per kind of value: each returns the value or throws a ConfigError that names
// the flag and the variable, and says what is expected. config.ts stays the only reader of the environment.

// PostgreSQL folds unquoted names to lower case and limits them to 63 bytes; we accept only names
// that need no quoting so that the same name works in SQL, in replication commands and in psql.
const SQL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
export const MAX_PORT_NUMBER = 65_535;

export function checkNonNegativeInteger(variable: string, flag: string, value: string, unit: string): number {
  const n = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n))
    throw new ConfigError(variable, `${flag} / ${variable} must be a whole number of ${unit} (0 or more), got "${value}"`);
  return n;
}

export function checkUrl(variable: string, flag: string, value: string, protocols: string[]): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(
      variable,
      `${variable} is not a valid URL (${redact(value)}): set it or ${flag} to a URL like ${protocols[0]}//user:password@host:port, ` +
        `with special characters of the user and password percent-encoded (@ as %40, : as %3A, / as %2F, % as %25)`,
    );
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(
      variable,
      `${variable} must start with ${protocols.map((p) => p + '//').join(' or ')}, got ${url.protocol}//: fix it or pass ${flag}`,
    );
  }
  return value;
}

export function checkSqlName(variable: string, flag: string, value: string): string {
  if (!SQL_NAME.test(value)) {
    throw new ConfigError(
      variable,
      `${flag} / ${variable} "${value}" is not a valid name: use 1 to 63 lower-case letters, digits and underscores, starting with a letter or underscore`,
    );
  }
  return value;
}

export function checkPositiveInteger(variable: string, flag: string, value: string): number {
  const n = /^[1-9]\d*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new ConfigError(variable, `${flag} / ${variable} must be a positive integer, got "${value}"`);
  }
  return n;
}

export function checkLogLevel(value: string): string {
  if (!LOG_LEVELS.includes(value)) {
    throw new ConfigError('LOG_LEVEL', `--log-level / LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  }
  return value;
}

export function checkPort(value: string): number {
  const n = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 0 && n <= MAX_PORT_NUMBER)) {
    throw new ConfigError(
      'BUDGET_CDC_HTTP_PORT',
      `--http-port / BUDGET_CDC_HTTP_PORT must be a port from 1 to ${MAX_PORT_NUMBER}, or 0 to turn the endpoint off; got "${value}"`,
    );
  }
  return n;
}

export function checkNonNegativeNumber(variable: string, flag: string, value: string, integer: boolean): number {
  const pattern = integer ? /^\d+$/ : /^\d+(\.\d+)?$/;
  const n = pattern.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(n) || (integer && !Number.isSafeInteger(n))) {
    throw new ConfigError(
      variable,
      `${flag} / ${variable} must be a ${integer ? 'whole ' : ''}number of ${integer ? 'bytes' : 'seconds'} (0 or more), got "${value}"`,
    );
  }
  return n;
}

/** Hides a password so that error messages and logs never print it. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    // libpq and pg also take the password as a query parameter.
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
    return parsed.toString();
  } catch {
    // A URL that does not parse may hold a password with any character in any place (an unencoded @, : or /
    // moves the host boundary): only its scheme is safe to print.
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*:)\/\//.exec(url)?.[1];
    return scheme === undefined ? '(not shown)' : `${scheme}//…`;
  }
}
