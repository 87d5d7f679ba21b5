import pg from 'pg';
import { formatLsn, type Lsn } from '../lsn.js';
import { BackendMessageFramer } from './backend-message-framer.js';

// A walsender connection (replication=database) on pg's Client, speaking the streaming replication
// protocol directly: START_REPLICATION as a pg "submittable"; once it runs, the stream's CopyData messages come to
// us framed in place (BackendMessageFramer), the other messages through pg.
// https://www.postgresql.org/docs/15/protocol-replication.html

/** Microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch for replication timestamps. */
const POSTGRES_EPOCH_OFFSET_US = 946_684_800_000_000n;
/** A primary keepalive message: 'k', WAL end, send time, reply requested. */
const KEEPALIVE_BYTES = 18;
/**
 * After a small chunk of the stream, reading stops for this long. A small chunk means this process reads as fast
 * as the walsender sends: it then pays a send and a wake-up of this process per message, in kernel time. Held, it
 * fills the socket and the next read takes in many messages (issue 15, per 1M rows: walsender system time 3.3 s
 * instead of 4.1 to 5.0 with a reader alone, 1.6 s instead of 1.9 to 3.8 end to end; 4 ms was slower than 1 ms).
 */
const READ_HOLD_MS = 1;
/** A chunk this large found data waiting: reading goes on at once (no cap on the rate, TLS records included). */
const READ_HOLD_BELOW_BYTES = 8 * 1024;

/** Receives the stream; called synchronously, in WAL order, for every message the server sends. */
export interface ReplicationHandler {
  /** A change message: `data` at `offset` is one pgoutput message that starts at WAL position `lsn`. */
  onXLogData(data: Buffer, offset: number, lsn: Lsn): void;
  /** The server's keepalive: everything up to `walEnd` has been sent; reply now if `replyRequested`. */
  onKeepalive(walEnd: Lsn, replyRequested: boolean): void;
  /**
   * Around each chunk of socket data, whose messages come in between: the time spent on the stream itself,
   * measured per chunk (hundreds of rows of a bulk load), never per message.
   */
  onChunkStart?(): void;
  onChunkEnd?(): void;
}

export interface StartReplicationOptions {
  slotName: string;
  publicationName: string;
  /** 0n lets the server start at the slot's confirmed position, which is what a restart must do. */
  startLsn: Lsn;
  /** Ask pgoutput for logical decoding messages (pg_logical_emit_message), e.g. heartbeats. */
  messages: boolean;
  /**
   * Protocol 2 with streaming of in-progress transactions (PostgreSQL 14 and later): a transaction larger than
   * logical_decoding_work_mem arrives in blocks while it runs, then a Stream Commit or Stream Abort. Off: protocol
   * 1, where a transaction arrives whole after its commit.
   */
  streaming?: boolean;
}

/** Opens a replication connection. TimeZone and DateStyle are fixed so timestamps arrive as ISO UTC text. */
export async function openReplicationConnection(databaseUrl: string, applicationName: string): Promise<ReplicationConnection> {
  const client = new pg.Client({
    connectionString: databaseUrl,
    replication: 'database',
    application_name: applicationName,
    options: '-c DateStyle=ISO -c TimeZone=UTC',
  } as pg.ClientConfig);
  const connection = new ReplicationConnection(client);
  await client.connect();
  return connection;
}

export class ReplicationConnection {
  private streaming: StartReplicationQuery | undefined;
  private closed = false;
  private socketError: Error | undefined;
  /** Paused by pause(), until resume(). */
  private pausedByCaller = false;
  /** Paused for READ_HOLD_MS after a small chunk. */
  private holding = false;

  constructor(private readonly client: pg.Client) {
    // Without a listener an 'error' event would crash the process; the stream's promise reports it.
    client.on('error', (error) => {
      this.socketError = error;
    });
  }

  /** Runs a replication command (CREATE_REPLICATION_SLOT, IDENTIFY_SYSTEM, …) before streaming starts. */
  async command<Row extends Record<string, unknown>>(text: string): Promise<Row[]> {
    const result = await this.client.query<Row>(text);
    return result.rows;
  }

  /**
   * Starts streaming from the slot. Resolves when the server ends the stream after `stop()`, rejects on
   * any error (server error, lost connection). Messages go to `handler` synchronously, in order.
   */
  start(options: StartReplicationOptions, handler: ReplicationHandler): Promise<void> {
    const publication = options.publicationName.replaceAll('"', '""');
    const text =
      `START_REPLICATION SLOT ${options.slotName} LOGICAL ${formatLsn(options.startLsn)} ` +
      `(proto_version '${options.streaming === true ? 2 : 1}', publication_names '"${publication}"'` +
      `${options.messages ? ", messages 'true'" : ''}${options.streaming === true ? ", streaming 'on'" : ''})`;
    const query = new StartReplicationQuery(text, handler);
    this.streaming = query;
    this.readStream(query, handler);
    this.client.query(query as unknown as pg.QueryConfig);
    return query.done;
  }

