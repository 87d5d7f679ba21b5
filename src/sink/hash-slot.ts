// Redis Cluster's hash slot of a key, computed here as the server computes it (CLUSTER KEYSLOT), so that a
// sink on a cluster can group a batch's writes by slot before sending them. The rule: CRC16 (XMODEM) of the
// key modulo 16384; when the key holds a "{" followed later by a "}" with at least one byte between them,
// only the bytes between the first "{" and the first "}" after it are hashed (a hash tag).

/** Slots of a Redis Cluster. */
export const HASH_SLOTS = 16_384;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const CRC16_TABLE = makeCrc16Table();

/** The hash slot of `key` (its UTF-8 bytes when a string). */
export function hashSlot(key: string | Buffer): number {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key;
  return hashSlotOfBytes(bytes, 0, bytes.length);
}

/** The hash slot of the key `bytes[keyStart, keyEnd)`, without copying it (the cluster batch reads keys in place). */
export function hashSlotOfBytes(bytes: Buffer, keyStart: number, keyEnd: number): number {
  let start = keyStart;
  let end = keyEnd;
  const open = bytes.indexOf(OPEN_BRACE, keyStart);
  if (open >= 0 && open < keyEnd) {
    const close = bytes.indexOf(CLOSE_BRACE, open + 1);
    // "{}" is no tag: the whole key is hashed.
    if (close > open + 1 && close < keyEnd) {
      start = open + 1;
      end = close;
    }
  }
  return crc16(bytes, start, end) % HASH_SLOTS;
}

let slotTags: string[] | undefined;

/**
 * A short hash tag whose keys land in `slot`: budget-cdc's own per-slot keys (a checkpoint per slot) are named
 * with it, so that each sits in the same slot as the job keys it covers. The table is found once by trying
 * short base-36 strings until every slot has one (about 170,000 tries, a few milliseconds).
 */
export function slotTag(slot: number): string {
  if (slotTags === undefined) {
    const tags: string[] = new Array<string>(HASH_SLOTS);
    let found = 0;
    for (let n = 0; found < HASH_SLOTS; n++) {
      const tag = n.toString(36);
      const tagSlot = hashSlot(tag);
      if (tags[tagSlot] === undefined) {
        tags[tagSlot] = tag;
        found++;
      }
    }
    slotTags = tags;
  }
  return slotTags[slot]!;
}

/** CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as Redis Cluster's key hash. */
function crc16(bytes: Buffer, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}

function makeCrc16Table(): Uint16Array {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
}
