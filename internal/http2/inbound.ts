/**
 * Reading a connection: the socket's bytes into frames (the client's preface first, on
 * a server; the peer's SETTINGS must come first), each frame to its handler, and the
 * frames that concern the connection or a stream's life rather than its headers or
 * windows: DATA, RST_STREAM (with the rapid-reset count), PRIORITY, PING and GOAWAY.
 * After an error the input is drained only up to a budget, so a flood pushes back.
 * Frames that make us answer (a burst of HEADERS past our stream limit, PINGs) let our
 * writes go out before more of them are read, so that only a peer that does not read
 * its answers meets the bound on what it makes us queue.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import { armHeaderTimer, clearHeaderTimer, countPeerReset } from "./defences.ts";
import { Http2Error } from "./errors.ts";
import { consumed, creditConnection, onWindowUpdate } from "./flow.ts";
import {
  errorName,
  FLAG_ACK,
  FLAG_END_STREAM,
  FLOW_CONTROL_ERROR,
  FRAME_CONTINUATION,
  FRAME_DATA,
  FRAME_GOAWAY,
  FRAME_HEADERS,
  FRAME_PING,
  FRAME_PRIORITY,
  FRAME_PUSH_PROMISE,
  FRAME_RST_STREAM,
  FRAME_SETTINGS,
  FRAME_SIZE_ERROR,
  FRAME_WINDOW_UPDATE,
  NO_ERROR,
  PREFACE,
  PROTOCOL_ERROR,
  readStreamId,
  readUint32,
  REFUSED_STREAM,
  STREAM_CLOSED,
  unpad,
} from "./frames.ts";
import { latin1 } from "./hpack.ts";
import { onContinuation, onHeaders, receivedEnd } from "./inbound_headers.ts";
import { controlOwed, countControl, frame, PING_TAG, requestFlush } from "./output.ts";
import { onSettings, sendPreface } from "./settings.ts";

const READ_BUFFER = 64 * 1024;
/** How much input a connection that failed for an error still reads, and drops. */
const DRAIN_BUDGET = 256 * 1024;

/**
 * Reads the connection until it closes, `prefix` (bytes the caller already read) first.
 * Never rejects: a failure ends the connection.
 *
 * @example
 * ```ts ignore
 * readLoop(connection, options.prefix ?? new Uint8Array(0));
 * ```
 */
export async function readLoop(conn: Connection, prefix: Uint8Array): Promise<void> {
  let buffer = new Uint8Array(Math.max(READ_BUFFER, prefix.length + 9 + conn.maxFrame));
  buffer.set(prefix);
  let start = 0;
  let end = prefix.length;
  let prefaceLeft = conn.role === "server" ? PREFACE.length : 0;
  let drainBudget = DRAIN_BUDGET;
  // The write we last let go out before reading on (see `controlOwed`), and whether to now.
  let yieldedFor = -1;
  let yieldNow = false;
  try {
    for (;;) {
      if (conn.terminating) {
        // After a graceful end, input is drained until we close. A peer we gave up on
        // for an error is drained only up to a budget, then not read any more (a flood
        // pushes back on it): within the budget, a peer that closes on reading our
        // GOAWAY is seen at once instead of at the end of the linger.
        const failure = conn.error;
        if (failure !== undefined && failure.code !== NO_ERROR && !failure.remote) {
          drainBudget -= end - start;
          if (drainBudget < 0) return;
        }
        start = end = 0;
      } else {
        if (prefaceLeft > 0) {
          const n = Math.min(prefaceLeft, end - start);
          const from = PREFACE.length - prefaceLeft;
          for (let i = 0; i < n; i++) {
            if (buffer[start + i] !== PREFACE[from + i]) {
              conn.connectionError(PROTOCOL_ERROR, "invalid connection preface");
              break;
            }
          }
          if (!conn.terminating) {
            start += n;
            prefaceLeft -= n;
            if (prefaceLeft === 0) sendPreface(conn);
          }
        }
        if (prefaceLeft === 0 && !conn.terminating) {
          while (end - start >= 9) {
            const length = (buffer[start] << 16) | (buffer[start + 1] << 8) | buffer[start + 2];
            const type = buffer[start + 3];
            if (!conn.settingsReceived) {
              if (conn.role === "client" && isHttp1(buffer, start, end)) {
                conn.terminate(
                  new Http2Error(
                    "the server answered in HTTP/1: it does not speak h2c",
                    PROTOCOL_ERROR,
                    { connection: true },
                  ),
                  false,
                );
                break;
              }
              if (type !== FRAME_SETTINGS) {
                conn.connectionError(PROTOCOL_ERROR, "the first frame is not SETTINGS");
                break;
              }
            }
            if (length > conn.maxFrame) {
              conn.connectionError(FRAME_SIZE_ERROR, `a frame of ${length} bytes`);
              break;
            }
            if (end - start < 9 + length) break;
            const flags = buffer[start + 4];
            const id = readStreamId(buffer, start + 5);
            const payload = buffer.subarray(start + 9, start + 9 + length);
            start += 9 + length;
            onFrame(conn, type, flags, id, payload);
            if (conn.terminating) break;
            if (controlOwed(conn) && yieldedFor !== conn.writesDone) {
              yieldNow = true;
              break;
            }
          }
          if (!conn.terminating && conn.options.headerTimeoutMs !== undefined) {
            // A header block that has begun (or a HEADERS frame still arriving) runs
            // against the header timeout.
            const arriving = end - start >= 4 &&
              (buffer[start + 3] === FRAME_HEADERS || buffer[start + 3] === FRAME_CONTINUATION);
            if (conn.awaitingFirstHead || conn.partial || arriving) armHeaderTimer(conn);
            else clearHeaderTimer(conn);
          }
        }
      }
      if (start === end) {
        start = end = 0;
      } else if (start > 0 && buffer.length - start < 9 + conn.maxFrame) {
        buffer.copyWithin(0, start, end);
        end -= start;
        start = 0;
      }
      if (yieldNow) {
        // Input already read runs in one chain of microtasks, in which no write of ours
        // completes: a turn of the event loop lets them. Once per write, so that a peer
        // that does not read still meets the bound.
        yieldNow = false;
        yieldedFor = conn.writesDone;
        await new Promise((resolve) => setTimeout(resolve, 0));
        continue;
      }
      if (end === buffer.length) {
        const bigger = new Uint8Array(buffer.length * 2);
        bigger.set(buffer.subarray(0, end));
        buffer = bigger;
      }
      if (conn.socketClosed) return;
      const read = await conn.socket.read(buffer.subarray(end));
      if (read === null) {
        if (!conn.terminating) {
          conn.terminate(
            new Http2Error("the peer closed the connection", NO_ERROR, {
              connection: true,
              remote: true,
            }),
            false,
          );
        }
        // Nothing more will come: what is left to write goes, then the socket closes.
        if (!conn.writing && !conn.flushQueued) conn.closeSocket();
        return;
      }
      end += read;
      conn.receivedAt = Date.now();
    }
  } catch (error) {
    conn.lost("reading from", error);
  }
}

