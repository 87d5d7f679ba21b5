import { BenchChild } from './bench-child.js';
import { CLI, type BenchContext } from './bench-context.js';
import { countJobs, withPgClient } from './bench-sql.js';
import { withFreshDatabase } from './fresh-database.js';
import { startPsqlCopy } from './postgres-programs.js';
import { rowsPerSecond } from './stats.js';

/** The loaders compared: psql's client-side COPY, and ours. */
export type Loader = 'psql \\copy' | 'budget-cdc load';

/** Seconds from spawn to exit of each loader, `samples` times each, alternating, each into a fresh table. */
export async function measureLoad(context: BenchContext, samples: number): Promise<Record<Loader, number[]>> {
  const seconds: Record<Loader, number[]> = { 'psql \\copy': [], 'budget-cdc load': [] };
  for (let sample = 1; sample <= samples; sample++) {
    for (const loader of ['psql \\copy', 'budget-cdc load'] as const) {
      const taken = await timeLoad(context, loader);
      seconds[loader].push(taken);
      context.log(`load ${sample}/${samples}, ${loader}: ${taken.toFixed(2)} s, ${rowsPerSecond(context.rows, taken)}`);
    }
  }
  return seconds;
}

async function timeLoad(context: BenchContext, loader: Loader): Promise<number> {
  return withFreshDatabase(context.adminUrl, 'bench_load', { migrated: true }, async (databaseUrl) => {
    const child =
      loader === 'psql \\copy'
        ? startPsqlCopy(databaseUrl, context.csvPath)
        : new BenchChild(loader, process.execPath, [CLI, 'load', context.csvPath], { env: { DATABASE_URL: databaseUrl } });
    const seconds = await child.succeeded();
    // A loader that exits 0 having loaded nothing would look very fast.
    const loaded = await withPgClient(databaseUrl, countJobs);
    if (loaded !== context.rows) throw new Error(`${loader} loaded ${loaded} rows instead of ${context.rows}`);
    return seconds;
  });
}
