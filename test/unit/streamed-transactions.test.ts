import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StreamSpool } from '../../src/consumer/stream-spool.js';
import { StreamedTransactions, type CommittedStream } from '../../src/consumer/streamed-transactions.js';
import { DecodeError } from '../../src/errors.js';
import { decodeStreamControl } from '../../src/replication/stream-messages.js';

// Protocol 2's framing of streamed transactions, as bytes the way pgoutput writes them: blocks of changes that
// carry their (sub)transaction's xid, interleaved, ending in Stream Commit or Stream Abort.

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function folder(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'budget-cdc-spool-test-')), 'pid');
  folders.push(join(path, '..'));
  return path;
}

const streamStart = (xid: number, first = true): Buffer => Buffer.from([0x53, ...u32(xid), first ? 1 : 0]);
const streamStop = (): Buffer => Buffer.from([0x45]);
const streamAbort = (xid: number, subxid: number): Buffer => Buffer.from([0x41, ...u32(xid), ...u32(subxid)]);
function streamCommit(xid: number, commitLsn: bigint, endLsn: bigint, commitTimeMs: number): Buffer {
  const message = Buffer.alloc(30);
  message[0] = 0x63;
  message.writeUInt32BE(xid, 1);
  message.writeBigUInt64BE(commitLsn, 6);
  message.writeBigUInt64BE(endLsn, 14);
  message.writeBigInt64BE(BigInt(commitTimeMs - Date.UTC(2000, 0, 1)) * 1000n, 22);
  return message;
}
/** An Insert as streamed: type, xid, then what protocol 1 has after the type (here a marker and a payload). */
const streamedInsert = (subxid: number, payload: string): Buffer =>
  Buffer.concat([Buffer.from([0x49, ...u32(subxid)]), Buffer.from(payload)]);

function u32(value: number): number[] {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return [...bytes];
}

/** Routes each message; returns the commits, with their changes' payloads read back from the spool. */
function routeAll(streams: StreamedTransactions, messages: Buffer[]): Array<{ commit: CommittedStream; changes: string[] }> {
  const commits: Array<{ commit: CommittedStream; changes: string[] }> = [];
  messages.forEach((message, i) => {
    const routed = streams.route(message, 0, BigInt(1000 + i));
    if (routed.kind === 'ordinary') throw new Error(`message ${i} was not taken`);
    if (routed.kind === 'commit') {
      // One object is handed out for every record: each is read before the next.
      const changes: string[] = [];
      for (const change of routed.stream.spool.read()) {
        if (routed.stream.abortedSubxids.has(change.subxid)) continue;
        const message = change.buffer.subarray(change.start, change.end);
        expect(message[0]).toBe(0x49); // the type byte kept, the xid taken out
        changes.push(message.subarray(1).toString());
      }
      routed.stream.spool.remove();
      commits.push({ commit: routed.stream, changes });
    }
  });
  return commits;
}

describe('StreamedTransactions', () => {
  it('keeps interleaved transactions apart and ends each as it ends', () => {
    const streams = new StreamedTransactions(folder());
    const commits = routeAll(streams, [
      streamStart(10),
      streamedInsert(10, 'a1'),
      streamStop(),
      streamStart(20),
      streamedInsert(20, 'b1'),
      streamStop(),
      streamStart(10, false),
      streamedInsert(11, 'a2 in subtransaction 11'),
      streamedInsert(10, 'a3'),
      streamStop(),
      streamAbort(20, 20),
      streamCommit(10, 5000n, 5100n, Date.UTC(2026, 11, 1, 12)),
    ]);
    expect(commits).toHaveLength(1);
    expect(commits[0]!.changes).toEqual(['a1', 'a2 in subtransaction 11', 'a3']);
    expect(commits[0]!.commit).toMatchObject({ commitLsn: 5000n, endLsn: 5100n, commitTimeMs: Date.UTC(2026, 11, 1, 12) });
    expect(streams.openCount).toBe(0);
  });

  it('drops the changes of an aborted subtransaction only', () => {
    const streams = new StreamedTransactions(folder());
    const commits = routeAll(streams, [
      streamStart(30),
      streamedInsert(30, 'top'),
      streamedInsert(31, 'savepoint kept'),
      streamedInsert(32, 'savepoint rolled back'),
      streamedInsert(33, 'nested in 32, rolled back with it'),
      streamStop(),
      streamAbort(30, 33),
      streamAbort(30, 32),
      streamStart(30, false),
      streamedInsert(30, 'top after'),
      streamStop(),
      streamCommit(30, 1n, 2n, 0),
    ]);
    expect(commits[0]!.changes).toEqual(['top', 'savepoint kept', 'top after']);
  });

  it('lets ordinary messages outside blocks through, and refuses framing it cannot follow', () => {
    const streams = new StreamedTransactions(folder());
    expect(streams.route(Buffer.from([0x42, 0, 0]), 0, 1n)).toEqual({ kind: 'ordinary' }); // a Begin
    expect(() => streams.route(streamStop(), 0, 2n)).toThrow(DecodeError);
    expect(() => streams.route(streamCommit(99, 1n, 2n, 0), 0, 3n)).toThrow(/Stream Commit of transaction 99, never started/);
    // An abort of a transaction nothing was kept of is nothing to do.
    expect(streams.route(streamAbort(98, 98), 0, 4n)).toEqual({ kind: 'taken' });
  });

  it('removes the spool files and the folder when the session ends', () => {
    const path = folder();
    const streams = new StreamedTransactions(path);
    streams.route(streamStart(40), 0, 1n);
    for (let i = 0; i < 30_000; i++) streams.route(streamedInsert(40, `row ${i} `.padEnd(60, '.')), 0, 2n);
    expect(readdirSync(path).length).toBe(1); // more than the memory holds: a file
    streams.closeAll();
    expect(existsSync(path)).toBe(false);
  });
});

describe('StreamSpool', () => {
  it('gives back every record in order across the file, its chunk boundaries and memory, whatever their sizes', () => {
    const spool = new StreamSpool(folder(), 7);
    const sizes = [1, 5, 100, 70_000, 3, 1_500_000, 17, 900_000, 2];
    const payloads: string[] = [];
    for (let round = 0; round < 40; round++) {
      for (const size of sizes) {
        const payload = `${round}:${size}:`.padEnd(size + 8, String.fromCharCode(97 + (round % 26)));
        payloads.push(payload);
        spool.add(streamedInsert(100 + round, payload), 0, 100 + round);
      }
    }
    let i = 0;
    for (const change of spool.read()) {
      const round = Math.floor(i / sizes.length);
      expect(change.buffer.subarray(change.start + 1, change.end).toString()).toBe(payloads[i]);
      expect(change.subxid).toBe(100 + round);
      i++;
    }
    expect(i).toBe(payloads.length);
    expect(spool.changes).toBe(payloads.length);
    spool.remove();
  });

  it('reads a Stream Commit as pgoutput writes it', () => {
    expect(decodeStreamControl(streamCommit(5, 10n, 20n, Date.UTC(2026, 0, 2)), 0, 1n)).toEqual({
      tag: 'stream-commit',
      xid: 5,
      commitLsn: 10n,
      endLsn: 20n,
      commitTimeMs: Date.UTC(2026, 0, 2),
    });
    expect(() => decodeStreamControl(Buffer.from([0x63, 0, 0]), 0, 1n)).toThrow(DecodeError);
  });
});
