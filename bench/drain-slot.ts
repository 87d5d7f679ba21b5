// Run by the bench as a child: `node --import tsx bench/drain-slot.ts DATABASE_URL SLOT END_LSN`.
// Drains a pgoutput slot with budget-cdc's own replication connection and column locator, writing nothing
// anywhere, and prints one JSON line of timings. The ceiling of any consumer built on this reader: what
// the walsender can send to it when Redis costs nothing.
import { performance } from 'node:perf_hooks';
import { JobChangeDecoder, makeJobColumnRanges } from '../src/replication/job-changes.js';
import { parseLsn } from '../src/lsn.js';
import { decodePgoutput } from '../src/replication/pgoutput-decoder.js';
import { openReplicationConnection } from '../src/replication/replication-connection.js';
import { PUBLICATION } from './bench-context.js';

/** What the child prints. */
export interface DrainTimings {
  rows: number;
  /** From before connecting until START_REPLICATION was sent. */
  connectMs: number;
  /** From START_REPLICATION until the first row: the walsender decoding the transaction before it sends. */
  firstRowMs: number;
  /** From START_REPLICATION until the commit at or after END_LSN. */
  totalMs: number;
}

const [databaseUrl, slotName, endText] = process.argv.slice(2);
if (databaseUrl === undefined || slotName === undefined || endText === undefined) {
  process.stderr.write('usage: drain-slot.ts DATABASE_URL SLOT END_LSN\n');
  process.exit(2);
}
const endLsn = parseLsn(endText);
const connectingAt = performance.now();
const connection = await openReplicationConnection(databaseUrl, 'budget-cdc bench reader');
const decoder = new JobChangeDecoder();
const ranges = makeJobColumnRanges();
let rows = 0;
let firstRowAt: number | undefined;
const startedAt = performance.now();
await new Promise<void>((resolve, reject) => {
  connection
    .start(
      { slotName, publicationName: PUBLICATION, startLsn: 0n, messages: false },
      {
        onXLogData(data, offset, lsn) {
          if (decoder.locateInsert(data, offset, ranges)) {
            firstRowAt ??= performance.now();
            rows++;
            return;
          }
          const message = decodePgoutput(data, offset, lsn);
          decoder.toJobChange(message, lsn);
          if (message.tag === 'commit' && message.endLsn >= endLsn) resolve();
        },
        onKeepalive(_walEnd, replyRequested) {
          if (replyRequested) connection.sendStatus(0n);
        },
      },
    )
    .catch(reject);
});
const endedAt = performance.now();
const timings: DrainTimings = {
  rows,
  connectMs: startedAt - connectingAt,
  firstRowMs: (firstRowAt ?? endedAt) - startedAt,
  totalMs: endedAt - startedAt,
};
process.stdout.write(JSON.stringify(timings) + '\n');
await connection.close();
