/**
 * Why Redis was rebuilt from the table:
 * - `new-slot`: the slot was created (first start, or it had been dropped);
 * - `slot-lost`: PostgreSQL invalidated the slot (max_slot_wal_keep_size), so changes were missed;
 * - `redis-empty`: the checkpoint vanished: Redis lost everything (restart without persistence, FLUSHALL);
 * - `redis-went-back`: Redis holds an older checkpoint than what PostgreSQL was told is safe (restart from an
 *   older RDB or AOF, a promoted replica that missed writes), or someone else wrote our checkpoint;
 * - `requested`: `budget-cdc resync`.
 */
export type RebuildCause = 'new-slot' | 'slot-lost' | 'redis-empty' | 'redis-went-back' | 'requested';

export const REBUILD_CAUSES: readonly RebuildCause[] = ['new-slot', 'slot-lost', 'redis-empty', 'redis-went-back', 'requested'];

/** Stored when the checkpoint is removed on purpose, so the rebuild that follows knows why. */
export interface RebuildRequest {
  cause: 'redis-went-back' | 'requested';
  detail: string;
}

/** What `status` shows: rebuilds counted by cause, and the last one. */
export interface RebuildHistory {
  counts: Partial<Record<RebuildCause, number>>;
  last: { cause: RebuildCause; detail: string; at: string } | undefined;
  /**
   * The budget rule the keys were built with (`even`, or a distribution service's URL without its password),
   * recorded by each rebuild; undefined when the last rebuild predates the setting (the even split then).
   */
  distribution: string | undefined;
}

/** A history field, not a cause: the strategy the last rebuild used. */
export const DISTRIBUTION_FIELD = 'distribution';
