import { RedisWriteError } from '../errors.js';
import { HASH_SLOTS } from './hash-slot.js';

// Which master serves each hash slot, as CLUSTER SLOTS tells it: the cluster writer sends each slot's
// transaction there, and corrects the map from a MOVED reply or by asking again.

/** A master's address, "host:port". */
export type NodeAddress = string;

export class ClusterSlotMap {
  private owners: NodeAddress[] = new Array<NodeAddress>(HASH_SLOTS).fill('');
  /** firstSlots(), kept until the map changes: asked for by every acknowledging batch. */
  private firstSlotsCache: Map<NodeAddress, number> | undefined;

  /** The master serving `slot`; '' when the cluster named none (a slot not covered). */
  ownerOf(slot: number): NodeAddress {
    return this.owners[slot]!;
  }

  /** A MOVED reply: `slot` is served by `owner` now. */
  move(slot: number, owner: NodeAddress): void {
    this.owners[slot] = owner;
    this.firstSlotsCache = undefined;
  }

  /** The masters that serve at least one slot, each with the first slot it serves (see firstSlots). */
  get masters(): NodeAddress[] {
    return [...this.firstSlots().keys()];
  }

  /** Each master and the lowest slot it serves: a slot whose checkpoint lives on that master. */
  firstSlots(): Map<NodeAddress, number> {
    if (this.firstSlotsCache !== undefined) return this.firstSlotsCache;
    const first = new Map<NodeAddress, number>();
    for (let slot = 0; slot < HASH_SLOTS; slot++) {
      const owner = this.owners[slot]!;
      if (owner !== '' && !first.has(owner)) first.set(owner, slot);
    }
    this.firstSlotsCache = first;
    return first;
  }

  /**
   * Replaces the map with a CLUSTER SLOTS reply: [[first, last, [host, port, id, …], replicas…], …]. A master
   * announced with no host ("" or "?") is reached at the address that answered, `answeredBy`'s host.
   */
  update(reply: unknown, answeredBy: NodeAddress): void {
    if (!Array.isArray(reply)) throw new RedisWriteError(`redis CLUSTER SLOTS answered ${JSON.stringify(reply)}`);
    const owners = new Array<NodeAddress>(HASH_SLOTS).fill('');
    for (const range of reply as unknown[]) {
      const [first, last, master] = range as [unknown, unknown, unknown];
      if (typeof first !== 'number' || typeof last !== 'number' || !Array.isArray(master)) {
        throw new RedisWriteError(`redis CLUSTER SLOTS answered a range it cannot read: ${JSON.stringify(range)}`);
      }
      const [host, port] = master as [unknown, unknown];
      const knownHost = typeof host === 'string' && host !== '' && host !== '?' ? host : hostOf(answeredBy);
      owners.fill(`${knownHost}:${String(port)}`, first, last + 1);
    }
    this.owners = owners;
    this.firstSlotsCache = undefined;
  }

  /** Slots no master serves (a cluster not yet or no longer whole). */
  uncoveredSlots(): number {
    return this.owners.filter((owner) => owner === '').length;
  }
}

/** The host of "host:port" (an IPv6 host keeps its colons). */
export function hostOf(address: NodeAddress): string {
  return address.slice(0, address.lastIndexOf(':'));
}

/** The port of "host:port". */
export function portOf(address: NodeAddress): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}
