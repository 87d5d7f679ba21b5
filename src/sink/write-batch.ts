import type { Job, JobFigures } from '../budget/job.js';
import { asciiConstant, decimalDigits, writeBytes, writeConstant, writeCrlf, writeDecimal } from './ascii-bytes.js';
import {
  isPlainJobId,
  isPlainJobIdText,
  jobValue,
  jobValueLength,
  jobValueWithDaily,
  jobValueWithDailyLength,
  writeJobValue,
  writeJobValueWithDaily,
} from './job-value.js';
import { respCommand } from './resp-connection.js';

/** How many dead letters are kept; older ones are trimmed so the list stays bounded. */
export const DEAD_LETTER_LIMIT = 10_000;
/** A batch's first buffer, unless its sink asks for another size (a cluster's batches are larger). */
const INITIAL_BYTES = 512 * 1024;
/**
 * Buffers of batches Redis has answered, for the next batches. Without reuse every batch's buffer would
 * wait for a full garbage collection to be freed (the batch object outlives the quick collections), and
 * the dead buffers would add to the consumer's peak memory.
 */
const FREE_BUFFERS = new Map<number, Buffer[]>();
const FREE_BUFFERS_KEPT = 8;
const SET_HEAD = '*5\r\n$3\r\nSET\r\n$';
const DEL_HEAD = '*2\r\n$3\r\nDEL\r\n$';
const SET_HEAD_BYTES = asciiConstant(SET_HEAD);
const PXAT_HEAD_BYTES = asciiConstant('\r\n$4\r\nPXAT\r\n$');

/**
 * The Redis commands of one batch, encoded as RESP straight into a buffer as they are added. The buffer
 * lives outside the JavaScript heap: a batch that grows over many rows leaves no strings behind for the
 * garbage collector to promote and sweep, which would keep the consumer's memory high.
 */
export class WriteBatch {
  protected buffer: Buffer;
  /** Bytes used in the buffer. */
  length = 0;
  commands = 0;
  private readonly trimCommand: string;

  constructor(
    private readonly deadLetterKey: string,
    /** The buffer's first size, and the size class of the free buffers it takes and gives back. */
    private readonly initialBytes = INITIAL_BYTES,
  ) {
    let free = FREE_BUFFERS.get(initialBytes);
    if (free === undefined) FREE_BUFFERS.set(initialBytes, (free = []));
    this.buffer = free.pop() ?? Buffer.allocUnsafe(initialBytes);
    this.trimCommand = respCommand(['LTRIM', deadLetterKey, '0', String(DEAD_LETTER_LIMIT - 1)]);
  }

  /** Gives the buffer back for reuse: call only once Redis answered (or the connection is gone). */
  release(): void {
    const free = FREE_BUFFERS.get(this.initialBytes)!;
    if (free.length < FREE_BUFFERS_KEPT && this.buffer.length <= 4 * this.initialBytes) free.push(this.buffer);
    this.buffer = EMPTY;
    this.length = 0;
  }

  /** The encoded commands (a view of the buffer, valid until the next write). */
  get bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  /** SET key value PXAT expiresAtMs: an absolute expiry, so writing the same job again never extends its life. */
  set(key: string, value: string, expiresAtMs: number): void {
    const keyBytes = Buffer.byteLength(key);
    const valueBytes = Buffer.byteLength(value);
    const expiry = String(expiresAtMs);
    this.reserve(keyBytes + valueBytes + expiry.length + 64);
    // One write per command: each Buffer#write call costs more than the short-lived string it saves.
    this.utf8(
      SET_HEAD +
        keyBytes +
        '\r\n' +
        key +
        '\r\n$' +
        valueBytes +
        '\r\n' +
        value +
        '\r\n$4\r\nPXAT\r\n$' +
        expiry.length +
        '\r\n' +
        expiry +
        '\r\n',
    );
    this.commands++;
  }

