import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { BenchChild } from './bench-child.js';
import type { BenchContext } from './bench-context.js';
import { createPgoutputSlot, currentWalInsertLsn, withPgClient } from './bench-sql.js';
import type { DrainTimings } from './drain-slot.js';
import { withFreshDatabase } from './fresh-database.js';
import { startPsqlCopy } from './postgres-programs.js';

const DRAIN_SLOT = fileURLToPath(new URL('./drain-slot.ts', import.meta.url));

/**
 * The ceiling of a Node consumer: a slot created before a COPY of the CSV, drained after the commit by
 * budget-cdc's replication connection and column locator alone (bench/drain-slot.ts), with no Redis. The
 * child times itself from connecting, so tsx's start-up is not counted.
 */
export async function measureReaderAlone(context: BenchContext): Promise<DrainTimings & { seconds: number }> {
  return withFreshDatabase(context.adminUrl, 'bench_reader', { migrated: true }, (databaseUrl) =>
    withPgClient(databaseUrl, async (client) => {
      const slot = `bench_reader_${randomBytes(4).toString('hex')}`;
      await createPgoutputSlot(client, slot);
      await startPsqlCopy(databaseUrl, context.csvPath).succeeded();
      const endLsn = await currentWalInsertLsn(client);
      const child = new BenchChild('drain-slot', process.execPath, ['--import', 'tsx', DRAIN_SLOT, databaseUrl, slot, endLsn]);
      await child.succeeded();
      const line = child.outputTail().trim().split('\n').at(-1) ?? '';
      const timings = JSON.parse(line) as DrainTimings;
      if (timings.rows !== context.rows) throw new Error(`drain-slot read ${timings.rows} rows of a COPY of ${context.rows}`);
      return { ...timings, seconds: (timings.connectMs + timings.totalMs) / 1000 };
    }),
  );
}
