import type { RebuildCause, RebuildHistory, RebuildRequest } from './rebuild-record.js';
import type { RedisStore } from './redis-store.js';

/**
 * What RedisSink and ClusterSink both leave to RedisStore (ioredis): budget-cdc's own keys besides the
 * checkpoint, and SCAN and UNLINK of the job keys, which RedisStore does on one Redis or on every master.
 */
export abstract class StoreBackedSink {
  constructor(readonly store: RedisStore) {}

  get keyPrefix(): string {
    return this.store.keyPrefix;
  }

  requestRebuild(request: RebuildRequest): Promise<void> {
    return this.store.requestRebuild(request);
  }

  readRebuildRequest(): Promise<RebuildRequest | undefined> {
    return this.store.readRebuildRequest();
  }

  recordRebuild(cause: RebuildCause, detail: string, distribution: string): Promise<void> {
    return this.store.recordRebuild(cause, detail, distribution);
  }

  readRebuildHistory(): Promise<RebuildHistory> {
    return this.store.readRebuildHistory();
  }

  writeResyncProgress(progress: { totalRows: number; rowsDone: number }): Promise<void> {
    return this.store.writeResyncProgress(progress);
  }

  deleteKeysUnderPrefix(): Promise<number> {
    return this.store.deleteKeysUnderPrefix();
  }

  scanKeysUnderPrefix(): AsyncGenerator<string[]> {
    return this.store.scanKeysUnderPrefix();
  }

  deleteKeys(keys: string[]): Promise<number> {
    return this.store.deleteKeys(keys);
  }

  resetDeadLetters(): Promise<void> {
    return this.store.resetDeadLetters();
  }

  reconnectIfEnded(): Promise<void> {
    return this.store.reconnectIfEnded();
  }
}
