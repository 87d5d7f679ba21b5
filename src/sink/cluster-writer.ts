import { setTimeout as sleep } from 'node:timers/promises';
import { RedisWriteError } from '../errors.js';
import { ClusterSlotMap, hostOf, portOf, type NodeAddress } from './cluster-slot-map.js';
import type { RedisConnectionSettings } from './redis-target.js';
import type { SlotPlan } from './slot-plan.js';
import { RespConnection, RespError, respCommand, type RespReply } from './resp-connection.js';

// The hot path's writer on a Redis Cluster: a batch's commands go out as one MULTI/EXEC per hash slot (a
// cluster refuses a transaction across slots), each with that slot's checkpoint, all of a master's slots in one
// socket write on a connection of its own. A slot whose transaction is redirected was not applied (Redis
// discards the whole transaction), so it is sent again where the cluster says: MOVED (the slot moved: ask for
// the map again), ASK (the slot is moving: that one transaction goes to the new master, after ASKING),
// TRYAGAIN and CLUSTERDOWN (a slot half moved, a failover under way: wait and send again). Only once every
// slot's transaction is applied does the write resolve; the consumer acknowledges nothing before.

/** How long one batch may keep being redirected (a failover takes the node timeout, 15 s by default, and more). */
const REDIRECT_DEADLINE_MS = 60_000;
const RETRY_PAUSE_MIN_MS = 10;
const RETRY_PAUSE_MAX_MS = 500;

/** The checkpoint that goes into each slot's transaction: `text` under the slot's own key. */
export interface SlotCheckpoint {
  text: string;
  /** The RESP of `SET <the slot's checkpoint key>`, up to the text (see checkpointHead). */
  headOf(slot: number): Buffer;
}

/** The start of a slot's checkpoint write, `SET <key>`, in RESP: the rest (checkpointTailOf) is the same for every slot. */
export function checkpointHead(key: string): Buffer {
  return Buffer.from(`*5\r\n$3\r\nSET\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n`);
}

/** ` <text> XX GET` in RESP: the end of every slot's checkpoint write of one batch. */
function checkpointTailOf(text: string): Buffer {
  return Buffer.from(`$${Buffer.byteLength(text)}\r\n${text}\r\n$2\r\nXX\r\n$3\r\nGET\r\n`);
}

/** What a batch's slot transactions found: each slot's previous checkpoint, and the masters that applied some. */
export interface AppliedSlots {
  /** The slots applied, and the checkpoint each held before (null: none; empty without a checkpoint). */
  slots: number[];
  previous: Array<string | null>;
  nodes: Set<NodeAddress>;
  /** Transactions sent again after MOVED, ASK, TRYAGAIN or CLUSTERDOWN. */
  redirects: number;
}

export interface ClusterWriterSettings {
  /** The cluster nodes given (REDIS_CLUSTER_NODES): where the slot map is first asked for. */
  seeds: readonly NodeAddress[];
  /** User, password and TLS, as ioredis parsed REDIS_URL; host and port are each node's. */
  connection: RedisConnectionSettings;
}

/** A slot transaction that was not applied, and where to send it again. */
type Redirect =
  { kind: 'moved'; to: NodeAddress; reason: string } | { kind: 'ask'; to: NodeAddress; reason: string } | { kind: 'wait'; reason: string };

/** What became of a master's slot transactions: per slot, its redirection, or undefined and its previous checkpoint. */
interface SentSlots {
  redirects: Array<Redirect | undefined>;
  previous: Array<string | null | undefined>;
}

export class ClusterWriter {
  readonly slotMap = new ClusterSlotMap();
  private slotMapLoaded = false;
  private readonly connections = new Map<NodeAddress, Promise<RespConnection>>();
  /**
   * A buffer per master for what is sent to it, reused: a batch is sent only once the previous one was answered
   * (ClusterSink applies them one after another), and a new buffer per batch and master would leave garbage.
   */
  private readonly sendBuffers = new Map<NodeAddress, Buffer>();

