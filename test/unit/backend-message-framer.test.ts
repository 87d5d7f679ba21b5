import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BackendMessageFramer } from '../../src/replication/backend-message-framer.js';

// However the socket cuts the server's bytes into chunks, the framer must hand over every message once, whole and
// in order: CopyData bodies to the stream, runs of the other messages to pg's parser.

/** A server message: type byte, int32 length (counting itself), body. */
function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const serverMessage = fc.record({
  type: fc.constantFrom('d', 'd', 'd', 'E', 'c', 'C', 'Z', 'N'),
  body: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
});

/** The messages as the framer handed them over: [kind, bytes] with CopyData's body, others' whole bytes. */
function frame(chunks: Buffer[]): [string, string][] {
  const seen: [string, string][] = [];
  const framer = new BackendMessageFramer({
    copyData: (buffer, start, end) => seen.push(['copyData', buffer.toString('hex', start, end)]),
    others: (bytes) => seen.push(['others', bytes.toString('hex')]),
  });
  for (const chunk of chunks) framer.push(chunk);
  return seen;
}

/** What the framer must hand over: CopyData bodies one by one, consecutive other messages as one run. */
function expected(messages: { type: string; body: Buffer }[]): [string, string][] {
  const result: [string, string][] = [];
  for (const { type, body } of messages) {
    if (type === 'd') {
      result.push(['copyData', body.toString('hex')]);
      continue;
    }
    const whole = message(type, body).toString('hex');
    const last = result.at(-1);
    if (last?.[0] === 'others') last[1] += whole;
    else result.push(['others', whole]);
  }
  return result;
}

/** `bytes` cut at the given fractions of its length. */
function cut(bytes: Buffer, fractions: number[]): Buffer[] {
  const points = [...new Set(fractions.map((fraction) => Math.floor(fraction * bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    if (point > from) chunks.push(bytes.subarray(from, point));
    from = point;
  }
  return chunks;
}

describe('BackendMessageFramer', () => {
  it('hands over every message whole and in order, however the bytes are cut into chunks', () => {
    fc.assert(
      fc.property(
        fc.array(serverMessage, { minLength: 1, maxLength: 40 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 60 }),
        (messages, fractions) => {
          const bytes = Buffer.concat(messages.map(({ type, body }) => message(type, body)));
          const handed = frame(cut(bytes, fractions));
          // Chunk boundaries may split a run of other messages into several hand-overs: compare them joined.
          const joined: [string, string][] = [];
          for (const [kind, hex] of handed) {
            const last = joined.at(-1);
            if (kind === 'others' && last?.[0] === 'others') last[1] += hex;
            else joined.push([kind, hex]);
          }
          expect(joined).toEqual(expected(messages));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('takes a message byte by byte, its head included', () => {
    const copyData = message('d', Buffer.from('w-change'));
    const done = message('c', Buffer.alloc(0));
    const bytes = Buffer.concat([copyData, done]);
    const chunks = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
    expect(frame(chunks)).toEqual([
      ['copyData', Buffer.from('w-change').toString('hex')],
      ['others', done.toString('hex')],
    ]);
  });

  it('refuses a length that cannot be PostgreSQL protocol, naming it', () => {
    const bad = Buffer.from([0x64, 0, 0, 0, 2]);
    expect(() => frame([bad])).toThrow(/message of type 0x64 with length 2: not PostgreSQL's protocol/);
  });
});
