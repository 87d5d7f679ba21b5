// Why a session ended without a failure of its own: another process holds the slot, or Redis lost or went
// back on what the session wrote. The consumer starts the next session (or waits, as a standby).

/** Another process holds the slot: this one waits as a standby. Not a failure. */
export class StandbyError extends Error {
  override name = 'StandbyError';
  constructor(
    readonly slotName: string,
    /** Who holds it ("pid 4242 (budget-cdc host-a pid 17) from 10.0.0.7"), when PostgreSQL could tell. */
    readonly activeConsumer: string | undefined,
  ) {
    super(`slot ${slotName} is consumed by another process${activeConsumer === undefined ? '' : `: ${activeConsumer}`}`);
  }
}

/**
 * Redis answered a checkpoint this session did not write last: Redis went back in time (restarted from an
 * older snapshot, failed over to a replica that missed writes), or another process writes under our
 * checkpoint. The next session rebuilds Redis from the table.
 */
export class RedisWentBackError extends Error {
  override name = 'RedisWentBackError';
  constructor(expected: string | undefined, found: string) {
    super(
      `Redis went back in time or someone else wrote the checkpoint: expected "${expected ?? '(none)'}", found "${found}"; ` +
        'rebuilding Redis from the table (check Redis persistence and failovers, and that no other pipeline uses this --key-prefix)',
    );
  }
}

/** The checkpoint vanished while streaming: Redis restarted empty or was flushed. The next session resyncs. */
export class RedisStateLostError extends Error {
  override name = 'RedisStateLostError';
  constructor() {
    super('Redis lost its state (the checkpoint key vanished: restart without persistence or FLUSHALL); resyncing from the table');
  }
}

/**
 * The checkpoint was removed on purpose by `budget-cdc resync`: the next session rebuilds Redis from the table.
 * Not a failure: the consumer starts that session at once, logs it at info, and counts no reconnect.
 */
export class RebuildRequestedError extends Error {
  override name = 'RebuildRequestedError';
  constructor(readonly detail: string) {
    super(`a rebuild from the table was requested (${detail}): starting a session that rebuilds Redis`);
  }
}
