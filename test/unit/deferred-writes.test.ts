import { describe, expect, it } from 'vitest';
import { EVEN_SPLIT, type BudgetStrategy } from '../../src/budget/budget-strategy.js';
import type { DistributionCheck } from '../../src/budget/distribution-check.js';
import { DAY_MS, type Job } from '../../src/budget/job.js';
import { DeferredWrites, type RefusedJob } from '../../src/consumer/deferred-writes.js';
import { SlottedWriteBatch } from '../../src/sink/cluster-write-batch.js';
import { jobValue } from '../../src/sink/job-value.js';
import { WriteBatch } from '../../src/sink/write-batch.js';

// With a distribution service, a batch's changes wait for its answers: whatever the answers, the writes must be
// encoded in the order the changes came, and a job the service got wrong must leave no value behind.

const PREFIX = Buffer.from('job:');
const DEAD_LETTERS = 'budget-cdc:dead-letters:s';
const CREATED_AT_MS = Date.UTC(2030, 0, 6, 9); // a Sunday, far in the future: never expired

function job(jobId: string, budgetCents: number, daysOnline = 2): Job {
  return { jobId, budgetCents, daysOnline, createdAtMs: CREATED_AT_MS, expiresAtMs: CREATED_AT_MS + daysOnline * DAY_MS };
}

/** A strategy whose answers the test gives per job_id (the even split for the others); it records what it was asked. */
function scriptedStrategy(answers: Record<string, DistributionCheck> = {}): BudgetStrategy & { asked: string[][] } {
  const asked: string[][] = [];
  return {
    name: 'http://rules.test/distribute',
    builtIn: false,
    asked,
    async distribute(jobs) {
      asked.push(jobs.map((j) => j.jobId));
      const even = await EVEN_SPLIT.distribute(jobs);
      return jobs.map((j, i) => answers[j.jobId] ?? even[i]!);
    },
  };
}

/** The batch's commands, decoded from its RESP (byte offsets), as arrays of arguments. */
function commandsOf(batch: WriteBatch): string[][] {
  const bytes = batch.bytes;
  const commands: string[][] = [];
  let at = 0;
  const line = (): string => {
    const end = bytes.indexOf('\r\n', at);
    const text = bytes.toString('latin1', at, end);
    at = end + 2;
    return text;
  };
  while (at < bytes.length) {
    const count = Number(line().slice(1));
    const args: string[] = [];
    for (let i = 0; i < count; i++) {
      const length = Number(line().slice(1));
      args.push(bytes.toString('utf8', at, at + length));
      at += length + 2;
    }
    commands.push(args);
  }
  return commands;
}

async function encode(
  writes: DeferredWrites,
  strategy: BudgetStrategy,
  target = new WriteBatch(DEAD_LETTERS),
): Promise<{ target: WriteBatch; refused: RefusedJob[] }> {
  const refused: RefusedJob[] = [];
  await writes.encodeInto(target, PREFIX, strategy, new AbortController().signal, (r) => refused.push(r));
  return { target, refused };
}

