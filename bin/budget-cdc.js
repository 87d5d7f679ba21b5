#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npx budget-cdc` works right after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
// Exit as soon as the command is done: a Redis client's reconnect or disconnect timer must not keep a
// finished command alive. stdout and stderr are synchronous for files and pipes on Linux.
process.exit(await main(process.argv.slice(2)));
