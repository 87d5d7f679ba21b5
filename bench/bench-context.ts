import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

/** The CLI as a user runs it: `node bin/budget-cdc.js`. */
export const CLI = fileURLToPath(new URL('../bin/budget-cdc.js', import.meta.url));
/** The publication every measurement uses: the default, so that pg_recvlogical reads what the consumer reads. */
export const PUBLICATION = 'budget_cdc';

/** What every measurement shares: the throwaway servers, the generated CSV and the progress log. */
export interface BenchContext {
  /** Superuser URL of the bench PostgreSQL; each measurement creates a database of its own. */
  adminUrl: string;
  redisUrl: string;
  /** A client of the bench Redis, for checks and for FLUSHALL between measurements. */
  redis: Redis;
  /** Rows of the generated CSV (--rows). */
  rows: number;
  /** The generated CSV of `rows` jobs. */
  csvPath: string;
  /** One progress line on stderr. */
  log(line: string): void;
}
