// Splits the bytes a PostgreSQL connection receives into the server's messages (type byte, int32 length that
// counts itself, body): https://www.postgresql.org/docs/15/protocol-message-formats.html
// While a replication stream runs, nearly every message is a CopyData carrying one change. pg's own parser makes
// an object, a slice and two events of each; this framer hands the CopyData messages over in place instead (about
// a million per 1M-row load), and passes every other message, whole, to pg's parser, which keeps doing what pg
// does with them (errors, CopyDone, CommandComplete, ReadyForQuery).

/** Message type byte of CopyData. */
const COPY_DATA = 0x64;
/** Type byte and length. */
const HEAD_BYTES = 5;

/** Receives the framed messages, synchronously and in the order the server sent them. */
export interface FramedMessages {
  /**
   * A CopyData message whose body is `buffer[start, end)`. The bytes are valid until the framer gets its next
   * chunk at most: keep a copy of what must outlive the call.
   */
  copyData(buffer: Buffer, start: number, end: number): void;
  /** Any other messages, whole (one or more, back to back): pg's parser takes them. */
  others(bytes: Buffer): void;
}

export class BackendMessageFramer {
  /** A message that began in an earlier chunk: its bytes so far, in a buffer of its full size once known. */
  private partial: Buffer | undefined;
  private partialLength = 0;

  constructor(private readonly messages: FramedMessages) {}

  /** Frames one chunk of the socket's bytes. */
  push(chunk: Buffer): void {
    let at = this.partial === undefined ? 0 : this.completePartial(chunk);
    let othersFrom = -1; // first byte of a run of other messages not handed over yet
    while (chunk.length - at >= HEAD_BYTES) {
      const end = at + 1 + messageLength(chunk, at);
      if (end > chunk.length) break;
      if (chunk[at] === COPY_DATA) {
        if (othersFrom >= 0) this.messages.others(chunk.subarray(othersFrom, at));
        othersFrom = -1;
        this.messages.copyData(chunk, at + HEAD_BYTES, end);
      } else if (othersFrom < 0) {
        othersFrom = at;
      }
      at = end;
    }
    if (othersFrom >= 0) this.messages.others(chunk.subarray(othersFrom, at));
    if (at < chunk.length) this.keepPartial(chunk, at);
  }

  /** Adds the start of `chunk` to the partial message; hands it over if complete. Returns where the chunk's rest starts. */
  private completePartial(chunk: Buffer): number {
    let at = 0;
    if (this.partialLength < HEAD_BYTES) {
      // Its length is not known yet: the head first.
      const taken = Math.min(HEAD_BYTES - this.partialLength, chunk.length);
      chunk.copy(this.partial!, this.partialLength, 0, taken);
      this.partialLength += taken;
      at = taken;
      if (this.partialLength < HEAD_BYTES) return at;
      const full = Buffer.allocUnsafe(1 + messageLength(this.partial!, 0));
      this.partial!.copy(full, 0, 0, HEAD_BYTES);
      this.partial = full;
    }
    const message = this.partial!;
    const taken = Math.min(message.length - this.partialLength, chunk.length - at);
    chunk.copy(message, this.partialLength, at, at + taken);
    this.partialLength += taken;
    at += taken;
    if (this.partialLength < message.length) return at;
    this.partial = undefined;
    this.partialLength = 0;
    if (message[0] === COPY_DATA) this.messages.copyData(message, HEAD_BYTES, message.length);
    else this.messages.others(message);
    return at;
  }

  /** Keeps `chunk[at, end)`, the start of a message, in a buffer of its own (the chunk is not kept). */
  private keepPartial(chunk: Buffer, at: number): void {
    const available = chunk.length - at;
    const size = available >= HEAD_BYTES ? 1 + messageLength(chunk, at) : HEAD_BYTES;
    this.partial = Buffer.allocUnsafe(size);
    chunk.copy(this.partial, 0, at);
    this.partialLength = available;
  }
}

/** The length field of the message at `at` (it counts itself, not the type byte). */
function messageLength(bytes: Buffer, at: number): number {
  const length = bytes.readUInt32BE(at + 1);
  if (length < 4)
    throw new Error(`the server sent a message of type 0x${bytes[at]!.toString(16)} with length ${length}: not PostgreSQL's protocol`);
  return length;
}
