#!/usr/bin/env node
// Runs the compiled dist/ when it was built from the current sources (npm ci builds it: the "prepare"
// script), else the TypeScript sources through tsx. Both are the same code; dist/ starts faster and uses
// about 30 MB less memory, which matters for a long-running consumer.
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function newestSourceMs(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    newest = Math.max(newest, entry.isDirectory() ? newestSourceMs(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function distIsCurrent() {
  try {
    return statSync(`${root}dist/cli.js`).mtimeMs >= newestSourceMs(`${root}src`);
  } catch {
    return false;
  }
}

let main;
if (distIsCurrent()) {
  ({ main } = await import('../dist/cli.js'));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli.ts'));
}
// Exit as soon as the command is done: a Redis client's reconnect or disconnect timer must not keep a
// finished command alive. stdout and stderr are synchronous for files and pipes on Linux.
process.exit(await main(process.argv.slice(2)));
