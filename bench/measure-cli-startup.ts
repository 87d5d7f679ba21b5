import { BenchChild } from './bench-child.js';
import { CLI } from './bench-context.js';

/**
 * Seconds from spawn to exit of `node bin/budget-cdc.js --help`: what every CLI command pays before its
 * first byte of work (node, the TypeScript loader, the imports), and so part of the load and end-to-end times.
 */
export async function measureCliStartup(): Promise<number> {
  return new BenchChild('budget-cdc --help', process.execPath, [CLI, '--help']).succeeded();
}
