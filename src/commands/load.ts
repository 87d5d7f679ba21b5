import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import { loadCsv } from '../load/load-csv.js';
import { EXIT_OK } from './exit-codes.js';

/** `budget-cdc load <file.csv | ->`: one COPY in one transaction; prints the row count. */
export async function loadCommand(config: Config, args: string[]): Promise<number> {
  const [source, ...extra] = args;
  if (source === undefined || extra.length > 0) {
    throw new ConfigError('load', 'load takes one argument: a CSV file, or - for standard input');
  }
  const { rows } = await loadCsv(config.databaseUrl, source, { progress: process.stderr.isTTY === true });
  process.stdout.write(`loaded ${rows} rows\n`);
  return EXIT_OK;
}