describe('DeferredWrites', () => {
  it('encodes the writes in the order of the changes, each job with the amounts the service gave', async () => {
    const writes = new DeferredWrites();
    writes.setJobLater(PREFIX, job('a', 1000), 10n);
    writes.del('job:old-name');
    writes.setJobLater(PREFIX, job('b', 301, 3), 11n);
    writes.setJobLater(PREFIX, job('a', 2000), 12n); // a's update in the same batch: last in Redis
    expect(writes.jobs).toBe(3);
    expect(writes.commands).toBe(4);
    const strategy = scriptedStrategy({ b: { ok: true, dailyCents: [1, 100, 200] } });
    const { target, refused } = await encode(writes, strategy);
    expect(refused).toEqual([]);
    expect(strategy.asked).toEqual([['a', 'b', 'a']]);
    const commands = commandsOf(target);
    expect(commands.map((c) => [c[0], c[1]])).toEqual([
      ['SET', 'job:a'],
      ['DEL', 'job:old-name'],
      ['SET', 'job:b'],
      ['SET', 'job:a'],
    ]);
    expect(commands[0]![2]).toBe(jobValue(job('a', 1000)));
    expect(JSON.parse(commands[2]![2]!).daily).toEqual(['0.01', '1.00', '2.00']);
    expect(commands[2]!.slice(3)).toEqual(['PXAT', String(CREATED_AT_MS + 3 * DAY_MS)]);
    expect(commands[3]![2]).toBe(jobValue(job('a', 2000)));
    expect(target.commands).toBe(4);
  });

  it('deletes the key of a job the service refused and sets it aside with the reason, in its place', async () => {
    const writes = new DeferredWrites();
    writes.setJobLater(PREFIX, job('good', 500), 20n);
    writes.setJobLater(PREFIX, job('bad', 500), 21n);
    writes.deadLetter('{"job_id":"unreadable"}');
    const strategy = scriptedStrategy({ bad: { ok: false, reason: 'the amounts add up to 5.01, not the budget 5.00' } });
    const { target, refused } = await encode(writes, strategy);
    expect(refused).toEqual([{ jobId: 'bad', reason: 'the amounts add up to 5.01, not the budget 5.00', lsn: 21n }]);
    const commands = commandsOf(target);
    expect(commands.map((c) => c[0])).toEqual(['SET', 'DEL', 'LPUSH', 'LTRIM', 'LPUSH', 'LTRIM']);
    expect(commands[1]).toEqual(['DEL', 'job:bad']);
    const entry = JSON.parse(commands[2]![2]!) as Record<string, unknown>;
    expect(entry).toMatchObject({ job_id: 'bad', lsn: '0/15', reason: 'the amounts add up to 5.01, not the budget 5.00' });
    expect(commands[4]).toEqual(['LPUSH', DEAD_LETTERS, '{"job_id":"unreadable"}']);
  });

  it('asks nothing when the batch holds no job to distribute', async () => {
    const writes = new DeferredWrites();
    writes.del('job:x');
    const strategy = scriptedStrategy();
    const { target } = await encode(writes, strategy);
    expect(strategy.asked).toEqual([]);
    expect(commandsOf(target)).toEqual([['DEL', 'job:x']]);
  });

  it('keeps each change replay position for a cluster batch, so that a slot holding it already drops it', async () => {
    // Slot checkpoints: every slot holds changes up to commit 100 change 0; a replayed change at (100, 0) is dropped.
    const holds = { commitLsn: 100n, index: 0, ackLsn: undefined, writer: undefined };
    const target = new SlottedWriteBatch(
      DEAD_LETTERS,
      Array.from({ length: 16_384 }, () => holds),
      1 << 16,
    );
    const writes = new DeferredWrites();
    writes.replayPosition = { commitLsn: 100n, index: 0 };
    writes.setJobLater(PREFIX, job('held', 100), 90n);
    writes.replayPosition = undefined;
    writes.setJobLater(PREFIX, job('new', 100), 101n);
    await encode(writes, scriptedStrategy(), target);
    expect(target.replayPosition).toBeUndefined();
    expect(commandsOf(target).map((c) => c[1])).toEqual(['job:new']);
  });

  it('rejects when the signal aborts, writing nothing', async () => {
    const writes = new DeferredWrites();
    writes.setJobLater(PREFIX, job('a', 100), 1n);
    const never: BudgetStrategy = {
      name: 'http://down.test/',
      builtIn: false,
      distribute: (_jobs, signal) => new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason))),
    };
    const abort = new AbortController();
    const target = new WriteBatch(DEAD_LETTERS);
    const encoded = writes.encodeInto(target, PREFIX, never, abort.signal, () => undefined);
    abort.abort(new Error('session ended'));
    await expect(encoded).rejects.toThrow('session ended');
    expect(target.commands).toBe(0);
  });
});
