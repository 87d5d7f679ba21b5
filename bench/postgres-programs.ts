import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { postgresBinDir } from '../test/support/postgres-server.js';
import { BenchChild } from './bench-child.js';
import { jobsCsv } from './jobs-csv.js';

const COPY_COLUMNS = 'jobs(job_id,days_online,budget,created_at)';

/** A PostgreSQL client program: from the server's bin directory when it is there, else from PATH. */
export function postgresProgram(name: 'psql' | 'pg_recvlogical'): string {
  const path = join(postgresBinDir(), name);
  return existsSync(path) ? path : name;
}

/** Starts `psql \copy` of a CSV file (with header) into jobs; time it with `succeeded()`. */
export function startPsqlCopy(databaseUrl: string, csvPath: string): BenchChild {
  if (csvPath.includes("'")) throw new Error(`psql \\copy cannot take a path with a quote: ${csvPath}`);
  return psql(databaseUrl, `\\copy ${COPY_COLUMNS} from '${csvPath}' with (format csv, header true)`);
}

/** Loads `rows` generated jobs with `psql \copy` from standard input, in one transaction, without a file. */
export async function psqlCopyGenerated(databaseUrl: string, rows: number): Promise<void> {
  const child = psql(databaseUrl, `\\copy ${COPY_COLUMNS} from pstdin with (format csv, header true)`, 'pipe');
  try {
    await pipeline(Readable.from(jobsCsv(rows)), child.process.stdin!);
  } catch (error) {
    // psql went away mid-stream (EPIPE): its own message says why.
    await child.exited;
    throw new Error(`psql \\copy from standard input failed: ${(error as Error).message}${child.outputTail()}`, { cause: error });
  }
  await child.succeeded();
}

function psql(databaseUrl: string, command: string, stdin: 'ignore' | 'pipe' = 'ignore'): BenchChild {
  return new BenchChild('psql \\copy', postgresProgram('psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', databaseUrl, '-c', command], {
    stdin,
  });
}
