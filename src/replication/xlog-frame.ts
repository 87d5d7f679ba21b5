// An XLogData message as the server framed it on the wire: the CopyData head (type 'd', int32 length), the
// XLogData head ('w', start LSN, WAL end, send time), then one pgoutput message.
// https://www.postgresql.org/docs/15/protocol-replication.html
// The stream hands each change over as its frame, `buffer[frameStart, frameEnd)`: a streamed transaction's
// changes are spooled as the frames came, a run of consecutive frames copied at once.

/** CopyData head (5 bytes) and XLogData head (25 bytes): the pgoutput message starts this far into its frame. */
export const XLOG_FRAME_HEAD_BYTES = 30;

/** The frame's length, from its CopyData head: the next frame starts this far after it. */
export function xlogFrameLength(buffer: Buffer, frameStart: number): number {
  return 1 + buffer.readUInt32BE(frameStart + 1);
}

/** The WAL position where the frame's message starts. */
export function xlogFrameLsn(buffer: Buffer, frameStart: number): bigint {
  return buffer.readBigUInt64BE(frameStart + 6);
}
