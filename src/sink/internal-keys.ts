import { INTERNAL_KEY_PREFIX } from '../config.js';
import { slotTag } from './hash-slot.js';

// budget-cdc's own keys, all under "budget-cdc:", which no job key prefix may cover (see loadConfig), so
// TRUNCATE and readers of job keys never touch them.

/**
 * The checkpoint of the job keys under `keyPrefix`: it describes what that keyspace holds, whichever slot
 * fed it (LSNs are positions in the server's WAL, the same for every slot of it).
 */
export function checkpointKey(keyPrefix: string): string {
  return `${INTERNAL_KEY_PREFIX}checkpoint:${keyPrefix}`;
}

/**
 * On a Redis Cluster, the checkpoint of the job keys under `keyPrefix` that hash to `slot`: a hash tag puts it
 * in that slot, so that one MULTI/EXEC applies a slot's writes and the checkpoint that covers them.
 */
export function slotCheckpointKey(keyPrefix: string, slot: number): string {
  return `${INTERNAL_KEY_PREFIX}checkpoint:{${slotTag(slot)}}:${keyPrefix}`;
}

/** The progress of a running resync of `keyPrefix`, for `budget-cdc resync` to show. */
export function resyncProgressKey(keyPrefix: string): string {
  return `${INTERNAL_KEY_PREFIX}resync:${keyPrefix}`;
}

/** The rows of a slot that could not be processed: a list, newest first, trimmed to DEAD_LETTER_LIMIT. */
export function deadLetterKey(slotName: string): string {
  return `${INTERNAL_KEY_PREFIX}dead-letters:${slotName}`;
}

/** Why the checkpoint of `keyPrefix` was removed (a resync requested, Redis found gone back in time), until the rebuild. */
export function rebuildRequestKey(keyPrefix: string): string {
  return `${INTERNAL_KEY_PREFIX}rebuild-request:${keyPrefix}`;
}

/** A hash: rebuilds of `keyPrefix` counted by cause, and the last one ("last"), for `budget-cdc status`. */
export function rebuildHistoryKey(keyPrefix: string): string {
  return `${INTERNAL_KEY_PREFIX}rebuilds:${keyPrefix}`;
}

/** What a running consumer measured of the slot's lag, for `budget-cdc status`; expires when it stops publishing. */
export function publishedLagKey(slotName: string): string {
  return `${INTERNAL_KEY_PREFIX}lag:${slotName}`;
}

/** Where the consumers of a slot publish their role, one key per process under this prefix. */
export function publishedRolePrefix(slotName: string): string {
  return `${INTERNAL_KEY_PREFIX}consumer:${slotName}:`;
}
