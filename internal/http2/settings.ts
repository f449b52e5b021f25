/**
 * SETTINGS both ways (RFC 9113 section 6.5): the preface we send (the client's magic,
 * our SETTINGS from the connection's options, a larger connection window), and what the
 * peer's SETTINGS change: its frame size, stream limit, header list size and initial
 * window (applied to every open stream), each acknowledged.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import {
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  encodeSettings,
  ENHANCE_YOUR_CALM,
  FLAG_ACK,
  FLOW_CONTROL_ERROR,
  FRAME_SETTINGS,
  FRAME_SIZE_ERROR,
  MAX_MAX_FRAME,
  MAX_WINDOW,
  PREFACE,
  PROTOCOL_ERROR,
  readUint32,
  SETTINGS_ENABLE_PUSH,
  SETTINGS_HEADER_TABLE_SIZE,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  SETTINGS_MAX_FRAME_SIZE,
  SETTINGS_MAX_HEADER_LIST_SIZE,
} from "./frames.ts";
import { pumpAll } from "./flow.ts";
import { countControl, frame, requestFlush, reserve, windowUpdate } from "./output.ts";

/**
 * Queues our connection preface: the client's magic, then SETTINGS and a larger
 * connection window. A server sends it once the client's preface is in.
 *
 * @example
 * ```ts ignore
 * if (role === "client") sendPreface(connection);
 * ```
 */
export function sendPreface(conn: Connection): void {
  const role = conn.role;
  if (role === "client") conn.out.set(PREFACE, reserve(conn, PREFACE.length));
  const settings: [number, number][] = [];
  if (role === "client") settings.push([SETTINGS_ENABLE_PUSH, 0]);
  if (role === "server" || conn.options.maxConcurrentStreams !== undefined) {
    settings.push([SETTINGS_MAX_CONCURRENT_STREAMS, conn.maxStreams]);
  }
  if (conn.localWindow !== DEFAULT_WINDOW) {
    settings.push([SETTINGS_INITIAL_WINDOW_SIZE, conn.localWindow]);
  }
  if (conn.maxFrame !== DEFAULT_MAX_FRAME) settings.push([SETTINGS_MAX_FRAME_SIZE, conn.maxFrame]);
  settings.push([SETTINGS_MAX_HEADER_LIST_SIZE, conn.maxHeaderList]);
  const payload = encodeSettings(settings);
  const at = frame(conn, payload.length, FRAME_SETTINGS, 0, 0);
  conn.out.set(payload, at);
  if (conn.connWindow > DEFAULT_WINDOW) {
    windowUpdate(conn, 0, conn.connWindow - DEFAULT_WINDOW);
    conn.recvWindow = conn.connWindow;
  }
  requestFlush(conn);
}

/**
 * A SETTINGS frame from the peer: its ACK of ours, or its settings, which we apply and
 * acknowledge.
 *
 * @example
 * ```ts ignore
 * case FRAME_SETTINGS:
 *   return onSettings(connection, flags, id, payload);
 * ```
 */
export function onSettings(conn: Connection, flags: number, id: number, payload: Uint8Array): void {
  if (id !== 0) return conn.connectionError(PROTOCOL_ERROR, "SETTINGS on a stream");
  if (flags & FLAG_ACK) {
    if (payload.length > 0) {
      return conn.connectionError(FRAME_SIZE_ERROR, "a SETTINGS ACK with a payload");
    }
    if (!conn.settingsAcked) {
      conn.settingsAcked = true;
      // Our INITIAL_WINDOW_SIZE holds from here (RFC 9113 section 6.9.2).
      const delta = conn.localWindow - conn.recvInitialWindow;
      conn.recvInitialWindow = conn.localWindow;
      if (delta !== 0) {
        for (const stream of conn.streams.values()) stream.recvWindow += delta;
      }
    }
    return;
  }
  if (payload.length % 6 !== 0) {
    return conn.connectionError(FRAME_SIZE_ERROR, "SETTINGS of wrong size");
  }
  if (payload.length / 6 > (conn.options.maxSettingsEntries ?? 64)) {
    return conn.connectionError(ENHANCE_YOUR_CALM, "a SETTINGS frame with too many entries");
  }
  conn.settingsReceived = true;
  for (let at = 0; at < payload.length; at += 6) {
    const key = (payload[at] << 8) | payload[at + 1];
    const value = readUint32(payload, at + 2);
    switch (key) {
      case SETTINGS_HEADER_TABLE_SIZE:
        break; // Our encoder never indexes: any table size suits it.
      case SETTINGS_ENABLE_PUSH:
        if (value > 1 || (conn.role === "client" && value !== 0)) {
          return conn.connectionError(PROTOCOL_ERROR, `ENABLE_PUSH ${value}`);
        }
        break;
      case SETTINGS_MAX_CONCURRENT_STREAMS:
        conn.peerMaxStreams = value;
        break;
      case SETTINGS_INITIAL_WINDOW_SIZE: {
        if (value > MAX_WINDOW) {
          return conn.connectionError(FLOW_CONTROL_ERROR, `INITIAL_WINDOW_SIZE ${value}`);
        }
        const delta = value - conn.peerInitialWindow;
        conn.peerInitialWindow = value;
        for (const stream of conn.streams.values()) {
          stream.sendWindow += delta;
          if (stream.sendWindow > MAX_WINDOW) {
            return conn.connectionError(FLOW_CONTROL_ERROR, "a stream window passed 2^31-1");
          }
        }
        break;
      }
      case SETTINGS_MAX_FRAME_SIZE:
        if (value < DEFAULT_MAX_FRAME || value > MAX_MAX_FRAME) {
          return conn.connectionError(PROTOCOL_ERROR, `MAX_FRAME_SIZE ${value}`);
        }
        conn.peerMaxFrame = value;
        break;
      case SETTINGS_MAX_HEADER_LIST_SIZE:
        conn.peerMaxHeaderList = value;
        break;
      default:
        break; // Unknown settings are ignored.
    }
  }
  if (!countControl(conn, 9)) return;
  frame(conn, 0, FRAME_SETTINGS, FLAG_ACK, 0);
  requestFlush(conn);
  // Windows may have opened.
  for (const stream of conn.streams.values()) {
    if (stream.outBytes > 0 || (stream.endQueued && !stream.sendEnded)) conn.pending.add(stream);
  }
  pumpAll(conn);
  if (conn.role === "client") conn.options.onCapacity?.();
}
