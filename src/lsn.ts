/** A WAL position as PostgreSQL prints it ("16/B374D848"), held as a 64-bit unsigned bigint. */
export type Lsn = bigint;

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Parses "X/Y" into a bigint; throws on anything else. */
export function parseLsn(text: string): Lsn {
  const match = LSN_TEXT.exec(text);
  if (match === null) throw new Error(`not a WAL position (expected e.g. 16/B374D848): "${text}"`);
  return (BigInt('0x' + match[1]) << 32n) | BigInt('0x' + match[2]);
}

/** Formats a bigint WAL position as "X/Y", the way PostgreSQL prints it. */
export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}