  /**
   * Tells the server that everything up to `lsn` is safely written (write = flush = apply = lsn). Returns
   * false when the connection is already closed and nothing was sent.
   */
  sendStatus(lsn: Lsn, replyRequested = false): boolean {
    if (this.closed || this.socketError !== undefined) return false;
    const message = Buffer.alloc(34);
    message[0] = 0x72; // 'r': standby status update
    message.writeBigUInt64BE(lsn, 1);
    message.writeBigUInt64BE(lsn, 9);
    message.writeBigUInt64BE(lsn, 17);
    message.writeBigInt64BE(BigInt(Date.now()) * 1000n - POSTGRES_EPOCH_OFFSET_US, 25);
    message[33] = replyRequested ? 1 : 0;
    this.rawConnection().sendCopyFromChunk(message);
    return true;
  }

  /** Stops reading from the socket: the server blocks once the socket buffers fill. */
  pause(): void {
    this.pausedByCaller = true;
    this.rawConnection().stream.pause();
  }

  resume(): void {
    this.pausedByCaller = false;
    if (!this.holding) this.rawConnection().stream.resume();
  }

  /** Asks the server to end the stream (CopyDone); the promise of start() resolves once it has. */
  requestStop(): void {
    if (this.streaming === undefined || this.closed || this.socketError !== undefined) return;
    this.rawConnection().endCopyFrom();
  }

  /** Closes the connection (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.end().catch(() => undefined);
  }

  /**
   * Puts a BackendMessageFramer in front of pg's parser: the stream's CopyData messages go to `query` in place,
   * every other message to pg's parser as before. Around each chunk come the handler's chunk hooks, and after a
   * small one reading holds (READ_HOLD_MS). Set after connect: the stream is final then (with TLS, the TLS
   * socket), and idle: pg's parser holds no partial message.
   */
  private readStream(query: StartReplicationQuery, handler: ReplicationHandler): void {
    const stream = this.rawConnection().stream;
    const pgListeners = stream.listeners('data') as ((chunk: Buffer) => void)[];
    if (pgListeners.length !== 1) {
      throw new Error(`pg's connection has ${pgListeners.length} 'data' listeners, 1 expected: this pg version is not supported`);
    }
    const pgParse = pgListeners[0]!;
    stream.removeListener('data', pgParse);
    const framer = new BackendMessageFramer({
      copyData: (buffer, start, end) => query.handleCopyBody(buffer, start, end),
      others: (bytes) => pgParse.call(stream, bytes),
    });
    const release = (): void => {
      this.holding = false;
      if (!this.pausedByCaller) stream.resume();
    };
    stream.on('data', (chunk: Buffer) => {
      handler.onChunkStart?.();
      try {
        framer.push(chunk);
      } catch (error) {
        // Bytes that are not PostgreSQL's protocol, or pg failing on a message it was given: nothing after them can
        // be read (pg's own listener would have thrown out of the event instead).
        query.handleError(error as Error);
        (stream as unknown as { destroy(error: Error): void }).destroy(error as Error);
        return;
      } finally {
        handler.onChunkEnd?.();
      }
      if (this.holding || chunk.length >= READ_HOLD_BELOW_BYTES) return;
      this.holding = true;
      stream.pause();
      setTimeout(release, READ_HOLD_MS);
    });
  }

  private rawConnection(): RawConnection {
    return (this.client as unknown as { connection: RawConnection }).connection;
  }
}

/** The parts of pg's internal Connection that replication needs (pg exposes no public copy-both API). */
interface RawConnection {
  stream: NodeJS.ReadableStream & NodeJS.WritableStream;
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/** START_REPLICATION as a pg submittable: pg hands it every message of the copy-both exchange. */
class StartReplicationQuery {
  readonly done: Promise<void>;
  private resolve!: () => void;
  private reject!: (error: Error) => void;
  private error: Error | undefined;

  constructor(
    readonly text: string,
    private readonly handler: ReplicationHandler,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  submit(connection: RawConnection): void {
    connection.query(this.text);
  }

  /** The body of a CopyData message, `buffer[start, end)`, framed by BackendMessageFramer. */
  handleCopyBody(buffer: Buffer, start: number, end: number): void {
    if (this.error !== undefined) return;
    try {
      const kind = buffer[start];
      if (kind === 0x77 /* w: XLogData */) {
        // header: start LSN (8), server WAL end (8), send time (8); the pgoutput message follows
        const data = buffer.subarray(start, end);
        this.handler.onXLogData(data, 25, data.readBigUInt64BE(1));
      } else if (kind === 0x6b /* k: primary keepalive */) {
        // 'k', WAL end (8), send time (8), reply requested (1): read within the message, not into the next one.
        if (end - start < KEEPALIVE_BYTES) throw new Error(`keepalive message of ${end - start} bytes: ${KEEPALIVE_BYTES} expected`);
        this.handler.onKeepalive(buffer.readBigUInt64BE(start + 1), buffer[start + 17] === 1);
      }
    } catch (error) {
      // A handler failure ends the stream: nothing after it may be processed or acknowledged.
      this.fail(error as Error);
    }
  }

  /** pg's parser gets no CopyData message while the framer takes them; kept for pg's interface. */
  handleCopyData(): void {}

  handleError(error: Error): void {
    this.fail(error);
  }

  handleReadyForQuery(): void {
    if (this.error !== undefined) this.reject(this.error);
    else this.resolve();
  }

  private fail(error: Error): void {
    if (this.error !== undefined) return;
    this.error = error;
    // Reject now rather than at ReadyForQuery: after a socket error none will come.
    this.reject(error);
  }

  // The other messages of a simple query carry nothing for us.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
}
