import net from 'node:net';
import tls from 'node:tls';
import type { RedisAddress } from '../config.js';
import { RedisWriteError } from '../errors.js';
import type { RedisConnectionSettings } from './redis-target.js';

// The hot path's own Redis connection: a batch of commands is encoded by the caller as one RESP string and
// written with one socket write; replies are parsed here without an object per command. Profiling the
// consumer showed ioredis's per-command handling (Command objects, per-argument writes, per-reply
// promises) costing more Node CPU and garbage collection than everything else together. ioredis stays
// for everything else (connect checks, SCAN, status, dead letters).

/** A RESP reply: simple string, error, integer, bulk string (null for nil) or array. */
export type RespReply = string | RespError | number | null | RespReply[];

export class RespError {
  constructor(readonly message: string) {}
}

interface PendingBatch {
  replies: number;
  received: RespReply[];
  resolve: (replies: RespReply[]) => void;
  reject: (error: Error) => void;
}

/** Appends one command in RESP to `out`, e.g. respCommand(['SET', key, value]). */
export function respCommand(args: readonly string[]): string {
  let out = '*' + args.length + '\r\n';
  for (const arg of args) out += '$' + Buffer.byteLength(arg) + '\r\n' + arg + '\r\n';
  return out;
}

export class RespConnection {
  private readonly pending: PendingBatch[] = [];
  private buffer: Buffer = Buffer.alloc(0);
  private offset = 0;
  private closedError: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.close(new RedisWriteError(`redis connection failed: ${error.message}`, { cause: error })));
    socket.on('close', () => this.close(new RedisWriteError('redis connection closed')));
  }

  /** Opens a socket to `host`:`port` (TLS when asked), with no setup: for Sentinels, and for connect(). */
  static async open(host: string, port: number, tlsOptions: tls.ConnectionOptions | false): Promise<RespConnection> {
    // A server name (SNI) only for a host name: RFC 6066 forbids an IP address there, and Node warns.
    const serverName = net.isIP(host) === 0 ? { servername: host } : {};
    const socket = tlsOptions === false ? net.connect({ host, port }) : tls.connect({ ...serverName, ...tlsOptions, host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once(tlsOptions === false ? 'connect' : 'secureConnect', () => resolve());
      socket.once('error', reject);
    });
    return new RespConnection(socket);
  }

  /**
   * Connects, authenticates, selects the database of the URL's settings and names the connection
   * `clientName` (CLIENT SETNAME); `address` (a master a Sentinel named) replaces the URL's host and port.
   */
  static async connect(settings: RedisConnectionSettings, clientName: string, address?: RedisAddress): Promise<RespConnection> {
    const connection = await RespConnection.open(address?.host ?? settings.host, address?.port ?? settings.port, settings.tls);
    const setup: string[][] = [];
    if (settings.password !== undefined) {
      setup.push(settings.username === undefined ? ['AUTH', settings.password] : ['AUTH', settings.username, settings.password]);
    }
    if (settings.database !== 0) setup.push(['SELECT', String(settings.database)]);
    setup.push(['CLIENT', 'SETNAME', clientName]);
    const replies = await connection.send(setup.map(respCommand).join(''), setup.length);
    const failed = replies.find((r) => r instanceof RespError);
    if (failed instanceof RespError) {
      connection.close(new RedisWriteError('closed'));
      throw new RedisWriteError(`redis refused the connection setup: ${failed.message}`);
    }
    return connection;
  }

  /** Writes `commands` (RESP of `replies` commands, in parts) and resolves with their replies, in order. */
  send(commands: string | Buffer | ReadonlyArray<string | Buffer>, replies: number): Promise<RespReply[]> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.pending.push({ replies, received: [], resolve, reject });
      if (typeof commands === 'string' || Buffer.isBuffer(commands)) {
        this.socket.write(commands);
      } else {
        this.socket.cork();
        for (const part of commands as ReadonlyArray<string | Buffer>) this.socket.write(part);
        this.socket.uncork();
      }
    });
  }

  get isClosed(): boolean {
    return this.closedError !== undefined;
  }

  close(error: Error = new RedisWriteError('redis connection closed')): void {
    if (this.closedError === undefined) this.closedError = error;
    this.socket.destroy();
    for (const batch of this.pending.splice(0)) batch.reject(this.closedError);
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.offset < this.buffer.length ? Buffer.concat([this.buffer.subarray(this.offset), chunk]) : chunk;
    this.offset = 0;
    for (;;) {
      const batch = this.pending[0];
      if (batch === undefined) {
        if (this.offset < this.buffer.length) this.close(new RedisWriteError('redis sent a reply nobody asked for'));
        return;
      }
      const start = this.offset;
      const reply = this.parse();
      if (reply === INCOMPLETE) {
        this.offset = start;
        return;
      }
      batch.received.push(reply);
      if (batch.received.length === batch.replies) {
        this.pending.shift();
        batch.resolve(batch.received);
      }
    }
  }

  /** Parses one reply at `offset`, or returns INCOMPLETE when the buffer ends first. */
  private parse(): RespReply | typeof INCOMPLETE {
    const buffer = this.buffer;
    const type = buffer[this.offset];
    // "+OK" and "+QUEUED" are nearly every reply (two per row of a batch): matched byte by byte, with no
    // search for the line's end and no string. (A read past the end gives undefined, which matches nothing.)
    if (type === 0x2b && matchesAt(buffer, this.offset + 1, OK_LINE)) {
      this.offset += 1 + OK_LINE.length;
      return 'OK';
    }
    if (type === 0x2b && matchesAt(buffer, this.offset + 1, QUEUED_LINE)) {
      this.offset += 1 + QUEUED_LINE.length;
      return 'QUEUED';
    }
    const lineEnd = buffer.indexOf(CRLF, this.offset);
    if (lineEnd < 0) return INCOMPLETE;
    const line = buffer.toString('utf8', this.offset + 1, lineEnd);
    this.offset = lineEnd + 2;
    switch (type) {
      case 0x2b /* + */:
        return line;
      case 0x2d /* - */:
        return new RespError(line);
      case 0x3a /* : */:
        return Number(line);
      case 0x24 /* $ */: {
        const length = Number(line);
        if (length < 0) return null;
        if (this.offset + length + 2 > buffer.length) return INCOMPLETE;
        const value = buffer.toString('utf8', this.offset, this.offset + length);
        this.offset += length + 2;
        return value;
      }
      case 0x2a /* * */: {
        const count = Number(line);
        if (count < 0) return null;
        const items: RespReply[] = [];
        for (let i = 0; i < count; i++) {
          const item = this.parse();
          if (item === INCOMPLETE) return INCOMPLETE;
          items.push(item);
        }
        return items;
      }
      default:
        this.close(new RedisWriteError(`redis sent an unknown reply type 0x${(type ?? 0).toString(16)}`));
        return INCOMPLETE;
    }
  }
}

const CRLF = Buffer.from('\r\n');
const OK_LINE = Buffer.from('OK\r\n');
const QUEUED_LINE = Buffer.from('QUEUED\r\n');

function matchesAt(buffer: Buffer, at: number, expected: Buffer): boolean {
  for (let i = 0; i < expected.length; i++) if (buffer[at + i] !== expected[i]) return false;
  return true;
}
const INCOMPLETE = Symbol('incomplete');