  /**
   * SET <keyPrefix><job_id> <value of job> PXAT <expiry>, written straight into the buffer: the job_id is
   * `source[start, end)`, which must be a plain job_id (isPlainJobId), so that the same bytes serve the
   * key and the JSON. The same command as set(key, jobValue(job), job.expiresAtMs), without its strings.
   */
  setJob(keyPrefix: Buffer, source: Buffer, start: number, end: number, job: JobFigures): void {
    const keyBytes = keyPrefix.length + end - start;
    const valueBytes = jobValueLength(job, end - start);
    this.reserve(keyBytes + valueBytes + 64);
    const buffer = this.buffer;
    let at = writeConstant(buffer, this.length, SET_HEAD_BYTES);
    at = writeDecimal(buffer, at, keyBytes);
    at = writeCrlf(buffer, at);
    at = writeConstant(buffer, at, keyPrefix);
    at = writeBytes(buffer, at, source, start, end);
    at = writeCrlf(buffer, at);
    at = writeBulkLength(buffer, at, valueBytes);
    at = writeJobValue(buffer, at, job, source, start, end);
    this.length = writeExpiry(buffer, at, job.expiresAtMs);
    this.commands++;
  }

  /** The SET of a job read as text (a resync, the general path of the stream): the same command as setJob. */
  setJobOf(keyPrefix: Buffer, job: Job): void {
    const jobId = Buffer.from(job.jobId);
    if (isPlainJobId(jobId, 0, jobId.length)) this.setJob(keyPrefix, jobId, 0, jobId.length, job);
    else this.set(keyPrefix.toString() + job.jobId, jobValue(job), job.expiresAtMs);
  }

  /**
   * SET of a job whose daily amounts came from a distribution service (cents, checked): written straight into
   * the buffer as setJob does when the job_id is plain (isPlainJobIdText), through strings otherwise.
   */
  setJobWithDaily(keyPrefix: Buffer, job: Job, dailyCents: readonly number[]): void {
    const { jobId } = job;
    if (!isPlainJobIdText(jobId)) {
      this.set(keyPrefix.toString() + jobId, jobValueWithDaily(job, dailyCents), job.expiresAtMs);
      return;
    }
    // A plain job_id is printable ASCII: as many bytes as characters, written as latin1.
    const keyBytes = keyPrefix.length + jobId.length;
    const valueBytes = jobValueWithDailyLength(job, jobId.length, dailyCents);
    this.reserve(keyBytes + valueBytes + 64);
    const buffer = this.buffer;
    let at = writeConstant(buffer, this.length, SET_HEAD_BYTES);
    at = writeDecimal(buffer, at, keyBytes);
    at = writeCrlf(buffer, at);
    at = writeConstant(buffer, at, keyPrefix);
    const jobIdStart = at;
    at += buffer.write(jobId, at, 'latin1');
    const jobIdEnd = at;
    at = writeCrlf(buffer, at);
    at = writeBulkLength(buffer, at, valueBytes);
    // The value's job_id is the key's bytes just written: the buffer is its own source.
    at = writeJobValueWithDaily(buffer, at, job, buffer, jobIdStart, jobIdEnd, dailyCents);
    this.length = writeExpiry(buffer, at, job.expiresAtMs);
    this.commands++;
  }

  del(key: string): void {
    const keyBytes = Buffer.byteLength(key);
    this.reserve(keyBytes + 32);
    this.utf8(DEL_HEAD + keyBytes + '\r\n' + key + '\r\n');
    this.commands++;
  }

  /** LPUSH the entry to the dead letters and LTRIM them to the newest DEAD_LETTER_LIMIT. */
  deadLetter(entry: string): void {
    const text = respCommand(['LPUSH', this.deadLetterKey, entry]) + this.trimCommand;
    this.reserve(Buffer.byteLength(text));
    this.utf8(text);
    this.commands += 2;
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  private utf8(text: string): void {
    this.length += this.buffer.write(text, this.length, 'utf8');
  }
}

const EMPTY = Buffer.alloc(0);

/** `$<length>\r\n`, the head of a bulk string. */
function writeBulkLength(buffer: Buffer, at: number, length: number): number {
  buffer[at++] = 0x24; // $
  at = writeDecimal(buffer, at, length);
  return writeCrlf(buffer, at);
}

/** `\r\n$4\r\nPXAT\r\n$<digits>\r\n<expiresAtMs>\r\n`: the end of a job's SET, after its value. */
function writeExpiry(buffer: Buffer, at: number, expiresAtMs: number): number {
  at = writeConstant(buffer, at, PXAT_HEAD_BYTES);
  at = writeDecimal(buffer, at, decimalDigits(expiresAtMs));
  at = writeCrlf(buffer, at);
  at = writeDecimal(buffer, at, expiresAtMs);
  return writeCrlf(buffer, at);
}
