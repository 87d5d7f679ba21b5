import type { JobFigures } from '../budget/job.js';
import type { Lsn } from '../lsn.js';
import { JobChangeDecoder, makeJobColumnRanges } from '../replication/job-changes.js';
import { readJobFigures } from '../replication/job-row.js';
import { decodePgoutput } from '../replication/pgoutput-decoder.js';
import { isPlainJobId } from '../sink/job-value.js';
import { WriteBatch } from '../sink/write-batch.js';

// The bulk-load path of a streamed transaction, taken while the transaction still runs: each Insert into jobs is
// decoded, budgeted and encoded into its SET as it arrives, and the spool keeps that SET. At the Stream Commit the
// replay only copies these commands into its batches: the decoding and encoding of a million-row COPY happen
// while PostgreSQL is still writing it, not between its COMMIT and the last key (what users wait for).
//
// Only what the byte path of ChangeApplier handles is encoded here, with the same code (locateInsert,
// readJobFigures, WriteBatch#setJob): every other change (updates, deletes, a row to set aside, a job already
// offline, a job_id JSON must escape) is spooled as its message and goes through the applier at the commit, so
// both paths write the same commands. The commands do not depend on the commit: its position (the checkpoint)
// is known only at the Stream Commit, and goes into each batch then.

const RELATION = 0x52; // R
/** The xid a change of a streamed transaction carries after its type byte. */
const STREAMED_XID_BYTES = 4;
/** The scratch batch's first size: one SET (a 3650-day job's is ~36 kB; it grows for a larger one). */
const SCRATCH_BYTES = 64 * 1024;

export class StreamEncoder {
  private readonly ranges = makeJobColumnRanges();
  private readonly figures: JobFigures = { budgetCents: 0, daysOnline: 0, createdAtMs: 0, expiresAtMs: 0 };
  /** Encodes one SET at a time: its bytes are handed out until the next call. */
  private readonly scratch = new WriteBatch('', SCRATCH_BYTES);

  constructor(private readonly keyPrefix: Buffer) {}

  /**
   * The jobs table as one streamed transaction knows it: pgoutput sends each streamed transaction the Relation
   * messages of the tables it changes, before its first change to each, and again after an ALTER TABLE in it.
   */
  newTable(): JobChangeDecoder {
    return new JobChangeDecoder();
  }

  /**
   * The SET of the streamed change at `data[offset]` (protocol 2, with its xid) when it is an Insert the byte
   * path writes as one; undefined for any other change, which the spool keeps as its message. The bytes are
   * valid until the next call. A Relation message teaches `table` the jobs table's columns.
   */
  encode(table: JobChangeDecoder, data: Buffer, offset: number, lsn: Lsn): Buffer | undefined {
    if (data[offset] === RELATION) {
      // Rare (once per table per transaction): decoded from a copy in protocol 1's layout. A malformed one teaches
      // nothing; kept as its message, the replay reports it before any change after it is written.
      try {
        const message = Buffer.concat([data.subarray(offset, offset + 1), data.subarray(offset + 1 + STREAMED_XID_BYTES)]);
        table.toJobChange(decodePgoutput(message, 0, lsn), lsn);
      } catch {
        // the replay decodes it again and says what is wrong
      }
      return undefined;
    }
    const ranges = this.ranges;
    const figures = this.figures;
    if (!table.locateInsert(data, offset, ranges, STREAMED_XID_BYTES)) return undefined;
    if (!isPlainJobId(data, ranges.jobIdStart, ranges.jobIdEnd)) return undefined;
    // A job offline already gets a DEL, by the applier. One that goes offline before the commit is replayed gets
    // its SET with an expiry in the past: Redis never serves that key, as if it were deleted.
    if (!readJobFigures(data, ranges, figures) || figures.expiresAtMs <= Date.now()) return undefined;
    const scratch = this.scratch;
    scratch.clear();
    scratch.setJob(this.keyPrefix, data, ranges.jobIdStart, ranges.jobIdEnd, figures);
    return scratch.bytes;
  }
}
