import { parse as parseCsv } from 'csv-parse/sync';
import { LoadError } from './load-error.js';

/** The column lists a load file may start with, in this order; created_at is optional (default now()). */
export const CSV_HEADERS = [
  ['job_id', 'days_online', 'budget'],
  ['job_id', 'days_online', 'budget', 'created_at'],
] as const;

export type CsvColumns = (typeof CSV_HEADERS)[number];

// A header longer than this cannot be one of ours; stop before reading a huge single-line file into memory.
const MAX_HEADER_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

export interface CsvHeader {
  /** The columns named by the header, safe to put in SQL: they are one of CSV_HEADERS. */
  columns: CsvColumns;
  /** Every byte of the source, header included, so that PostgreSQL's line numbers are the file's. */
  bytes: AsyncIterable<Buffer>;
}

/**
 * Reads the source up to its first newline and checks that line against CSV_HEADERS. The chunks read
 * are given back in front of the rest of the source, which is not read further here.
 * Throws LoadError (line 1) naming the expected headers; the source is then destroyed.
 */
export async function readCsvHeader(source: AsyncIterable<Buffer>, sourceName: string): Promise<CsvHeader> {
  const iterator = source[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headBytes = 0;
  let newlineAt = -1;
  try {
    while (newlineAt === -1 && headBytes <= MAX_HEADER_BYTES) {
      const next = await iterator.next();
      if (next.done === true) break;
      const chunk = next.value;
      const found = chunk.indexOf(NEWLINE);
      if (found !== -1) newlineAt = headBytes + found;
      head.push(chunk);
      headBytes += chunk.length;
    }
    const firstLine = Buffer.concat(head, headBytes)
      .subarray(0, newlineAt === -1 ? Math.min(headBytes, MAX_HEADER_BYTES) : newlineAt)
      .toString('utf8');
    const columns = matchHeader(firstLine);
    if (columns === undefined) {
      throw new LoadError(headerMessage(sourceName, firstLine, headBytes === 0), 1);
    }
    return { columns, bytes: concatenate(head, iterator) };
  } catch (error) {
    await iterator.return?.();
    throw error;
  }
}

/**
 * The header read as CSV, the way PostgreSQL's COPY reads the rows: quoted names (Python's QUOTE_ALL, R's
 * write.csv), a byte order mark and a CRLF line end are all the same header.
 */
function matchHeader(line: string): CsvColumns | undefined {
  let names: string[];
  try {
    const records = parseCsv(line, { bom: true, record_delimiter: ['\r\n', '\n', '\r'] }) as string[][];
    if (records.length !== 1) return undefined;
    names = records[0]!;
  } catch {
    return undefined; // not CSV at all (an unclosed quote): the message shows the line
  }
  return CSV_HEADERS.find((columns) => columns.length === names.length && columns.every((column, i) => column === names[i]));
}

function headerMessage(sourceName: string, firstLine: string, empty: boolean): string {
  const expected = CSV_HEADERS.map((columns) => `"${columns.join(',')}"`).join(' or ');
  const got = empty ? 'the input is empty' : `got ${JSON.stringify(shorten(firstLine))}`;
  return `${sourceName}, line 1: the first line must be the header ${expected}; ${got}`;
}

function shorten(text: string): string {
  const MAX_SHOWN = 80;
  return text.length > MAX_SHOWN ? text.slice(0, MAX_SHOWN) + '...' : text;
}

async function* concatenate(head: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield* head;
  // yield* closes `rest` (destroying the stream) when the consumer stops early, e.g. a failed pipeline.
  yield* { [Symbol.asyncIterator]: () => rest };
}
