import { describe, expect, it } from 'vitest';
import { WriteQueue, type WriteTask } from '../../src/consumer/write-queue.js';
import type { Lsn } from '../../src/lsn.js';

/** A task whose outcome the test decides: it records when it started, and ends on resolve()/reject(). */
interface FakeTask extends WriteTask {
  readonly name: string;
  readonly started: boolean;
  resolve(): Promise<void>;
  reject(error: Error): Promise<void>;
}

/** Lets every pending promise callback run, so the queue has reacted to a resolve or reject. */
async function settle(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}

function fakeTask(name: string, ackLsn: Lsn | undefined, options: { exclusive?: boolean; log?: string[] } = {}): FakeTask {
  let finish: { resolve: () => void; reject: (error: Error) => void } | undefined;
  let started = false;
  return {
    name,
    exclusive: options.exclusive ?? false,
    ackLsn,
    get started() {
      return started;
    },
    run() {
      if (started) throw new Error(`task ${name} started twice`);
      started = true;
      options.log?.push(`start ${name}`);
      return new Promise<void>((resolve, reject) => {
        finish = { resolve, reject };
      });
    },
    async resolve() {
      if (finish === undefined) throw new Error(`task ${name} was never started, so it cannot finish`);
      options.log?.push(`end ${name}`);
      finish.resolve();
      await settle();
    },
    async reject(error) {
      if (finish === undefined) throw new Error(`task ${name} was never started, so it cannot fail`);
      options.log?.push(`fail ${name}`);
      finish.reject(error);
      await settle();
    },
  };
}

