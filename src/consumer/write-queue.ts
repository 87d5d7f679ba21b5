import type { Lsn } from '../lsn.js';

/**
 * A unit of Redis work, in stream order. `ackLsn` is the end of the last transaction whose writes are all
 * in this task or an earlier one: once this task and every earlier one succeeded, that position is safe.
 * An exclusive task (TRUNCATE's scan and delete) runs alone: after every earlier task, before any later one.
 */
export interface WriteTask {
  run(): Promise<void>;
  /**
   * What must settle before run() may start, when the task's writes are still being prepared (a distribution
   * service's answers): tasks are prepared concurrently but run in order. A rejection fails the queue.
   */
  ready?: Promise<void>;
  exclusive: boolean;
  ackLsn: Lsn | undefined;
}

interface RunningTask {
  task: WriteTask;
  done: boolean;
  result: Promise<void>;
}

/**
 * Runs tasks in order, several pipelined at once, and reports the highest position whose writes (and all
 * before them) Redis confirmed. After one failure nothing more is confirmed: a later success must never
 * acknowledge past a write that failed.
 */
export class WriteQueue {
  private readonly waiting: WriteTask[] = [];
  private readonly running: RunningTask[] = [];
  private failure: Error | undefined;
  /** Tasks whose `ready` is watched already. */
  private readonly preparing = new WeakSet<WriteTask>();
  private idleWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];

  constructor(
    private readonly onConfirmed: (lsn: Lsn) => void,
    private readonly onFailure: (error: Error) => void,
    private readonly onSizeChange: (size: number) => void,
  ) {}

  /** Tasks queued or running. */
  get size(): number {
    return this.waiting.length + this.running.length;
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  push(task: WriteTask): void {
    if (this.failure !== undefined) return;
    this.waiting.push(task);
    this.startRunnable();
    this.onSizeChange(this.size);
  }

  /** Resolves when every task pushed so far has succeeded; rejects if one failed. */
  drained(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.idleWaiters.push({ resolve, reject }));
  }

  /**
   * Resolves once every started task has finished, successfully or not. A new session must not write
   * while batches of the old one may still land after its own (an older value over a newer one).
   */
  async settled(): Promise<void> {
    await Promise.allSettled(this.running.map((r) => r.result));
  }

  private startRunnable(): void {
    while (this.waiting.length > 0 && this.failure === undefined) {
      const next = this.waiting[0]!;
      const blocked = next.exclusive ? this.running.length > 0 : this.running.some((r) => r.task.exclusive);
      if (blocked) return;
      if (next.ready !== undefined) {
        if (!this.preparing.has(next)) {
          this.preparing.add(next);
          // Once prepared, the task is first in line: startRunnable() runs it, and what follows it.
          next.ready.then(
            () => {
              next.ready = undefined;
              this.startRunnable();
            },
            (error: unknown) => this.fail(error instanceof Error ? error : new Error(String(error))),
          );
        }
        return;
      }
      this.waiting.shift();
      const result = next.run();
      const running: RunningTask = { task: next, done: false, result };
      this.running.push(running);
      result.then(
        () => this.complete(running),
        (error: unknown) => this.fail(error instanceof Error ? error : new Error(String(error))),
      );
    }
  }

  private complete(running: RunningTask): void {
    if (this.failure !== undefined) return;
    running.done = true;
    let confirmed: Lsn | undefined;
    while (this.running[0]?.done === true) {
      const finished = this.running.shift()!;
      if (finished.task.ackLsn !== undefined) confirmed = finished.task.ackLsn;
    }
    if (confirmed !== undefined) this.onConfirmed(confirmed);
    this.startRunnable();
    this.onSizeChange(this.size);
    if (this.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const waiter of waiters) waiter.resolve();
    }
  }

  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.waiting.length = 0;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
    this.onFailure(error);
  }
}