/** One whole frame, to its handler. */
function onFrame(
  conn: Connection,
  type: number,
  flags: number,
  id: number,
  payload: Uint8Array,
): void {
  if (conn.partial !== undefined && type !== FRAME_CONTINUATION) {
    return conn.connectionError(PROTOCOL_ERROR, "a header block was interrupted");
  }
  switch (type) {
    case FRAME_DATA:
      return onData(conn, flags, id, payload);
    case FRAME_HEADERS:
      return onHeaders(conn, flags, id, payload);
    case FRAME_PRIORITY:
      return onPriority(conn, id, payload);
    case FRAME_RST_STREAM:
      return onReset(conn, id, payload);
    case FRAME_SETTINGS:
      return onSettings(conn, flags, id, payload);
    case FRAME_PUSH_PROMISE:
      return conn.connectionError(PROTOCOL_ERROR, "PUSH_PROMISE, though push is off");
    case FRAME_PING:
      return onPing(conn, flags, id, payload);
    case FRAME_GOAWAY:
      return onGoAway(conn, id, payload);
    case FRAME_WINDOW_UPDATE:
      return onWindowUpdate(conn, id, payload);
    case FRAME_CONTINUATION:
      return onContinuation(conn, flags, id, payload);
    default:
      return; // Unknown frame types are ignored (RFC 9113 section 5.5).
  }
}

/** DATA: body bytes for a stream, counted against both receive windows. */
function onData(conn: Connection, flags: number, id: number, payload: Uint8Array): void {
  if (id === 0) return conn.connectionError(PROTOCOL_ERROR, "DATA on stream 0");
  const length = payload.length;
  if (length > conn.recvWindow) {
    return conn.connectionError(FLOW_CONTROL_ERROR, "DATA beyond the connection window");
  }
  conn.recvWindow -= length;
  const stream = conn.streams.get(id);
  if (stream === undefined) {
    // Its bytes count against the connection window all the same.
    creditConnection(conn, length);
    if (conn.isIdle(id)) {
      return conn.connectionError(PROTOCOL_ERROR, `DATA on idle stream ${id}`);
    }
    if (conn.resetByUs.has(id)) return;
    return conn.streamError(id, STREAM_CLOSED, `DATA on closed stream ${id}`);
  }
  if (stream.recvEnded) {
    creditConnection(conn, length);
    return conn.streamError(stream, STREAM_CLOSED, "DATA after END_STREAM");
  }
  const data = unpad(flags, payload);
  if (data === undefined) return conn.connectionError(PROTOCOL_ERROR, "bad DATA padding");
  if (length > stream.recvWindow) {
    creditConnection(conn, length);
    return conn.streamError(stream, FLOW_CONTROL_ERROR, "DATA beyond the stream window");
  }
  stream.recvWindow -= length;
  if (stream.headValue === undefined) {
    creditConnection(conn, length);
    return conn.streamError(stream, PROTOCOL_ERROR, "DATA before the head");
  }
  // Padding is consumed at once.
  const padding = length - data.length;
  if (padding > 0) consumed(conn, stream, padding);
  stream.received += data.length;
  const declared = stream.headValue.contentLength;
  const endStream = (flags & FLAG_END_STREAM) !== 0;
  if (
    declared >= 0 && (stream.received > declared || (endStream && stream.received !== declared))
  ) {
    creditConnection(conn, data.length);
    return conn.streamError(stream, PROTOCOL_ERROR, "body length differs from content-length");
  }
  if (data.length > 0) stream.deliver(data.slice());
  if (endStream) receivedEnd(conn, stream);
}

