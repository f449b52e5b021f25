/**
 * A connection's streams' output and flow control both ways (RFC 9113 section 5.2): a
 * stream's header block goes at once, its queued body is framed as DATA as the peer's
 * windows and our output allow (round robin over the streams that wait), then its end
 * (END_STREAM or trailers); our receive windows are given back with WINDOW_UPDATE as
 * the peer's bodies are consumed, and the peer's WINDOW_UPDATEs open its windows.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import { armStallTimer } from "./defences.ts";
import {
  FLAG_END_STREAM,
  FLOW_CONTROL_ERROR,
  FRAME_DATA,
  FRAME_SIZE_ERROR,
  MAX_WINDOW,
  NO_ERROR,
  PROTOCOL_ERROR,
  readUint32,
} from "./frames.ts";
import { Http2Error } from "./errors.ts";
import { frame, headerFrames, outputFull, requestFlush, rstFrame, windowUpdate } from "./output.ts";
import type { H2Stream } from "./stream.ts";

/** What one stream may frame in one round of {@linkcode pumpAll}. */
const QUANTUM = 64 * 1024;

/**
 * A stream's header block, framed now (it is not flow-controlled).
 *
 * @example
 * ```ts ignore
 * sendHeaderBlock(connection, stream, encodeFlatHeaderBlock([":status", "204"]), true);
 * ```
 */
export function sendHeaderBlock(
  conn: Connection,
  stream: H2Stream,
  block: Uint8Array,
  endStream: boolean,
): void {
  if (conn.terminating) return;
  headerFrames(conn, stream.id, block, endStream);
  requestFlush(conn);
  if (endStream) sentEnd(conn, stream);
}

/**
 * Frames as much of the stream's queued output as the windows allow; the rest waits
 * among the pending streams.
 *
 * @example
 * ```ts ignore
 * stream.outChunks.push(bytes);
 * stream.outBytes += bytes.length;
 * pumpStream(connection, stream);
 * ```
 */
export function pumpStream(conn: Connection, stream: H2Stream): void {
  if (conn.terminating || stream.closed) return;
  pumpOne(conn, stream, Infinity);
  if (stream.outBytes > 0 || (stream.endQueued && !stream.sendEnded)) conn.pending.add(stream);
  else conn.pending.delete(stream);
}

/** Frames up to `quantum` bytes of a stream's output. */
function pumpOne(conn: Connection, stream: H2Stream, quantum: number): void {
  let framed = 0;
  while (stream.outBytes > 0) {
    const size = Math.min(conn.peerMaxFrame, stream.sendWindow, conn.sendWindow, stream.outBytes);
    if (size <= 0 || outputFull(conn)) {
      // Waiting on a window, or on a peer that does not read what we write.
      if (stream.blockedAt === 0) {
        stream.blockedAt = Date.now();
        armStallTimer(conn);
      }
      break;
    }
    if (framed >= quantum) break;
    stream.blockedAt = 0;
    const last = size === stream.outBytes && stream.endQueued && !stream.trailerBlock;
    const at = frame(conn, size, FRAME_DATA, last ? FLAG_END_STREAM : 0, stream.id);
    copyOut(conn, stream, at, size);
    stream.sendWindow -= size;
    conn.sendWindow -= size;
    framed += size;
    if (last) {
      requestFlush(conn);
      sentEnd(conn, stream);
      return;
    }
  }
  if (stream.outBytes === 0 && stream.endQueued && !stream.sendEnded) {
    if (stream.trailerBlock) {
      headerFrames(conn, stream.id, stream.trailerBlock, true);
    } else {
      frame(conn, 0, FRAME_DATA, FLAG_END_STREAM, stream.id);
    }
    requestFlush(conn);
    sentEnd(conn, stream);
    return;
  }
  if (framed > 0) requestFlush(conn);
  if (stream.outBytes < conn.streamHighWater) stream.wakeWriter();
}

/** Moves `size` bytes of a stream's queued chunks into the output at `at`. */
function copyOut(conn: Connection, stream: H2Stream, at: number, size: number): void {
  const out = conn.out;
  let left = size;
  while (left > 0) {
    const chunk = stream.outChunks[0];
    const available = chunk.length - stream.outOffset;
    if (available <= left) {
      out.set(stream.outOffset === 0 ? chunk : chunk.subarray(stream.outOffset), at);
      at += available;
      left -= available;
      stream.outChunks.shift();
      stream.outOffset = 0;
    } else {
      out.set(chunk.subarray(stream.outOffset, stream.outOffset + left), at);
      stream.outOffset += left;
      left = 0;
    }
  }
  stream.outBytes -= size;
}

/**
 * Frames queued output of every pending stream, round robin, while the output has room.
 *
 * @example
 * ```ts ignore
 * connection.sendWindow += increment;
 * pumpAll(connection);
 * ```
 */