/** A task's preparation that the test completes (Promise.withResolvers is Node 22). */
function preparation(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** A queue whose callbacks are recorded. */
function recordingQueue(): { queue: WriteQueue; confirmed: Lsn[]; failures: Error[]; sizes: number[] } {
  const confirmed: Lsn[] = [];
  const failures: Error[] = [];
  const sizes: number[] = [];
  const queue = new WriteQueue(
    (lsn) => confirmed.push(lsn),
    (error) => failures.push(error),
    (size) => sizes.push(size),
  );
  return { queue, confirmed, failures, sizes };
}

/** Whether the promise has settled by now, and how. */
async function stateOf(promise: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  promise.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  await settle();
  return state;
}

describe('WriteQueue', () => {
  it('runs ordinary tasks concurrently and confirms positions in order, even when a later task finishes first', async () => {
    const { queue, confirmed } = recordingQueue();
    const a = fakeTask('a', 10n);
    const b = fakeTask('b', 20n);
    const c = fakeTask('c', 30n);
    queue.push(a);
    queue.push(b);
    queue.push(c);
    expect([a.started, b.started, c.started]).toEqual([true, true, true]);

    await c.resolve();
    await b.resolve();
    expect(confirmed).toEqual([]); // a is still writing: nothing after it is safe
    expect(queue.size).toBe(3);

    await a.resolve();
    // a, b and c are all done: one confirmation of the highest position.
    expect(confirmed).toEqual([30n]);
    expect(queue.size).toBe(0);
  });

  it('confirms the last position of the finished prefix, skipping tasks without one', async () => {
    const { queue, confirmed } = recordingQueue();
    const a = fakeTask('a', 10n);
    const b = fakeTask('b', undefined);
    const c = fakeTask('c', 30n);
    const d = fakeTask('d', undefined);
    for (const task of [a, b, c, d]) queue.push(task);

    await a.resolve();
    expect(confirmed).toEqual([10n]);
    await b.resolve();
    expect(confirmed).toEqual([10n]); // b has no position of its own
    await d.resolve();
    expect(confirmed).toEqual([10n]);
    await c.resolve();
    expect(confirmed).toEqual([10n, 30n]);
  });

  it('starts an exclusive task only after every earlier task, and no later task until it ends', async () => {
    const { queue, confirmed } = recordingQueue();
    const log: string[] = [];
    const a = fakeTask('a', 10n, { log });
    const b = fakeTask('b', 20n, { log });
    const truncate = fakeTask('truncate', undefined, { exclusive: true, log });
    const c = fakeTask('c', 30n, { log });
    const d = fakeTask('d', 40n, { log });
    for (const task of [a, b, truncate, c, d]) queue.push(task);
    expect(log).toEqual(['start a', 'start b']);

    await b.resolve();
    expect(truncate.started).toBe(false); // a is still running
    await a.resolve();
    expect(confirmed).toEqual([20n]);
    expect(truncate.started).toBe(true);
    expect(c.started).toBe(false);
    expect(d.started).toBe(false);

    await truncate.resolve();
    expect([c.started, d.started]).toEqual([true, true]);
    await d.resolve();
    await c.resolve();
    expect(confirmed).toEqual([20n, 40n]);
    expect(log).toEqual(['start a', 'start b', 'end b', 'end a', 'start truncate', 'end truncate', 'start c', 'start d', 'end d', 'end c']);
  });

  it('runs two exclusive tasks one after the other', async () => {
    const { queue } = recordingQueue();
    const first = fakeTask('first', undefined, { exclusive: true });
    const second = fakeTask('second', undefined, { exclusive: true });
    queue.push(first);
    queue.push(second);
    expect([first.started, second.started]).toEqual([true, false]);
    await first.resolve();
    expect(second.started).toBe(true);
    await second.resolve();
    expect(queue.size).toBe(0);
  });

  it('confirms nothing after a failure, even when later or concurrent tasks succeed, and drained() rejects', async () => {
    const { queue, confirmed, failures } = recordingQueue();
    const a = fakeTask('a', 10n);
    const b = fakeTask('b', 20n);
    const c = fakeTask('c', 30n);
    const blockedByTruncate = fakeTask('after-truncate', 50n);
    queue.push(a);
    queue.push(b);
    queue.push(c);
    queue.push(fakeTask('truncate', 40n, { exclusive: true }));
    queue.push(blockedByTruncate);
    // Observed from now on, as the consumer's stop() does; the rejection must reach this waiter.
    const drained = queue.drained().then(
      () => 'resolved',
      (error: unknown) => error,
    );

    await a.resolve();
    expect(confirmed).toEqual([10n]);
    await c.resolve(); // done, but behind b
    const failure = new Error("READONLY You can't write against a read only replica.");
    await b.reject(failure);
    expect(failures).toEqual([failure]);
    expect(queue.failed).toBe(true);
    expect(await drained).toBe(failure);

    // Nothing queued behind the failure starts, and nothing more is confirmed.
    expect(blockedByTruncate.started).toBe(false);
    const late = fakeTask('late', 60n);
    queue.push(late);
    expect(late.started).toBe(false);
    expect(confirmed).toEqual([10n]);
    await expect(queue.drained()).rejects.toBe(failure);
  });

  it('ignores a success that arrives after a failure of an earlier task', async () => {
    const { queue, confirmed, failures } = recordingQueue();
    const a = fakeTask('a', 10n);
    const b = fakeTask('b', 20n);
    queue.push(a);
    queue.push(b);
    await a.reject(new Error('connection lost'));
    await b.resolve();
    expect(confirmed).toEqual([]);
    expect(failures).toHaveLength(1);
  });

  it('reports only the first of several failures', async () => {
    const { queue, failures } = recordingQueue();
    const a = fakeTask('a', 10n);
    const b = fakeTask('b', 20n);
    queue.push(a);
    queue.push(b);
    await b.reject(new Error('first'));
    await a.reject(new Error('second'));
    expect(failures.map((error) => error.message)).toEqual(['first']);
  });

  it('resolves drained() once every task pushed so far has succeeded', async () => {
    const { queue, confirmed, sizes } = recordingQueue();
    await expect(queue.drained()).resolves.toBeUndefined();
    const a = fakeTask('a', 10n);
    const b = fakeTask('b', 20n);
    queue.push(a);
    queue.push(b);
    const drained = queue.drained();
    await b.resolve();
    expect(await stateOf(drained)).toBe('pending');
    await a.resolve();
    expect(await stateOf(drained)).toBe('resolved');
    expect(confirmed).toEqual([20n]);
    // The size is reported as it grows and shrinks, so the consumer can pause and resume reading.
    expect(sizes).toEqual([1, 2, 2, 0]);
  });

  it('prepares tasks concurrently but runs them in order: a later task ready first waits for the earlier one', async () => {
    const { queue, confirmed } = recordingQueue();
    const log: string[] = [];
    const prepared = [preparation(), preparation()];
    const a = fakeTask('a', 10n, { log });
    a.ready = prepared[0]!.promise;
    const b = fakeTask('b', 20n, { log });
    b.ready = prepared[1]!.promise;
    queue.push(a);
    queue.push(b);
    expect(queue.size).toBe(2); // counted for backpressure while being prepared

    prepared[1]!.resolve();
    await settle();
    expect([a.started, b.started]).toEqual([false, false]); // b is ready, but a comes first

    // Pushes and completions while a is still being prepared must not start it early.
    const c = fakeTask('c', 30n, { log });
    queue.push(c);
    expect(c.started).toBe(false);

    prepared[0]!.resolve();
    await settle();
    expect(log).toEqual(['start a', 'start b', 'start c']);
    await b.resolve();
    expect(confirmed).toEqual([]);
    await a.resolve();
    await c.resolve();
    expect(confirmed).toEqual([20n, 30n]);
  });

  it('fails when a task cannot be prepared, and runs nothing after it', async () => {
    const { queue, confirmed, failures } = recordingQueue();
    const a = fakeTask('a', 10n);
    const b = fakeTask('b', 20n);
    b.ready = Promise.reject(new Error('distribution aborted'));
    const c = fakeTask('c', 30n);
    queue.push(a);
    queue.push(b);
    queue.push(c);
    await settle();
    expect(failures.map((error) => error.message)).toEqual(['distribution aborted']);
    expect([b.started, c.started]).toEqual([false, false]);
    await a.resolve();
    expect(confirmed).toEqual([]);
    await expect(queue.drained()).rejects.toThrow('distribution aborted');
  });
});
