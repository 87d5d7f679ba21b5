import { execFileSync, type SpawnOptions } from 'node:child_process';
import { chownSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SetupError } from '../errors.js';

/** The user a server runs as, when it is not us. */
export interface ProcessOwner {
  uid: number;
  gid: number;
}

/**
 * The `postgres` user when we are root, because PostgreSQL refuses to run as root; undefined otherwise.
 * Throws SetupError, saying what to do, when we are root and there is no such user.
 */
export function postgresOwner(): ProcessOwner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch (error) {
    throw new SetupError(
      'running as root, and PostgreSQL refuses to run as root, but there is no "postgres" user to run it as: ' +
        'install PostgreSQL from your distribution (which creates that user), create one (useradd --system postgres), or run as another user',
      { cause: error },
    );
  }
}

/** Gives a folder and everything in it to `owner`. */
export function chownTree(path: string, owner: ProcessOwner): void {
  chownSync(path, owner.uid, owner.gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) chownTree(join(path, entry.name), owner);
    else chownSync(join(path, entry.name), owner.uid, owner.gid);
  }
}

/** spawn() options that run the child as `owner` (when given) in `cwd`, a folder that user may enter. */
export function spawnAs(cwd: string, owner: ProcessOwner | undefined): SpawnOptions {
  return owner ? { cwd, uid: owner.uid, gid: owner.gid } : { cwd };
}