/** PRIORITY: ignored but for its errors (RFC 9113 section 5.3.2). */
function onPriority(conn: Connection, id: number, payload: Uint8Array): void {
  if (id === 0) return conn.connectionError(PROTOCOL_ERROR, "PRIORITY on stream 0");
  if (payload.length !== 5) {
    return conn.streamError(id, FRAME_SIZE_ERROR, "PRIORITY of wrong size");
  }
  if (readStreamId(payload, 0) === id) {
    const stream = conn.streams.get(id);
    return conn.streamError(stream ?? id, PROTOCOL_ERROR, "a stream depending on itself");
  }
}

/** RST_STREAM: the peer ended a stream. */
function onReset(conn: Connection, id: number, payload: Uint8Array): void {
  if (id === 0) return conn.connectionError(PROTOCOL_ERROR, "RST_STREAM on stream 0");
  if (payload.length !== 4) {
    return conn.connectionError(FRAME_SIZE_ERROR, "RST_STREAM of wrong size");
  }
  if (conn.isIdle(id)) {
    return conn.connectionError(PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
  }
  const stream = conn.streams.get(id);
  if (stream === undefined) return;
  const code = readUint32(payload, 0);
  if (conn.role === "client" && code === NO_ERROR && stream.recvEnded) {
    // The whole answer came before our request was done (RFC 9113 section 8.1): the
    // answer stands, only our sending stops.
    return conn.closeStream(stream, undefined, false);
  }
  // Rapid reset (CVE-2023-44487): streams reset before their answer is done.
  if (conn.role === "server" && !stream.sendEnded && !countPeerReset(conn)) return;
  conn.closeStream(
    stream,
    new Http2Error(`the peer reset the stream: ${errorName(code)}`, code, {
      remote: true,
      unprocessed: code === REFUSED_STREAM,
    }),
    false,
  );
}

/** PING: ours answered (the round trip resolves), or the peer's to answer. */
function onPing(conn: Connection, flags: number, id: number, payload: Uint8Array): void {
  if (id !== 0) return conn.connectionError(PROTOCOL_ERROR, "PING on a stream");
  if (payload.length !== 8) return conn.connectionError(FRAME_SIZE_ERROR, "PING of wrong size");
  if (flags & FLAG_ACK) {
    if (readUint32(payload, 0) !== PING_TAG) return;
    const seq = readUint32(payload, 4);
    const ping = conn.pings.get(seq);
    if (ping) {
      conn.pings.delete(seq);
      ping.resolve(Date.now() - ping.sent);
    }
    return;
  }
  if (!countControl(conn, 17)) return;
  const at = frame(conn, 8, FRAME_PING, FLAG_ACK, 0);
  conn.out.set(payload, at);
  requestFlush(conn);
}

/** GOAWAY: our streams above its last stream id fail, safe to retry. */
function onGoAway(conn: Connection, id: number, payload: Uint8Array): void {
  if (id !== 0) return conn.connectionError(PROTOCOL_ERROR, "GOAWAY on a stream");
  if (payload.length < 8) return conn.connectionError(FRAME_SIZE_ERROR, "GOAWAY too short");
  const last = readStreamId(payload, 0);
  const code = readUint32(payload, 4);
  const debug = latin1(payload, 8, Math.min(payload.length, 8 + 256));
  if (conn.goAwayReceived < 0 || last < conn.goAwayReceived) conn.goAwayReceived = last;
  // Our streams above `last` were never processed: they fail, safe to retry.
  for (const stream of [...conn.streams.values()]) {
    if (conn.isLocal(stream.id) && stream.id > last) {
      conn.closeStream(
        stream,
        new Http2Error(`the peer went away: ${errorName(code)}`, code, {
          remote: true,
          unprocessed: true,
          connection: true,
        }),
        false,
      );
    }
  }
  conn.options.onGoAway?.(last, code, debug);
  conn.closeIfDone();
}

/** Whether the bytes at `start` begin an HTTP/1 status line (a server that is no h2c one). */
function isHttp1(buffer: Uint8Array, start: number, end: number): boolean {
  const text = "HTTP/1.";
  if (end - start < text.length) return false;
  for (let i = 0; i < text.length; i++) if (buffer[start + i] !== text.charCodeAt(i)) return false;
  return true;
}
