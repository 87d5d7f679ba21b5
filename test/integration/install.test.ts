import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The package as a user installs it, outside the clone: `npm pack`, then `npm install -g` of the tarball, then
// `budget-cdc` from PATH. It must run the compiled dist/: tsx is a dev dependency and src/ is not shipped.
// The runtime dependencies come from the npm cache when it holds them (--prefer-offline), else from the
// registry, which must then be reachable.

const SECOND = 1000;
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** What `npm pack` needs from the clone: the packed files and the build's inputs. */
const PACK_INPUTS = ['package.json', 'package-lock.json', 'README.md', 'bin', 'db', 'src', 'tsconfig.json', 'tsconfig.build.json'];
const PACK_TIMEOUT_MS = 60 * SECOND;
const INSTALL_TIMEOUT_MS = 60 * SECOND;
/** Settings the parent's environment might hold (`npm test` exports its own npm_config_*: prefix, global, …). */
const INHERITED_SETTING = /^(DATABASE_URL|REDIS_URL|LOG_LEVEL|PG_BIN|BUDGET_CDC_.*|npm_.*)$/i;

const run = promisify(execFile);

describe('npm pack, then npm install -g of the tarball', () => {
  let root: string;
  let prefix: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'budget-cdc-install-'));
    prefix = join(root, 'prefix');
    env = {};
    for (const [name, value] of Object.entries(process.env)) if (!INHERITED_SETTING.test(name)) env[name] = value;
    env.PATH = `${join(prefix, 'bin')}:${process.env.PATH ?? ''}`;
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
  });

  it(
    'installs budget-cdc on PATH, running dist/ without tsx or src/',
    async () => {
      // Packed from a copy: prepack rebuilds dist/, which must not happen under the other tests' feet.
      const clone = join(root, 'clone');
      await mkdir(clone);
      for (const input of PACK_INPUTS) await cp(join(REPO_ROOT, input), join(clone, input), { recursive: true });
      await symlink(join(REPO_ROOT, 'node_modules'), join(clone, 'node_modules'));
      await run('npm', ['pack', '--pack-destination', root], { cwd: clone, env, timeout: PACK_TIMEOUT_MS });
      const tarballs = (await readdir(root)).filter((name) => /^budget-cdc-.*\.tgz$/.test(name));
      expect(tarballs).toHaveLength(1);

      const tarball = join(root, tarballs[0]!);
      await run('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], {
        cwd: root,
        env,
        timeout: INSTALL_TIMEOUT_MS,
      }).catch((error: unknown) => {
        const stderr = (error as { stderr?: string }).stderr ?? '';
        throw new Error(`npm install -g ${tarball} failed (its dependencies come from the npm cache or registry): ${stderr}`, {
          cause: error,
        });
      });

      const installed = join(prefix, 'lib', 'node_modules', 'budget-cdc');
      expect(existsSync(join(installed, 'dist', 'cli.js'))).toBe(true);
      expect(existsSync(join(installed, 'db', 'migrations', '0001_create_jobs.sql'))).toBe(true);
      expect(existsSync(join(installed, 'src'))).toBe(false);
      expect(existsSync(join(installed, 'node_modules', 'tsx'))).toBe(false);
      const manifest = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
      expect(Object.keys(manifest.dependencies)).not.toContain('tsx');

      // `budget-cdc` found on PATH, from a folder that is not the clone.
      const help = await run('budget-cdc', ['--help'], { cwd: root, env, timeout: 30 * SECOND });
      expect(help.stdout).toMatch(/^usage: budget-cdc <command>/);
      expect(help.stderr).toBe('');
      // A command that opens the configuration and fails on it: the whole CLI loads from dist/.
      const status = await run('budget-cdc', ['status'], { cwd: root, env, timeout: 30 * SECOND }).catch(
        (error: unknown) => error as { code: number; stderr: string },
      );
      expect(status).toMatchObject({ code: 2 });
      expect((status as { stderr: string }).stderr).toContain('DATABASE_URL');
    },
    PACK_TIMEOUT_MS + INSTALL_TIMEOUT_MS + 30 * SECOND,
  );
});
