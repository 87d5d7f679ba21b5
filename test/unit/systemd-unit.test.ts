import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// docs/systemd/: the unit and the settings file the README tells operators to install. No systemd runs here:
// the unit is checked with `systemd-analyze verify` where that program exists, and read for what matters.

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const UNIT_PATH = `${REPO_ROOT}docs/systemd/budget-cdc.service`;
const ENV_PATH = `${REPO_ROOT}docs/systemd/budget-cdc.env`;
const HAS_SYSTEMD_ANALYZE = spawnSync('systemd-analyze', ['--version']).status === 0;

/** The `Key=value` lines of a unit's [Service] section. */
function serviceSettings(unit: string): Map<string, string> {
  const section = unit.split(/^\[Service\]$/m)[1]!.split(/^\[/m)[0]!;
  const settings = new Map<string, string>();
  for (const line of section.split('\n')) {
    const match = /^(\w+)=(.*)$/.exec(line);
    if (match) settings.set(match[1]!, match[2]!);
  }
  return settings;
}

describe('docs/systemd/budget-cdc.service', () => {
  const unit = readFileSync(UNIT_PATH, 'utf8');

  it('runs budget-cdc run in the foreground, stopped by SIGTERM, with the URLs from an EnvironmentFile', () => {
    const settings = serviceSettings(unit);
    expect(settings.get('Type')).toBe('simple');
    expect(settings.get('KillSignal')).toBe('SIGTERM');
    expect(settings.get('EnvironmentFile')).toBe('/etc/budget-cdc/env');
    expect(settings.get('ExecStart')).toMatch(/\/budget-cdc run$/);
    // Exit 2 is a configuration error: restarting in a loop would only fill the journal.
    expect(settings.get('RestartPreventExitStatus')).toBe('2');
  });

  it.skipIf(!HAS_SYSTEMD_ANALYZE)('passes systemd-analyze verify (ExecStart pointed at a program that exists here)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'budget-cdc-systemd-'));
    try {
      // verify fails on a missing ExecStart program, and budget-cdc is not installed on this machine.
      const copy = join(dir, 'budget-cdc.service');
      writeFileSync(copy, unit.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
      const result = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('docs/systemd/budget-cdc.env', () => {
  it('gives the URLs to a shell as cron reads it (set -a; . file), quotes removed', () => {
    const printed = execFileSync('sh', ['-c', `set -a; . "$1"; printf '%s\\n' "$DATABASE_URL" "$REDIS_URL"`, 'sh', ENV_PATH], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
    });
    expect(printed.split('\n').slice(0, 2)).toEqual([
      'postgres://budget_cdc:change-me@db.internal:5432/jobs',
      'redis://budget-cdc:change-me@cache.internal:6379/0',
    ]);
  });
});
