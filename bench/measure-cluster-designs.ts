// npx tsx bench/measure-cluster-designs.ts [--rows N] [--runs N]
// Redis Cluster (issue 12) refuses a transaction whose keys lie in several hash slots, so today's batch (one
// MULTI of every SET plus the checkpoint) cannot stay as it is. This measures what the candidate designs cost
// Redis, on one throwaway redis-server so that the figures are the per-command cost and not the network:
//   (a) today: per batch, MULTI, one SET … PXAT per row, SET <checkpoint> <text> XX GET, EXEC;
//   (b) a checkpoint per hash slot: the batch's rows grouped by slot, one such transaction per touched slot,
//       with a checkpoint key whose hash tag lies in that slot;
//   (c) a fence per key: one EVALSHA per row of a compare-and-set script that writes the job and its fence key
//       ("lsn#index", same slot through a hash tag) only when the change is newer than the fence.
// Each design runs at several batch sizes, first on an empty Redis (new keys) and then again over the same
// keys with a later LSN (overwrite). All RESP is encoded before the clock starts; Redis's CPU is read from
// INFO cpu (used_cpu_user + used_cpu_sys) before and after; every reply is checked, as are Redis's own command
// counts and the key count. Progress on stderr, the table on stdout.
import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { expiryOf, type Job } from '../src/budget/job.js';
import { parseLsn, type Lsn } from '../src/lsn.js';
import { formatCheckpoint } from '../src/sink/checkpoint.js';
import { HASH_SLOTS, hashSlot } from '../src/sink/hash-slot.js';
import { checkpointKey } from '../src/sink/internal-keys.js';
import { jobValue } from '../src/sink/job-value.js';
import { respCommand } from '../src/sink/resp-connection.js';
import { startRedis, type RedisServer } from '../test/support/redis-server.js';
import { median } from './stats.js';

const SECOND = 1000;
const HOUR_MS = 3600 * SECOND;
const MIB = 1024 * 1024;
const DEFAULT_ROWS = 1_000_000;
const DEFAULT_RUNS = 3;
/** One Buffer holds a pass's encoded commands; Node caps a Buffer at 4 GiB, about 8 million rows. */
const MAX_ROWS = 4_000_000;
const BATCH_ROWS = [1000, 3000, 10_000, 30_000] as const;
/** Bytes written and not yet answered: enough to keep Redis busy, bounded so its query buffer stays small. */
const MAX_IN_FLIGHT_BYTES = 16 * MIB;
const KEY_PREFIX = 'job:';
const WRITER = '4f3a9c1e';
/** Every row is a change of one COPY transaction, committed at this LSN (its index is the row number). */
const COMMIT_LSN: Record<Pass, Lsn> = { 'new keys': parseLsn('16/B374D848'), overwrite: parseLsn('16/C0000000') };
const EXIT_USAGE = 2;
const USAGE =
  'usage: npx tsx bench/measure-cluster-designs.ts [--rows N] [--runs N]\n' +
  `       --rows: rows per pass, default ${DEFAULT_ROWS}, at most ${MAX_ROWS}\n` +
  `       --runs: samples of each measurement, medians reported; default ${DEFAULT_RUNS}\n`;

// The fence holds "<commit LSN>#<index>", the LSN in decimal. Lua numbers are doubles: exact up to 2^53, which
// WAL positions of this bench are far below; a production script would compare fixed-width hex text instead.
const FENCE_SCRIPT = `
local fence = redis.call('GET', KEYS[2])
if fence then
  local hash = string.find(fence, '#', 1, true)
  local lsn = tonumber(string.sub(fence, 1, hash - 1))
  local index = tonumber(string.sub(fence, hash + 1))
  local newLsn = tonumber(ARGV[1])
  if lsn > newLsn or (lsn == newLsn and index >= tonumber(ARGV[2])) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[3], 'PXAT', ARGV[4])
redis.call('SET', KEYS[2], ARGV[1] .. '#' .. ARGV[2], 'PXAT', ARGV[4])
return 1
`;

