import type { BenchContext } from './bench-context.js';
import { measureCatchUp, type CatchUpOptions, type CatchUpRun } from './measure-catch-up.js';
import { startPsqlCopy } from './postgres-programs.js';
import type { RedisUnderTest } from './redis-under-test.js';

/** Options of `measureEndToEnd`. */
export interface EndToEndOptions {
  /** Names the database, slot and key prefix; default 'e2e'. */
  purpose?: string;
  /** Added to the consumer's environment; default none. */
  consumerEnv?: Record<string, string>;
  /** Where the consumer writes; default the bench's own Redis. */
  redis?: RedisUnderTest;
  /** A further check of Redis after the run (CatchUpOptions#check); default none. */
  check?: CatchUpOptions['check'];
}

/** `budget-cdc run` catching up with a `psql \copy` of the generated CSV: the "end to end" measurement. */
export function measureEndToEnd(context: BenchContext, options: EndToEndOptions = {}): Promise<CatchUpRun> {
  return measureCatchUp(context, {
    purpose: options.purpose ?? 'e2e',
    rows: context.rows,
    consumerEnv: options.consumerEnv,
    redis: options.redis,
    check: options.check,
    fill: async (databaseUrl) => {
      await startPsqlCopy(databaseUrl, context.csvPath).succeeded();
    },
  });
}
