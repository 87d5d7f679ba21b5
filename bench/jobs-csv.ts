import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const HOUR_MS = 60 * 60 * 1000;
const ROWS_PER_CHUNK = 10_000;

/** The CSV header `budget-cdc load` and psql \copy both read. */
export const JOBS_CSV_HEADER = 'job_id,days_online,budget,created_at';

/**
 * The CSV text of `rows` jobs, header first, in chunks of 10,000 lines. Each job is created within the hour
 * before `now` and stays online 1 to 30 days, so every key is alive for at least 23 hours; budgets have cents.
 */
export function* jobsCsv(rows: number, now = Date.now()): Generator<string> {
  yield JOBS_CSV_HEADER + '\n';
  let chunk = '';
  for (let i = 0; i < rows; i++) {
    const createdAt = new Date(now - ((i * 7919) % HOUR_MS)).toISOString();
    const budget = `${(i * 104_729) % 100_000}.${String(i % 100).padStart(2, '0')}`;
    chunk += `${jobId(i)},${1 + (i % 30)},${budget},${createdAt}\n`;
    if ((i + 1) % ROWS_PER_CHUNK === 0) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk !== '') yield chunk;
}

/** The job_id of row `i` of `jobsCsv`. */
export function jobId(i: number): string {
  return `bench-${i}`;
}

/** Streams `jobsCsv(rows)` to a file, with backpressure: memory stays flat whatever the row count. */
export async function writeJobsCsv(path: string, rows: number): Promise<void> {
  await pipeline(Readable.from(jobsCsv(rows)), createWriteStream(path));
}