const DESIGNS = ['a', 'b', 'c'] as const;
type Design = (typeof DESIGNS)[number];
const DESIGN_NAMES: Record<Design, string> = {
  a: '(a) MULTI per batch',
  b: '(b) MULTI per slot',
  c: '(c) EVALSHA per key',
};
const PASSES = ['new keys', 'overwrite'] as const;
type Pass = (typeof PASSES)[number];

let rows = DEFAULT_ROWS;
let runs = DEFAULT_RUNS;
try {
  const { values } = parseArgs({ options: { rows: { type: 'string' }, runs: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  rows = Number(values.rows ?? DEFAULT_ROWS);
  runs = Number(values.runs ?? DEFAULT_RUNS);
  if (!Number.isSafeInteger(rows) || rows < 1 || rows > MAX_ROWS) throw new Error(`--rows must be an integer from 1 to ${MAX_ROWS}`);
  if (!Number.isSafeInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  process.exit(EXIT_USAGE);
}

const startedAt = performance.now();
function log(line: string): void {
  const elapsed = ((performance.now() - startedAt) / SECOND).toFixed(1).padStart(6);
  process.stderr.write(`[${elapsed} s] ${line}\n`);
}

// ---- the rows ------------------------------------------------------------------------------------------------

const now = Date.now();

/** Distinct, random-looking integers (a multiplicative hash of the row number, a bijection on 32 bits). */
function jobIdOf(row: number): string {
  return String(1_000_000_000 + (Math.imul(row, 0x9e3779b1) >>> 0));
}

/** Row `row` as the sink would write it: 1 to 30 days online like the bench's CSV, a value of ~300 bytes. */
function jobOf(row: number, pass: Pass): Job {
  const createdAtMs = now - ((row * 7919) % HOUR_MS);
  const daysOnline = 1 + (row % 30);
  const budgetCents = ((row * 104_729) % 10_000_000) + (pass === 'overwrite' ? 100 : 0);
  return { jobId: jobIdOf(row), budgetCents, daysOnline, createdAtMs, expiresAtMs: expiryOf(createdAtMs, daysOnline) };
}

const jobKeyOf = (row: number): string => KEY_PREFIX + jobIdOf(row);
/** The fence of a job key: the key itself as the hash tag, so both lie in one slot. */
const fenceKeyOf = (jobKey: string): string => `{${jobKey}}f`;

/** One command per row, back to back in one Buffer; row r is bytes [offsets[r], offsets[r + 1]). */
interface EncodedRows {
  bytes: Buffer;
  offsets: Float64Array;
}

class BufferBuilder {
  private buffer = Buffer.allocUnsafe(64 * MIB);
  length = 0;

  append(text: string): void {
    const size = Buffer.byteLength(text);
    if (this.length + size > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + size));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    this.length += this.buffer.write(text, this.length);
  }

  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

function encodeRows(command: (row: number) => string): EncodedRows {
  const builder = new BufferBuilder();
  const offsets = new Float64Array(rows + 1);
  for (let row = 0; row < rows; row++) {
    builder.append(command(row));
    offsets[row + 1] = builder.length;
  }
  return { bytes: builder.bytes(), offsets };
}

function rowBytes(encoded: EncodedRows, from: number, to: number): Buffer {
  return encoded.bytes.subarray(encoded.offsets[from]!, encoded.offsets[to]!);
}

function setCommand(row: number, pass: Pass): string {
  const job = jobOf(row, pass);
  return respCommand(['SET', jobKeyOf(row), jobValue(job), 'PXAT', String(job.expiresAtMs)]);
}

function evalCommand(sha: string, row: number, pass: Pass): string {
  const job = jobOf(row, pass);
  const key = jobKeyOf(row);
  const args = [String(COMMIT_LSN[pass]), String(row), jobValue(job), String(job.expiresAtMs)];
  return respCommand(['EVALSHA', sha, '2', key, fenceKeyOf(key), ...args]);
}

function checkpointText(pass: Pass, index: number): string {
  return formatCheckpoint({ commitLsn: COMMIT_LSN[pass], index, ackLsn: COMMIT_LSN[pass] - 1n, writer: WRITER });
}

/** A hash tag for every slot: the first decimal number (from 0) that hashes to it. */
function slotTags(): string[] {
  const tags: string[] = new Array<string>(HASH_SLOTS);
  let found = 0;
  for (let n = 0; found < HASH_SLOTS; n++) {
    const slot = hashSlot(String(n));
    if (tags[slot] === undefined) {
      tags[slot] = String(n);
      found++;
    }
  }
  return tags;
}

/** Today's checkpoint key, and design (b)'s for one slot: the same name with a hash tag in that slot. */
const CHECKPOINT_KEY = checkpointKey(KEY_PREFIX);
const slotCheckpointKey = (tag: string): string => `budget-cdc:checkpoint:{${tag}}:${KEY_PREFIX}`;

// ---- what is sent, and the replies expected ------------------------------------------------------------------

const EXPECT_OK = 1;
const EXPECT_QUEUED = 2;
/** EXEC's array: `param` times +OK (the SETs), then the checkpoint's previous text (a bulk string, not nil). */
const EXPECT_EXEC = 3;
const EXPECT_ONE = 4;

/** The replies a pass must get, one entry per top-level reply. */
class Expectations {
  readonly codes: number[] = [];
  readonly params: number[] = [];

  push(code: number, param = 0): void {
    this.codes.push(code);
    this.params.push(param);
  }

  /** MULTI, `sets` SETs and the checkpoint queued, EXEC. */
  pushTransaction(sets: number): void {
    this.push(EXPECT_OK);
    for (let i = 0; i <= sets; i++) this.push(EXPECT_QUEUED);
    this.push(EXPECT_EXEC, sets);
  }
}

interface Batch {
  chunks: Buffer[];
  bytes: number;
  replies: number;
}

interface PassPlan {
  batches: Batch[];
  expectations: Expectations;
  /** MULTI/EXEC transactions, or EVALSHA calls for (c). */
  transactions: number;
}

const MULTI = Buffer.from(respCommand(['MULTI']));
const EXEC = respCommand(['EXEC']);

function batchOf(chunks: Buffer[], replies: number): Batch {
  return { chunks, bytes: chunks.reduce((sum, chunk) => sum + chunk.length, 0), replies };
}

function planPass(
  design: Design,
  batchRows: number,
  pass: Pass,
  sets: EncodedRows,
  evals: EncodedRows,
  slots: Uint16Array,
  tags: string[],
): PassPlan {
  const expectations = new Expectations();
  const batches: Batch[] = [];
  let transactions = 0;
  for (let start = 0; start < rows; start += batchRows) {
    const end = Math.min(start + batchRows, rows);
    const checkpoint = checkpointText(pass, end - 1);
    if (design === 'a') {
      const tail = Buffer.from(respCommand(['SET', CHECKPOINT_KEY, checkpoint, 'XX', 'GET']) + EXEC);
      batches.push(batchOf([MULTI, rowBytes(sets, start, end), tail], end - start + 3));
      expectations.pushTransaction(end - start);
      transactions++;
    } else if (design === 'b') {
      // Slot by slot, rows in their order within a slot, as a writer grouping a batch for the cluster would.
      const order = Array.from({ length: end - start }, (_, i) => start + i).sort((x, y) => slots[x]! - slots[y]! || x - y);
      const chunks: Buffer[] = [];
      let replies = 0;
      for (let i = 0; i < order.length;) {
        const slot = slots[order[i]!]!;
        chunks.push(MULTI);
        let count = 0;
        for (; i < order.length && slots[order[i]!] === slot; i++, count++) chunks.push(rowBytes(sets, order[i]!, order[i]! + 1));
        chunks.push(Buffer.from(respCommand(['SET', slotCheckpointKey(tags[slot]!), checkpoint, 'XX', 'GET']) + EXEC));
        expectations.pushTransaction(count);
        replies += count + 3;
        transactions++;
      }
      batches.push(batchOf([Buffer.concat(chunks)], replies));
    } else {
      batches.push(batchOf([rowBytes(evals, start, end)], end - start));
      for (let row = start; row < end; row++) expectations.push(EXPECT_ONE);
      transactions += end - start;
    }
  }
  return { batches, expectations, transactions };
}

// ---- replies: parsed as they stream in, checked against the expectations, no object per reply --------------

const PLUS = 0x2b;
const MINUS = 0x2d;
const COLON = 0x3a;
const DOLLAR = 0x24;
const STAR = 0x2a;
const LF = 0x0a;
const OK = Buffer.from('OK');
const QUEUED = Buffer.from('QUEUED');
const ONE = Buffer.from('1');

class ReplyChecker {
  /** Top-level replies received in full. */
  replies = 0;
  errors = 0;
  unexpected = 0;
  firstProblem: string | undefined;
  private partial: Buffer | undefined;
  private skip = 0;
  /** Elements still due in each open array, outermost first. */
  private readonly open: number[] = [];
  private code = 0;
  private param = 0;
  private element = 0;
  private waiter: { target: number; resolve: () => void } | undefined;
  private failure: Error | undefined;

  constructor(private readonly expectations: Expectations) {}

  feed(chunk: Buffer): void {
    let data = chunk;
    if (this.partial !== undefined) {
      data = Buffer.concat([this.partial, chunk]);
      this.partial = undefined;
    }
    let at = 0;
    while (at < data.length) {
      if (this.skip > 0) {
        const skipped = Math.min(this.skip, data.length - at);
        this.skip -= skipped;
        at += skipped;
        continue;
      }
      const lf = data.indexOf(LF, at);
      if (lf < 0) {
        this.partial = Buffer.from(data.subarray(at));
        break;
      }
      this.token(data, at, lf - 1);
      at = lf + 1;
    }
    if (this.waiter !== undefined && this.replies >= this.waiter.target) this.waiter.resolve();
  }

  fail(error: Error): void {
    this.failure ??= error;
    this.waiter?.resolve();
  }

  /** Resolves once `target` top-level replies have arrived; rejects if the connection failed first. */
  async waitFor(target: number): Promise<void> {
    if (this.replies < target && this.failure === undefined) {
      await new Promise<void>((resolve) => (this.waiter = { target, resolve }));
      this.waiter = undefined;
    }
    if (this.failure !== undefined) throw this.failure;
  }

  /** One line of RESP, `data[start, end)` without its CRLF. */
  private token(data: Buffer, start: number, end: number): void {
    const type = data[start]!;
    const body = data.subarray(start + 1, end);
    if (type === DOLLAR) {
      const length = Number(body.toString('latin1'));
      if (length >= 0) this.skip = length + 2;
    }
    if (type === MINUS) {
      this.errors++;
      this.firstProblem ??= `error reply: ${body.toString()}`;
    }
    if (this.open.length === 0) {
      this.code = this.expectations.codes[this.replies] ?? 0;
      this.param = this.expectations.params[this.replies] ?? 0;
      if (type === STAR) {
        const count = Number(body.toString('latin1'));
        if (this.code !== EXPECT_EXEC || count !== this.param + 1) this.mismatch(data, start, end);
        this.element = 0;
        if (count > 0) this.open.push(count);
        else this.replies++;
        return;
      }
      if (type !== MINUS && !this.matches(type, body)) this.mismatch(data, start, end);
      this.replies++;
      return;
    }
    // An element of EXEC's array (or of anything else a wrong reply nests).
    if (this.open.length === 1 && type !== MINUS) {
      const ok = this.element < this.param ? type === PLUS && body.equals(OK) : type === DOLLAR && this.skip > 0;
      if (!ok) this.mismatch(data, start, end);
    }
    this.element++;
    if (type === STAR) {
      const count = Number(body.toString('latin1'));
      if (count > 0) {
        this.open.push(count);
        return;
      }
    }
    while (this.open.length > 0) {
      const last = this.open.length - 1;
      this.open[last]!--;
      if (this.open[last]! > 0) return;
      this.open.pop();
    }
    this.replies++;
  }

  private matches(type: number, body: Buffer): boolean {
    switch (this.code) {
      case EXPECT_OK:
        return type === PLUS && body.equals(OK);
      case EXPECT_QUEUED:
        return type === PLUS && body.equals(QUEUED);
      case EXPECT_ONE:
        return type === COLON && body.equals(ONE);
      default:
        return false;
    }
  }

  private mismatch(data: Buffer, start: number, end: number): void {
    this.unexpected++;
    this.firstProblem ??= `reply ${this.replies + 1}: unexpected ${JSON.stringify(data.toString('latin1', start, end))} (expectation ${this.code})`;
  }
}

async function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Sends the batches, at most MAX_IN_FLIGHT_BYTES unanswered (one batch at least); resolves when all are answered. */
async function sendPass(port: number, plan: PassPlan): Promise<{ checker: ReplyChecker; wallMs: number }> {
  const socket = await openSocket(port);
  socket.setNoDelay(true);
  const checker = new ReplyChecker(plan.expectations);
  socket.on('data', (chunk: Buffer) => checker.feed(chunk));
  socket.on('error', (error) => checker.fail(new Error(`redis connection failed: ${error.message}`, { cause: error })));
  socket.on('close', () => checker.fail(new Error('redis closed the connection')));
  const inFlight: { replyTarget: number; bytes: number }[] = [];
  let inFlightBytes = 0;
  let replyTarget = 0;
  const started = performance.now();
  try {
    for (const batch of plan.batches) {
      while (inFlight.length > 0 && inFlightBytes + batch.bytes > MAX_IN_FLIGHT_BYTES) {
        const oldest = inFlight.shift()!;
        await checker.waitFor(oldest.replyTarget);
        inFlightBytes -= oldest.bytes;
      }
      socket.cork();
      for (const chunk of batch.chunks) socket.write(chunk);
      socket.uncork();
      replyTarget += batch.replies;
      inFlight.push({ replyTarget, bytes: batch.bytes });
      inFlightBytes += batch.bytes;
    }
    await checker.waitFor(replyTarget);
    return { checker, wallMs: performance.now() - started };
  } finally {
    socket.removeAllListeners('close');
    socket.destroy();
  }
}

// ---- Redis's own figures --------------------------------------------------------------------------------------

async function info(redis: Redis, section: string): Promise<Map<string, string>> {
  const fields = new Map<string, string>();
  for (const line of (await redis.info(section)).split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

async function cpuSeconds(redis: Redis): Promise<number> {
  const cpu = await info(redis, 'cpu');
  return Number(cpu.get('used_cpu_user')) + Number(cpu.get('used_cpu_sys'));
}

/** used_memory without the clients' buffers (our pipeline's query buffer is not data). */
async function dataMemory(redis: Redis): Promise<number> {
  const memory = await info(redis, 'memory');
  return Number(memory.get('used_memory')) - Number(memory.get('mem_clients_normal'));
}

async function commandCalls(redis: Redis, command: string): Promise<number> {
  const stats = await info(redis, 'commandstats');
  const match = /calls=(\d+)/.exec(stats.get(`cmdstat_${command}`) ?? '');
  return match === null ? 0 : Number(match[1]);
}

function expectEqual(what: string, actual: number, expected: number): void {
  if (actual !== expected) throw new Error(`${what}: Redis counts ${actual}, expected ${expected}`);
}

// ---- one measurement --------------------------------------------------------------------------------------------

interface Measurement {
  design: Design;
  batchRows: number;
  pass: Pass;
  transactions: number;
  cpuSeconds: number;
  wallMs: number;
  /** Data memory added per row by the pass and, for (b), its 16,384 checkpoints; new keys only. */
  memoryPerRow: number | undefined;
  keys: number;
}

interface Encoded {
  sets: Record<Pass, EncodedRows>;
  evals: Record<Pass, EncodedRows>;
  slots: Uint16Array;
  tags: string[];
}

async function measureDesign(redis: Redis, port: number, encoded: Encoded, design: Design, batchRows: number): Promise<Measurement[]> {
  await redis.flushall('SYNC');
  const memoryBefore = await dataMemory(redis);
  // The checkpoints exist before any batch (XX would not create them): one key today, one per slot for (b).
  if (design === 'a') await redis.set(CHECKPOINT_KEY, checkpointText('new keys', -1));
  if (design === 'b') {
    const pipeline = redis.pipeline();
    for (const tag of encoded.tags) pipeline.set(slotCheckpointKey(tag), checkpointText('new keys', -1));
    for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
  }
  const measurements: Measurement[] = [];
  for (const pass of PASSES) {
    const plan = planPass(design, batchRows, pass, encoded.sets[pass], encoded.evals[pass], encoded.slots, encoded.tags);
    await redis.config('RESETSTAT');
    const cpuBefore = await cpuSeconds(redis);
    const { checker, wallMs } = await sendPass(port, plan);
    const cpu = (await cpuSeconds(redis)) - cpuBefore;
    const where = `${DESIGN_NAMES[design]}, ${batchRows} rows per batch, ${pass}`;
    if (checker.errors + checker.unexpected > 0) {
      throw new Error(
        `${where}: ${checker.errors} error replies, ${checker.unexpected} unexpected replies; first: ${checker.firstProblem}`,
      );
    }
    expectEqual(`${where}: replies`, checker.replies, plan.expectations.codes.length);
    if (design === 'c') {
      expectEqual(`${where}: EVALSHA calls`, await commandCalls(redis, 'evalsha'), rows);
      expectEqual(`${where}: SET calls from the script`, await commandCalls(redis, 'set'), 2 * rows);
    } else {
      expectEqual(`${where}: EXEC calls`, await commandCalls(redis, 'exec'), plan.transactions);
      expectEqual(`${where}: SET calls`, await commandCalls(redis, 'set'), rows + plan.transactions);
    }
    await checkLastRow(redis, design, pass, where);
    const keys = await redis.dbsize();
    expectEqual(`${where}: keys`, keys, design === 'c' ? 2 * rows : rows + (design === 'a' ? 1 : HASH_SLOTS));
    const memoryPerRow = pass === 'new keys' ? ((await dataMemory(redis)) - memoryBefore) / rows : undefined;
    measurements.push({ design, batchRows, pass, transactions: plan.transactions, cpuSeconds: cpu, wallMs, memoryPerRow, keys });
  }
  return measurements;
}

/** The last row's key holds this pass's value with its expiry, and (c)'s fence this pass's position. */
async function checkLastRow(redis: Redis, design: Design, pass: Pass, where: string): Promise<void> {
  const row = rows - 1;
  const job = jobOf(row, pass);
  const key = jobKeyOf(row);
  const [value, expiresAt] = await Promise.all([redis.get(key), redis.pexpiretime(key)]);
  if (value !== jobValue(job) || expiresAt !== job.expiresAtMs) throw new Error(`${where}: ${key} holds ${value} expiring at ${expiresAt}`);
  if (design === 'c') {
    const fence = await redis.get(fenceKeyOf(key));
    if (fence !== `${COMMIT_LSN[pass]}#${row}`) throw new Error(`${where}: the fence of ${key} holds ${fence}`);
  }
}

// ---- the table ----------------------------------------------------------------------------------------------

function formatNumber(value: number, digits = 0): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function formatTable(header: string[], body: string[][]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...body.map(line)].join('\n');
}

function resultsTable(all: Measurement[]): string {
  const header = [
    'design',
    'batch rows',
    'writes',
    'transactions',
    'Redis CPU s / 1M rows',
    'samples',
    '× (a)',
    'wall rows/s',
    'memory B/row',
  ];
  const body: string[][] = [];
  const cpuPerMillion = (m: Measurement): number => (m.cpuSeconds * 1e6) / rows;
  const select = (design: Design, batchRows: number, pass: Pass): Measurement[] =>
    all.filter((m) => m.design === design && m.batchRows === batchRows && m.pass === pass);
  for (const pass of PASSES) {
    for (const batchRows of BATCH_ROWS) {
      const baseline = median(select('a', batchRows, pass).map(cpuPerMillion));
      for (const design of DESIGNS) {
        const samples = select(design, batchRows, pass);
        const cpu = median(samples.map(cpuPerMillion));
        const memory = samples[0]!.memoryPerRow === undefined ? '' : formatNumber(median(samples.map((m) => m.memoryPerRow!)));
        body.push([
          DESIGN_NAMES[design],
          formatNumber(batchRows),
          pass,
          formatNumber(samples[0]!.transactions),
          formatNumber(cpu, 2),
          samples.map((m) => formatNumber(cpuPerMillion(m), 2)).join(' '),
          `${formatNumber(cpu / baseline, 2)}×`,
          formatNumber(median(samples.map((m) => (rows * SECOND) / m.wallMs))),
          memory,
        ]);
      }
    }
  }
  return formatTable(header, body);
}

function memoryTable(all: Measurement[]): string {
  const perDesign = (design: Design): Measurement[] => all.filter((m) => m.design === design && m.memoryPerRow !== undefined);
  const baseline = median(perDesign('a').map((m) => m.memoryPerRow!));
  const body = DESIGNS.map((design) => {
    const samples = perDesign(design);
    const perRow = median(samples.map((m) => m.memoryPerRow!));
    return [
      DESIGN_NAMES[design],
      formatNumber(samples[0]!.keys),
      formatNumber(perRow),
      `${formatNumber(perRow / baseline, 2)}×`,
      `${formatNumber((perRow * rows) / MIB, 1)} MiB`,
    ];
  });
  return formatTable(['design', 'keys', 'memory B/row', '× (a)', `for ${formatNumber(rows)} rows`], body);
}

// ---- main -------------------------------------------------------------------------------------------------

let server: RedisServer | undefined;
let redis: Redis | undefined;
try {
  server = await startRedis();
  redis = new Redis(server.url);
  const version = (await info(redis, 'server')).get('redis_version');
  log(`redis-server ${version} on port ${server.port}; ${formatNumber(rows)} rows, ${runs} runs`);
  const sha = await redis.script('LOAD', FENCE_SCRIPT);
  if (typeof sha !== 'string') throw new Error(`SCRIPT LOAD answered ${String(sha)}`);

  log('encoding every pass before measuring');
  const slots = new Uint16Array(rows);
  for (let row = 0; row < rows; row++) slots[row] = hashSlot(jobKeyOf(row));
  const encoded: Encoded = {
    sets: { 'new keys': encodeRows((row) => setCommand(row, 'new keys')), overwrite: encodeRows((row) => setCommand(row, 'overwrite')) },
    evals: {
      'new keys': encodeRows((row) => evalCommand(sha, row, 'new keys')),
      overwrite: encodeRows((row) => evalCommand(sha, row, 'overwrite')),
    },
    slots,
    tags: slotTags(),
  };
  let valueBytes = 0;
  for (let row = 0; row < rows; row++) valueBytes += jobValue(jobOf(row, 'new keys')).length;

  const all: Measurement[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const batchRows of BATCH_ROWS) {
      for (const design of DESIGNS) {
        const measurements = await measureDesign(redis, server.port, encoded, design, batchRows);
        for (const m of measurements) {
          log(
            `run ${run}/${runs}: ${DESIGN_NAMES[design]}, ${batchRows} rows per batch, ${m.pass}: ${formatNumber(m.transactions)} ` +
              `transactions, Redis CPU ${m.cpuSeconds.toFixed(2)} s, wall ${(m.wallMs / SECOND).toFixed(2)} s`,
          );
        }
        all.push(...measurements);
      }
    }
  }
  await redis.flushall('SYNC');

  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  process.stdout.write(
    `redis-server ${version} (one server, --save '' --appendonly no), Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ` +
      `commit ${commit}\n${formatNumber(rows)} rows per pass, values ${formatNumber(valueBytes / rows)} bytes on average ` +
      `(1 to 30 days online), medians of ${runs} runs\n` +
      "Redis CPU: INFO cpu used_cpu_user + used_cpu_sys, over the pass; memory: used_memory - mem_clients_normal after 'new keys' " +
      'minus after FLUSHALL, per row (includes the checkpoint keys)\n\n' +
      `${resultsTable(all)}\n\n${memoryTable(all)}\n`,
  );
} catch (error) {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
} finally {
  redis?.disconnect();
  await server?.stop();
}
