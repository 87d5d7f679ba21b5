import { describe, expect, it } from 'vitest';
import { ChangeApplier } from '../../src/consumer/change-applier.js';
import { makeConsumerEvents } from '../../src/consumer/consumer-events.js';
import { makeSilentLogger } from '../../src/logger.js';
import type { Lsn } from '../../src/lsn.js';
import { WriteBatch } from '../../src/sink/write-batch.js';

// The applier keeps, per batch, the commit time of each transaction that wrote something in it: what
// budget_cdc_commit_to_redis_seconds observes once Redis confirms the batch. Transactions the checkpoint
// covers (a replay after a restart) and transactions with no change of jobs are left out: their commits
// are not news to a reader. Messages are built byte by byte from the protocol's description.

const JOBS_RELATION_ID = 16_385;
/** Microseconds from 1970 to 2000, PostgreSQL's epoch for replication timestamps. */
const POSTGRES_EPOCH_OFFSET_US = 946_684_800_000_000n;

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function int64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
}

const cstring = (s: string): Buffer => Buffer.from(s + '\0');

function relation(): Buffer {
  const columns: Array<[string, number]> = [
    ['job_id', 25],
    ['days_online', 23],
    ['budget', 1700],
    ['created_at', 1184],
  ];
  const parts = [Buffer.from('R'), int32(JOBS_RELATION_ID), cstring('public'), cstring('jobs'), Buffer.from('f')];
  parts.push(Buffer.from([0, columns.length]));
  for (const [name, oid] of columns) parts.push(Buffer.from([name === 'job_id' ? 1 : 0]), cstring(name), int32(oid), int32(0xffffffff));
  return Buffer.concat(parts);
}

function begin(finalLsn: Lsn, commitTimeMs: number): Buffer {
  const micros = BigInt(commitTimeMs) * 1000n - POSTGRES_EPOCH_OFFSET_US;
  return Buffer.concat([Buffer.from('B'), int64(finalLsn), int64(micros), int32(1)]);
}

function insert(jobId: string): Buffer {
  const values = [jobId, '3', '100.00', new Date().toISOString().replace('T', ' ').replace('Z', '+00')];
  const parts = [Buffer.from('I'), int32(JOBS_RELATION_ID), Buffer.from('N'), Buffer.from([0, values.length])];
  for (const value of values) parts.push(Buffer.from('t'), int32(Buffer.byteLength(value)), Buffer.from(value));
  return Buffer.concat(parts);
}

function commit(commitLsn: Lsn, endLsn: Lsn): Buffer {
  return Buffer.concat([Buffer.from('C'), Buffer.from([0]), int64(commitLsn), int64(endLsn), int64(0n)]);
}

function makeApplier(batchSize = 100): ChangeApplier {
  const host = { flush: () => undefined, scheduleFlush: () => undefined, truncate: () => undefined };
  const settings = { keyPrefix: 'job:', publicationName: 'p', batchSize, maxBatchBytes: 1 << 20 };
  const applier = new ChangeApplier(settings, () => new WriteBatch('dead'), makeConsumerEvents(), makeSilentLogger(), host);
  applier.applyMessage(relation(), 0, 1n);
  return applier;
}

/** One transaction: Begin, an Insert per job, Commit; its commit record at `commitLsn`. */
function transaction(applier: ChangeApplier, commitLsn: Lsn, commitTimeMs: number, jobIds: string[]): void {
  applier.applyMessage(begin(commitLsn, commitTimeMs), 0, commitLsn - 100n);
  for (const jobId of jobIds) applier.applyMessage(insert(jobId), 0, commitLsn - 50n);
  applier.applyMessage(commit(commitLsn, commitLsn + 8n), 0, commitLsn);
}

describe('commit times kept per batch for budget_cdc_commit_to_redis_seconds', () => {
  const t1 = Date.UTC(2026, 11, 1, 10, 0, 0);
  const t2 = t1 + 1500;

  it("keeps each transaction's commit time, as PostgreSQL sent it, one entry per transaction and none per row", () => {
    const applier = makeApplier();
    transaction(applier, 1000n, t1, ['a', 'b', 'c']);
    transaction(applier, 2000n, t2, ['d']);
    expect(applier.pending.rows).toBe(4);
    expect(applier.pending.commitTimesMs).toEqual([t1, t2]);
  });

  it('leaves out transactions with no change of jobs', () => {
    const applier = makeApplier();
    transaction(applier, 1000n, t1, []);
    expect(applier.pending.transactions).toBe(1);
    expect(applier.pending.commitTimesMs).toEqual([]);
  });

  it('leaves out transactions the checkpoint covers (a replay), keeps the first one written again', () => {
    const applier = makeApplier();
    applier.startAfter({ commitLsn: 1000n, index: 0, ackLsn: undefined, writer: undefined });
    transaction(applier, 1000n, t1, ['a']); // covered: in Redis already
    transaction(applier, 2000n, t2, ['b']);
    expect(applier.pending.rows).toBe(1);
    expect(applier.pending.commitTimesMs).toEqual([t2]);
  });

  it('the batch handed over keeps its commit times; the next one starts empty', () => {
    const applier = makeApplier();
    transaction(applier, 1000n, t1, ['a']);
    const batch = applier.takeBatch();
    expect(batch.commitTimesMs).toEqual([t1]);
    expect(applier.pending.commitTimesMs).toEqual([]);
    expect(applier.pending.buildMs).toBe(0);
  });
});