  constructor(
    private readonly settings: ClusterWriterSettings,
    /** Every writer connection's name (CLIENT SETNAME): a new active process closes its predecessor's by it. */
    readonly writerName: string,
  ) {}

  /** Loads the slot map once; later it is corrected by MOVED replies and refreshSlots(). */
  async ensureSlotMap(): Promise<ClusterSlotMap> {
    if (!this.slotMapLoaded) await this.refreshSlots();
    return this.slotMap;
  }

  /** Asks the masters known, then the seeds, for CLUSTER SLOTS, until one answers. */
  async refreshSlots(): Promise<void> {
    const candidates = [...new Set([...this.slotMap.masters, ...this.settings.seeds])];
    const failures: string[] = [];
    for (const address of candidates) {
      let connection: RespConnection | undefined;
      try {
        connection = await RespConnection.connect(this.settings.connection, 'budget-cdc-slots', addressOf(address));
        const [reply] = await connection.send(respCommand(['CLUSTER', 'SLOTS']), 1);
        if (reply instanceof RespError) throw new RedisWriteError(reply.message);
        this.slotMap.update(reply, address);
        if (this.slotMap.uncoveredSlots() > 0) throw new RedisWriteError(`${this.slotMap.uncoveredSlots()} slots have no master`);
        this.slotMapLoaded = true;
        return;
      } catch (error) {
        failures.push(`${address}: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        connection?.close();
      }
    }
    throw new RedisWriteError(`no Redis Cluster node gave a whole slot map (CLUSTER SLOTS): ${failures.join('; ')}`);
  }

  /**
   * Applies each slot's transaction, with `checkpoint` in it when given, following redirections until all are
   * applied. Rejects on any other error, on a lost connection (what was applied is then unknown: the consumer
   * replays), and when the cluster keeps redirecting past the deadline.
   */
  async apply(bytes: Buffer, plan: SlotPlan, slots: readonly number[], checkpoint: SlotCheckpoint | undefined): Promise<AppliedSlots> {
    await this.ensureSlotMap();
    const applied: AppliedSlots = { slots: [], previous: [], nodes: new Set(), redirects: 0 };
    const askTargets = new Map<number, NodeAddress>();
    const deadline = performance.now() + REDIRECT_DEADLINE_MS;
    let pending = slots;
    for (let attempt = 0; pending.length > 0; attempt++) {
      const byNode = new Map<NodeAddress, number[]>();
      for (const slot of pending) {
        const node = askTargets.get(slot) ?? this.slotMap.ownerOf(slot);
        let list = byNode.get(node);
        if (list === undefined) byNode.set(node, (list = []));
        list.push(slot);
      }
      const sent = await Promise.all(
        [...byNode].map(async ([node, list]) => ({ node, list, result: await this.send(node, bytes, plan, list, checkpoint, askTargets) })),
      );
      const retry: number[] = [];
      let refresh = false;
      let pause = false;
      let reason = '';
      for (const { node, list, result } of sent) {
        for (let i = 0; i < list.length; i++) {
          const slot = list[i]!;
          const redirect = result.redirects[i];
          if (redirect === undefined) {
            const previous = result.previous[i];
            if (previous !== undefined) {
              applied.slots.push(slot);
              applied.previous.push(previous);
            }
            applied.nodes.add(node);
            continue;
          }
          retry.push(slot);
          reason = redirect.reason;
          askTargets.delete(slot);
          if (redirect.kind === 'moved') {
            this.slotMap.move(slot, redirect.to);
            refresh = true; // a slot moved: others likely did too
          } else if (redirect.kind === 'ask') {
            askTargets.set(slot, redirect.to);
          } else {
            pause = true;
            refresh = true;
          }
        }
      }
      applied.redirects += retry.length;
      pending = retry;
      if (pending.length === 0) break;
      if (performance.now() > deadline) {
        throw new RedisWriteError(
          `the Redis Cluster kept redirecting ${pending.length} slot transactions for ${REDIRECT_DEADLINE_MS / 1000} s (last: ${reason}): is a slot without a master?`,
        );
      }
      if (pause) await sleep(Math.min(RETRY_PAUSE_MIN_MS * 2 ** attempt, RETRY_PAUSE_MAX_MS));
      // A failed refresh (the node asked is the one that failed) leaves the map as MOVED corrected it.
      if (refresh) await this.refreshSlots().catch(() => undefined);
    }
    return applied;
  }

  /** WAIT on each of `nodes`; resolves with the fewest replicas any of them confirmed. */
  async waitForReplicas(nodes: Iterable<NodeAddress>, minReplicas: number, timeoutMs: number): Promise<number> {
    const command = respCommand(['WAIT', String(minReplicas), String(timeoutMs)]);
    const counts = await Promise.all(
      [...nodes].map(async (node) => {
        const [reply] = await (await this.connect(node)).send(command, 1);
        if (typeof reply !== 'number') {
          throw new RedisWriteError(`redis WAIT on ${node} answered ${reply instanceof RespError ? reply.message : JSON.stringify(reply)}`);
        }
        return reply;
      }),
    );
    return counts.length === 0 ? minReplicas : Math.min(...counts);
  }

  /** Closes every writer connection; the next write opens new ones. */
  close(): void {
    for (const connection of this.connections.values())
      connection.then(
        (c) => c.close(),
        () => undefined,
      );
    this.connections.clear();
  }

  /** Sends the transactions of `slots` to `node` in one write and reads what became of each. */
  private async send(
    node: NodeAddress,
    bytes: Buffer,
    plan: SlotPlan,
    slots: readonly number[],
    checkpoint: SlotCheckpoint | undefined,
    askTargets: ReadonlyMap<number, NodeAddress>,
  ): Promise<SentSlots> {
    // Each slot's checkpoint SET: the command and key are the slot's own (cached), the text is the batch's.
    const checkpointTail = checkpoint === undefined ? EMPTY : checkpointTailOf(checkpoint.text);
    let size = 0;
    let replies = 0;
    for (const slot of slots) {
      if (askTargets.get(slot) === node) size += ASKING.length;
      size += MULTI.length + EXEC.length + plan.byteLength(slot);
      if (checkpoint !== undefined) size += checkpoint.headOf(slot).length + checkpointTail.length;
    }
    const out = this.sendBuffer(node, size);
    let at = 0;
    for (const slot of slots) {
      if (askTargets.get(slot) === node) {
        at += ASKING.copy(out, at);
        replies++;
      }
      at += MULTI.copy(out, at);
      at = plan.copy(slot, bytes, out, at);
      if (checkpoint !== undefined) {
        at += checkpoint.headOf(slot).copy(out, at);
        at += checkpointTail.copy(out, at);
      }
      at += EXEC.copy(out, at);
      replies += plan.commandCount(slot) + (checkpoint === undefined ? 0 : 1) + 2;
    }
    const connection = await this.connect(node);
    const answers = await connection.send(out.subarray(0, size), replies);
    const result: SentSlots = {
      redirects: new Array<Redirect | undefined>(slots.length),
      previous: new Array<string | null | undefined>(slots.length),
    };
    let next = 0;
    for (let s = 0; s < slots.length; s++) {
      const slot = slots[s]!;
      if (askTargets.get(slot) === node) expectOk(answers[next++], 'ASKING', node);
      expectOk(answers[next++], 'MULTI', node);
      let refused: RespError | undefined;
      const commands = plan.commandCount(slot);
      const queued = commands + (checkpoint === undefined ? 0 : 1);
      for (let q = 0; q < queued; q++) {
        const answer = answers[next++];
        if (answer instanceof RespError) refused ??= answer;
        else if (answer !== 'QUEUED') throw new RedisWriteError(`redis ${node} answered ${JSON.stringify(answer)} to a queued command`);
      }
      const results = answers[next++];
      if (Array.isArray(results) && refused === undefined) {
        result.previous[s] = appliedPrevious(results, slot, commands, checkpoint !== undefined, node);
        continue;
      }
      // A refused command aborts the transaction (EXECABORT): nothing of it was applied. EXEC itself is refused
      // with the redirection when the slot moved between queueing and EXEC.
      const error = refused ?? (results instanceof RespError ? results : new RespError(`EXEC answered ${JSON.stringify(results)}`));
      const redirect = redirectOf(error);
      if (redirect === undefined) throw new RedisWriteError(`redis ${node} refused the transaction of hash slot ${slot}: ${error.message}`);
      result.redirects[s] = redirect;
    }
    return result;
  }

  private sendBuffer(node: NodeAddress, size: number): Buffer {
    let buffer = this.sendBuffers.get(node);
    if (buffer === undefined || buffer.length < size) {
      buffer = Buffer.allocUnsafe(Math.max(size, 2 * (buffer?.length ?? 0), 64 * 1024));
      this.sendBuffers.set(node, buffer);
    }
    return buffer;
  }

  /** The writer connection to `node`, opened on first use; a closed one is replaced. */
  private async connect(node: NodeAddress): Promise<RespConnection> {
    const existing = this.connections.get(node);
    if (existing !== undefined) {
      const connection = await existing.catch(() => undefined);
      if (connection !== undefined && !connection.isClosed) return connection;
      if (this.connections.get(node) === existing) this.connections.delete(node);
      if (connection === undefined) return existing; // the connect failed: say why
      return this.connect(node);
    }
    const opening = RespConnection.connect(this.settings.connection, this.writerName, addressOf(node));
    this.connections.set(node, opening);
    opening.catch(() => {
      if (this.connections.get(node) === opening) this.connections.delete(node);
    });
    return opening;
  }
}

/** Checks an applied slot transaction's results; returns the checkpoint it replaced (undefined without one). */
function appliedPrevious(
  results: RespReply[],
  slot: number,
  commands: number,
  withCheckpoint: boolean,
  node: NodeAddress,
): string | null | undefined {
  const expected = commands + (withCheckpoint ? 1 : 0);
  if (results.length !== expected) {
    throw new RedisWriteError(`redis ${node} EXEC answered ${results.length} results for ${expected} commands of hash slot ${slot}`);
  }
  for (let i = 0; i < commands; i++) {
    const result = results[i];
    if (result instanceof RespError)
      throw new RedisWriteError(`redis ${node} command ${i + 1} of hash slot ${slot} failed: ${result.message}`);
    if (result === null || result === undefined)
      throw new RedisWriteError(`redis ${node} command ${i + 1} of hash slot ${slot} returned no reply`);
  }
  if (!withCheckpoint) return undefined;
  const previous = results[expected - 1];
  if (previous instanceof RespError)
    throw new RedisWriteError(`redis ${node} checkpoint write of hash slot ${slot} failed: ${previous.message}`);
  if (typeof previous !== 'string' && previous !== null) {
    throw new RedisWriteError(`redis ${node} checkpoint write of hash slot ${slot} answered ${JSON.stringify(previous)}`);
  }
  return previous;
}

/** MOVED, ASK, TRYAGAIN and CLUSTERDOWN: the transaction was not applied and may be sent again. */
function redirectOf(error: RespError): Redirect | undefined {
  const [code, , address] = error.message.split(' ');
  if (code === 'MOVED' && address !== undefined) return { kind: 'moved', to: address, reason: error.message };
  if (code === 'ASK' && address !== undefined) return { kind: 'ask', to: address, reason: error.message };
  if (code === 'TRYAGAIN' || code === 'CLUSTERDOWN') return { kind: 'wait', reason: error.message };
  return undefined;
}

function expectOk(answer: RespReply | undefined, command: string, node: NodeAddress): void {
  if (answer !== 'OK') {
    throw new RedisWriteError(
      `redis ${node} answered ${answer instanceof RespError ? answer.message : JSON.stringify(answer)} to ${command}`,
    );
  }
}

function addressOf(node: NodeAddress): { host: string; port: number } {
  return { host: hostOf(node), port: portOf(node) };
}

const EMPTY = Buffer.alloc(0);
const ASKING = Buffer.from(respCommand(['ASKING']));
const MULTI = Buffer.from(respCommand(['MULTI']));
const EXEC = Buffer.from(respCommand(['EXEC']));
