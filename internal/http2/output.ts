/**
 * Our side of the wire: every frame a connection sends is encoded straight into its one
 * output buffer, and the frames made in one turn of the event loop go out in one socket
 * write (the connection's flush). What the peer makes us queue without reading it
 * (ACKs, resets) is counted here, and a flood of it ends the connection.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import {
  ENHANCE_YOUR_CALM,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FRAME_CONTINUATION,
  FRAME_GOAWAY,
  FRAME_HEADERS,
  FRAME_RST_STREAM,
  FRAME_WINDOW_UPDATE,
  writeFrameHeader,
  writeUint32,
} from "./frames.ts";

/** Output held (queued plus being written) past which no more DATA is framed for now. */
const OUTPUT_HIGH_WATER = 256 * 1024;

/** The first four bytes of our PINGs' payload ("h2pi"); the sequence number follows. */
export const PING_TAG = 0x68327069;

/**
 * Makes room for `bytes` more in the output buffer; returns where they go.
 *
 * @example
 * ```ts ignore
 * connection.out.set(bytes, reserve(connection, bytes.length));
 * ```
 */
export function reserve(conn: Connection, bytes: number): number {
  const at = conn.outLen;
  if (at + bytes > conn.out.length) {
    const bigger = new Uint8Array(Math.max(conn.out.length * 2, at + bytes));
    bigger.set(conn.out.subarray(0, at));
    conn.out = bigger;
  }
  conn.outLen = at + bytes;
  return at;
}

/**
 * Appends a frame header; returns where its payload goes.
 *
 * @example
 * ```ts ignore
 * // The buffer may grow in frame(): take `out` after it.
 * const at = frame(connection, 4, FRAME_WINDOW_UPDATE, 0, 0);
 * writeUint32(connection.out, at, increment);
 * ```
 */
export function frame(
  conn: Connection,
  length: number,
  type: number,
  flags: number,
  id: number,
): number {
  const at = reserve(conn, 9 + length);
  writeFrameHeader(conn.out, at, length, type, flags, id);
  return at + 9;
}

/**
 * Whether the output holds so much (queued and being written) that DATA waits.
 *
 * @example
 * ```ts ignore
 * if (!outputFull(connection)) pumpOne(connection, stream, Infinity);
 * ```
 */
export function outputFull(conn: Connection): boolean {
  return conn.outLen + conn.inflight >= OUTPUT_HIGH_WATER;
}

/**
 * Has the output written soon: once, at the end of this turn of the event loop.
 *
 * @example
 * ```ts ignore
 * frame(connection, 0, FRAME_SETTINGS, FLAG_ACK, 0);
 * requestFlush(connection);
 * ```
 */
export function requestFlush(conn: Connection): void {
  if (conn.writing || conn.flushQueued || conn.socketClosed) return;
  conn.flushQueued = true;
  queueMicrotask(conn.flushNow);
}

/**
 * Counts a frame the peer made us queue; false (and the connection ends) on a flood.
 *
 * @example
 * ```ts ignore
 * if (!countControl(connection, 17)) return; // a PING ACK
 * ```
 */
export function countControl(conn: Connection, bytes: number): boolean {
  conn.controlFrames++;
  conn.controlBytes += bytes;
  const frames = conn.controlFrames + conn.inflightControlFrames;
  const total = conn.controlBytes + conn.inflightControlBytes;
  const options = conn.options;
  if (
    frames > (options.maxQueuedControlFrames ?? 10_000) ||
    total > (options.maxQueuedControlBytes ?? 1024 * 1024)
  ) {
    conn.connectionError(
      ENHANCE_YOUR_CALM,
      "the peer makes us queue frames it does not read",
      true,
    );
    return false;
  }
  return true;
}

/**
 * Whether the frames the peer made us queue (unwritten, or being written) reach a
 * quarter of their bound: time to let them go out before reading on.
 *
 * @example
 * ```ts ignore
 * if (controlOwed(connection)) break; // and yield to the event loop
 * ```
 */
export function controlOwed(conn: Connection): boolean {
  const options = conn.options;
  return 4 * (conn.controlFrames + conn.inflightControlFrames) >=
      (options.maxQueuedControlFrames ?? 10_000) ||
    4 * (conn.controlBytes + conn.inflightControlBytes) >=
      (options.maxQueuedControlBytes ?? 1024 * 1024);
}

/**
 * Queues a WINDOW_UPDATE (the caller requests the flush).
 *
 * @example
 * ```ts ignore
 * windowUpdate(connection, 0, 1024 * 1024);
 * ```
 */
export function windowUpdate(conn: Connection, id: number, increment: number): void {
  const at = frame(conn, 4, FRAME_WINDOW_UPDATE, 0, id);
  writeUint32(conn.out, at, increment);
}

/**
 * Sends RST_STREAM; `peerInduced` counts it against the flood bound.
 *
 * @example
 * ```ts ignore
 * rstFrame(connection, stream.id, CANCEL, false);
 * ```
 */
export function rstFrame(conn: Connection, id: number, code: number, peerInduced: boolean): void {
  if (peerInduced && !countControl(conn, 13)) return;
  const at = frame(conn, 4, FRAME_RST_STREAM, 0, id);
  writeUint32(conn.out, at, code);
  rememberReset(conn, id);
  requestFlush(conn);
}

/**
 * Remembers a stream we reset (see `reset_memory.ts`), so that frames the peer sent
 * before it learnt of the reset are ignored rather than treated as errors.
 *
 * @example
 * ```ts ignore
 * rememberReset(connection, 7);
 * ```
 */
export function rememberReset(conn: Connection, id: number): void {
  conn.resetByUs.add(id);
}

/**
 * Queues a header block as HEADERS and, past the peer's frame size, CONTINUATION frames.
 *
 * @example
 * ```ts ignore
 * headerFrames(connection, stream.id, encodeFlatHeaderBlock([":status", "204"]), true);
 * ```
 */
export function headerFrames(
  conn: Connection,
  id: number,
  block: Uint8Array,
  endStream: boolean,
): void {
  const end = endStream ? FLAG_END_STREAM : 0;
  const max = conn.peerMaxFrame;
  if (block.length <= max) {
    const at = frame(conn, block.length, FRAME_HEADERS, FLAG_END_HEADERS | end, id);
    conn.out.set(block, at);
    return;
  }
  let at = frame(conn, max, FRAME_HEADERS, end, id);
  conn.out.set(block.subarray(0, max), at);
  for (let from = max; from < block.length; from += max) {
    const size = Math.min(max, block.length - from);
    const last = from + size >= block.length;
    at = frame(conn, size, FRAME_CONTINUATION, last ? FLAG_END_HEADERS : 0, id);
    conn.out.set(block.subarray(from, from + size), at);
  }
}

/**
 * Sends GOAWAY with the highest stream the peer opened, and `debug` (at most 256
 * characters) as its debug data.
 *
 * @example
 * ```ts ignore
 * sendGoAway(connection, NO_ERROR, "shutting down");
 * ```
 */
export function sendGoAway(conn: Connection, code: number, debug: string): void {
  const text = new TextEncoder().encode(debug.slice(0, 256));
  const at = frame(conn, 8 + text.length, FRAME_GOAWAY, 0, 0);
  writeUint32(conn.out, at, conn.lastPeerId);
  writeUint32(conn.out, at + 4, code);
  conn.out.set(text, at + 8);
  if (conn.goAwaySent < 0) conn.goAwaySent = conn.lastPeerId;
  requestFlush(conn);
}
