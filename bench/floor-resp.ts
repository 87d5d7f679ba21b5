import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { expiryOf } from '../src/budget/job.js';
import { parseCents } from '../src/replication/money-text.js';
import { WriteBatch } from '../src/sink/write-batch.js';
import { JOBS_CSV_HEADER } from './jobs-csv.js';

/** Encoded commands are written to the file in pieces of about this size. */
const FLUSH_BYTES = 4 * 1024 * 1024;

/**
 * Writes to `respPath` the RESP of the SETs the consumer makes for the rows of `csvPath` (a jobsCsv file) under
 * `keyPrefix`: `SET <prefix><job_id> <value> PXAT <expiry>`, encoded by the consumer's own WriteBatch, in the
 * CSV's order. Returns the commands and bytes written.
 */
export async function writeFloorResp(csvPath: string, respPath: string, keyPrefix: string): Promise<{ commands: number; bytes: number }> {
  const prefix = Buffer.from(keyPrefix);
  const output = createWriteStream(respPath);
  const lines = createInterface({ input: createReadStream(csvPath), crlfDelay: Infinity });
  let batch = new WriteBatch('bench:floor:dead-letters');
  let commands = 0;
  let bytes = 0;
  let header = true;
  const flush = async (): Promise<void> => {
    // A copy: the batch's buffer goes back to WriteBatch's free list for the next batch.
    const piece = Buffer.from(batch.bytes);
    commands += batch.commands;
    bytes += piece.length;
    batch.release();
    batch = new WriteBatch('bench:floor:dead-letters');
    if (!output.write(piece)) await once(output, 'drain');
  };
  for await (const line of lines) {
    if (header) {
      if (line !== JOBS_CSV_HEADER) throw new Error(`${csvPath} does not start with the jobs CSV header: ${line}`);
      header = false;
      continue;
    }
    const [jobId, days, budget, createdAt] = line.split(',') as [string, string, string, string];
    const daysOnline = Number(days);
    const budgetCents = parseCents(budget);
    const createdAtMs = Date.parse(createdAt);
    if (budgetCents === undefined || Number.isNaN(createdAtMs)) throw new Error(`${csvPath}: a line the bench did not write: ${line}`);
    batch.setJobOf(prefix, { jobId, budgetCents, daysOnline, createdAtMs, expiresAtMs: expiryOf(createdAtMs, daysOnline) });
    if (batch.length >= FLUSH_BYTES) await flush();
  }
  await flush();
  output.end();
  await once(output, 'finish');
  return { commands, bytes };
}