export function pumpAll(conn: Connection): void {
  const pending = conn.pending;
  while (pending.size > 0 && !outputFull(conn) && conn.sendWindow >= 0) {
    let progress = false;
    for (const stream of [...pending]) {
      if (outputFull(conn)) break;
      const before = stream.outBytes;
      const ending = stream.endQueued && !stream.sendEnded;
      pumpOne(conn, stream, QUANTUM);
      const framed = stream.outBytes !== before || (ending && stream.sendEnded);
      const more = !stream.closed &&
        (stream.outBytes > 0 || (stream.endQueued && !stream.sendEnded));
      // One that framed something and has more goes last: a small window opening now
      // and then is shared, not always taken by the same stream.
      if (!more || framed) pending.delete(stream);
      if (more && framed) pending.add(stream);
      if (framed) progress = true;
    }
    if (!progress) break;
  }
}

/** Our END_STREAM is framed. */
function sentEnd(conn: Connection, stream: H2Stream): void {
  stream.sendEnded = true;
  conn.pending.delete(stream);
  stream.wakeWriter();
  if (stream.recvEnded) {
    conn.closeStream(stream, undefined, false);
  } else if (conn.role === "server") {
    // The answer is complete before the request (RFC 9113 section 8.1): the rest of the
    // request is not needed.
    rstFrame(conn, stream.id, NO_ERROR, false);
    conn.closeStream(
      stream,
      undefined,
      true,
      new Http2Error("the answer ended before the request", NO_ERROR),
    );
  }
}

/**
 * The reader took `n` body bytes: give them back to the peer's windows.
 *
 * @example
 * ```ts ignore
 * consumed(connection, stream, chunk.length);
 * ```
 */
export function consumed(conn: Connection, stream: H2Stream, n: number): void {
  if (n === 0 || conn.terminating) return;
  if (!stream.settled) creditConnection(conn, n);
  if (stream.recvEnded || stream.closed) return;
  stream.unacked += n;
  if (stream.unacked >= conn.localWindow / 2 || stream.unacked >= stream.recvWindow) {
    windowUpdate(conn, stream.id, stream.unacked);
    stream.recvWindow += stream.unacked;
    stream.unacked = 0;
    requestFlush(conn);
  }
}

/**
 * Gives `n` bytes back to the connection's receive window, in WINDOW_UPDATEs of half
 * the window or more.
 *
 * @example
 * ```ts ignore
 * creditConnection(connection, payload.length); // DATA for a stream already gone
 * ```
 */
export function creditConnection(conn: Connection, n: number): void {
  conn.connUnacked += n;
  if (conn.connUnacked >= conn.connWindow / 2) {
    windowUpdate(conn, 0, conn.connUnacked);
    conn.recvWindow += conn.connUnacked;
    conn.connUnacked = 0;
    requestFlush(conn);
  }
}

/**
 * A WINDOW_UPDATE from the peer: a window opens, and what waited on it is framed.
 *
 * @example
 * ```ts ignore
 * case FRAME_WINDOW_UPDATE:
 *   return onWindowUpdate(connection, id, payload);
 * ```
 */
export function onWindowUpdate(conn: Connection, id: number, payload: Uint8Array): void {
  if (payload.length !== 4) {
    return conn.connectionError(FRAME_SIZE_ERROR, "WINDOW_UPDATE of wrong size");
  }
  const increment = readUint32(payload, 0) & MAX_WINDOW;
  if (id === 0) {
    if (increment === 0) return conn.connectionError(PROTOCOL_ERROR, "a zero WINDOW_UPDATE");
    conn.sendWindow += increment;
    if (conn.sendWindow > MAX_WINDOW) {
      return conn.connectionError(FLOW_CONTROL_ERROR, "the connection window passed 2^31-1");
    }
    return pumpAll(conn);
  }
  const stream = conn.streams.get(id);
  if (stream === undefined) {
    if (conn.isIdle(id)) {
      return conn.connectionError(PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
    }
    return; // A closed stream: the peer had not seen its end yet.
  }
  if (increment === 0) return conn.streamError(stream, PROTOCOL_ERROR, "a zero WINDOW_UPDATE");
  stream.sendWindow += increment;
  if (stream.sendWindow > MAX_WINDOW) {
    return conn.streamError(stream, FLOW_CONTROL_ERROR, "the stream window passed 2^31-1");
  }
  if (stream.outBytes > 0 || (stream.endQueued && !stream.sendEnded)) {
    conn.pending.add(stream);
    if (!outputFull(conn)) pumpOne(conn, stream, Infinity);
    if (stream.outBytes === 0 && !(stream.endQueued && !stream.sendEnded)) {
      conn.pending.delete(stream);
    }
  }
}
