import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SingleBar } from 'cli-progress';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { redact } from '../config.js';
import { readCsvHeader, type CsvColumns } from './csv-header.js';
import { LoadError } from './load-error.js';

/** How loadCsv reports and where it reads standard input from. */
export interface LoadCsvOptions {
  /** Show a progress bar of bytes read on `stderr`; the CLI passes process.stderr.isTTY. */
  progress: boolean;
  /** Read when the source is '-'. Default process.stdin. */
  stdin?: NodeJS.ReadableStream;
  /** Where the progress bar is drawn. Default process.stderr. */
  stderr?: NodeJS.WriteStream;
}

export const STDIN_SOURCE = '-';
const APPLICATION_NAME = 'budget-cdc load';
const KIB = 1024;
const MIB = 1024 * KIB;

/**
 * Loads a CSV file (or standard input when `source` is '-') into jobs with one COPY in one transaction:
 * either every row is loaded or none. The header (job_id,days_online,budget[,created_at]) is checked
 * here; the rows are parsed by PostgreSQL only, streamed with backpressure so memory stays bounded.
 * Throws LoadError, with the file's line number when one row is at fault.
 */
export async function loadCsv(databaseUrl: string, source: string, options: LoadCsvOptions): Promise<{ rows: number }> {
  const sourceName = source === STDIN_SOURCE ? 'stdin' : source;
  const { stream, sizeBytes } = await openSource(source, options.stdin ?? process.stdin);
  const bar = options.progress ? startProgressBar(options.stderr ?? process.stderr, sourceName, sizeBytes) : undefined;
  try {
    const { columns, bytes } = await readCsvHeader(readBytes(stream, sourceName, bar), sourceName);
    const rows = await withLoadClient(databaseUrl, (client) => copyInTransaction(client, columns, bytes));
    return { rows };
  } catch (error) {
    throw toLoadError(error, sourceName);
  } finally {
    bar?.stop();
    // Closes the file when we stopped before reading it all (e.g. no connection); no-op once it has ended.
    if (stream instanceof Readable) stream.destroy();
  }
}

async function openSource(
  source: string,
  stdin: NodeJS.ReadableStream,
): Promise<{ stream: NodeJS.ReadableStream; sizeBytes: number | undefined }> {
  if (source === STDIN_SOURCE) return { stream: stdin, sizeBytes: undefined };
  try {
    const handle = await open(source, 'r');
    const { size } = await handle.stat();
    return { stream: handle.createReadStream(), sizeBytes: size };
  } catch (error) {
    throw readError(source, error);
  }
}

// The one place bytes are counted, and where a read failure (even one surfacing inside the COPY
// pipeline) becomes a "cannot read" error rather than being mistaken for a database error.
async function* readBytes(stream: NodeJS.ReadableStream, sourceName: string, bar: SingleBar | undefined): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream) {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      bar?.increment(buffer.length);
      yield buffer;
    }
  } catch (error) {
    throw readError(sourceName, error);
  }
}

async function withLoadClient<T>(databaseUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: APPLICATION_NAME });
  // A lost connection also rejects the running query, which reports it; without a listener the
  // client's own 'error' event would crash the process instead.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    throw new LoadError(`cannot connect to PostgreSQL at ${redact(databaseUrl)}: ${messageOf(error)}; check DATABASE_URL`, undefined, {
      cause: error,
    });
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

async function copyInTransaction(client: pg.Client, columns: CsvColumns, bytes: AsyncIterable<Buffer>): Promise<number> {
  // HEADER true skips the first line we already checked, so PostgreSQL counts lines as the file does.
  // The column names come from CSV_HEADERS, never from the file.
  const copy = copyFrom(`copy jobs (${columns.join(', ')}) from stdin with (format csv, header true)`);
  await client.query('begin');
  try {
    await pipeline(bytes, client.query(copy));
    await client.query('commit');
  } catch (error) {
    // If the connection is gone the server has rolled back already; report the original error.
    await client.query('rollback').catch(() => {});
    throw error;
  }
  return copy.rowCount;
}

// PostgreSQL puts the position in `where`: `COPY jobs, line 3, column days_online: "abc"`.
const COPY_POSITION = /COPY \S+, line (\d+)(?:, column ([^:\n]+))?/;

function toLoadError(error: unknown, sourceName: string): LoadError {
  if (error instanceof LoadError) return error;
  if (error instanceof pg.DatabaseError) {
    const position = COPY_POSITION.exec(error.where ?? '');
    const line = position?.[1] === undefined ? undefined : Number(position[1]);
    const notes = [position?.[2] === undefined ? undefined : `column ${position[2]}`, error.detail?.replace(/\.$/, '')].filter(
      (note) => note !== undefined && note !== '',
    );
    const text = oneLine(error.message + (notes.length > 0 ? ` (${notes.join('; ')})` : ''));
    const at = line === undefined ? sourceName : `${sourceName}, line ${line}`;
    // 42501 insufficient_privilege: the input may be fine; the role is what has to change.
    if (error.code === '42501') {
      return new LoadError(
        `${at}: ${text}; nothing was loaded: GRANT INSERT ON jobs TO this role, or load as a role that can write to jobs (the consumer's role only reads)`,
        line,
        { cause: error },
      );
    }
    return new LoadError(`${at}: ${text}; nothing was loaded, fix the input and load it again`, line, { cause: error });
  }
  return new LoadError(`${sourceName}: load failed, nothing was loaded: ${messageOf(error)}`, undefined, { cause: error });
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
};

function readError(sourceName: string, error: unknown): LoadError {
  if (error instanceof LoadError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reason = (code === undefined ? undefined : READ_ERRORS[code]) ?? messageOf(error);
  return new LoadError(`cannot read ${sourceName}: ${reason}`, undefined, { cause: error });
}

function startProgressBar(stderr: NodeJS.WriteStream, sourceName: string, sizeBytes: number | undefined): SingleBar {
  const bar = new SingleBar({
    stream: stderr,
    // Standard input has no size to measure against: show only what has been read.
    format:
      sizeBytes === undefined
        ? 'loading {name} | {value} read | {duration_formatted}'
        : 'loading {name} [{bar}] {percentage}% | {value} of {total} | ETA {eta_formatted}',
    formatValue: (value, _options, type) => (type === 'value' || type === 'total' ? formatBytes(value) : String(value)),
  });
  bar.start(sizeBytes ?? 0, 0, { name: sourceName });
  return bar;
}

function formatBytes(bytes: number): string {
  return bytes < MIB ? `${(bytes / KIB).toFixed(0)} KiB` : `${(bytes / MIB).toFixed(1)} MiB`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
