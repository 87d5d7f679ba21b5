import { randomBytes } from 'node:crypto';
import { BenchChild } from './bench-child.js';
import { PUBLICATION, type BenchContext } from './bench-context.js';
import { createPgoutputSlot, currentWalInsertLsn, withPgClient } from './bench-sql.js';
import { withFreshDatabase } from './fresh-database.js';
import { postgresProgram, startPsqlCopy } from './postgres-programs.js';

/**
 * The reference: a pgoutput slot created before a COPY of the CSV, drained after the commit by pg_recvlogical
 * (proto_version 1, our publication) to /dev/null up to the COPY's end. Seconds from spawn to exit.
 */
export async function measureRecvlogical(context: BenchContext): Promise<number> {
  return withFreshDatabase(context.adminUrl, 'bench_reference', { migrated: true }, (databaseUrl) =>
    withPgClient(databaseUrl, async (client) => {
      const slot = `bench_reference_${randomBytes(4).toString('hex')}`;
      await createPgoutputSlot(client, slot);
      await startPsqlCopy(databaseUrl, context.csvPath).succeeded();
      const endLsn = await currentWalInsertLsn(client);
      const args = ['-d', databaseUrl, '--slot', slot, '--start', '-o', 'proto_version=1', '-o', `publication_names=${PUBLICATION}`];
      args.push('--endpos', endLsn, '-f', '/dev/null', '--no-loop');
      return new BenchChild('pg_recvlogical', postgresProgram('pg_recvlogical'), args).succeeded();
    }),
  );
}
