/**
 * HTTP/2 frame vocabulary (RFC 9113 section 6): frame types, flags, error codes and
 * their names, settings identifiers, and the few helpers that build or take apart a
 * frame. The connection encodes its hot frames straight into its output buffer with
 * {@linkcode writeFrameHeader}; {@linkcode encodeFrame} is for the rare ones and tests.
 *
 * @module
 */

/** DATA (RFC 9113 section 6.1). */
export const FRAME_DATA = 0x0;
/** HEADERS (section 6.2). */
export const FRAME_HEADERS = 0x1;
/** PRIORITY (section 6.3), deprecated but still parsed. */
export const FRAME_PRIORITY = 0x2;
/** RST_STREAM (section 6.4). */
export const FRAME_RST_STREAM = 0x3;
/** SETTINGS (section 6.5). */
export const FRAME_SETTINGS = 0x4;
/** PUSH_PROMISE (section 6.6); we never enable push. */
export const FRAME_PUSH_PROMISE = 0x5;
/** PING (section 6.7). */
export const FRAME_PING = 0x6;
/** GOAWAY (section 6.8). */
export const FRAME_GOAWAY = 0x7;
/** WINDOW_UPDATE (section 6.9). */
export const FRAME_WINDOW_UPDATE = 0x8;
/** CONTINUATION (section 6.10). */
export const FRAME_CONTINUATION = 0x9;

/** END_STREAM on DATA and HEADERS. */
export const FLAG_END_STREAM = 0x1;
/** ACK on SETTINGS and PING. */
export const FLAG_ACK = 0x1;
/** END_HEADERS on HEADERS, PUSH_PROMISE and CONTINUATION. */
export const FLAG_END_HEADERS = 0x4;
/** PADDED on DATA, HEADERS and PUSH_PROMISE. */
export const FLAG_PADDED = 0x8;
/** PRIORITY on HEADERS. */
export const FLAG_PRIORITY = 0x20;

/** Error codes (RFC 9113 section 7). */
export const NO_ERROR = 0x0;
/** The peer broke the protocol. */
export const PROTOCOL_ERROR = 0x1;
/** Something went wrong on our side. */
export const INTERNAL_ERROR = 0x2;
/** A flow-control window was overrun or overflowed. */
export const FLOW_CONTROL_ERROR = 0x3;
/** SETTINGS were not acknowledged in time. */
export const SETTINGS_TIMEOUT = 0x4;
/** A frame came on a stream that was already closed (half-closed for the sender). */
export const STREAM_CLOSED = 0x5;
/** A frame had the wrong size. */
export const FRAME_SIZE_ERROR = 0x6;
/** The stream was refused before any processing: safe to retry. */
export const REFUSED_STREAM = 0x7;
/** The stream is no longer needed. */
export const CANCEL = 0x8;
/** The header compression context could not be kept. */
export const COMPRESSION_ERROR = 0x9;
/** A CONNECT tunnel failed. */
export const CONNECT_ERROR = 0xa;
/** The peer is behaving abusively. */
export const ENHANCE_YOUR_CALM = 0xb;
/** The transport is not secure enough. */
export const INADEQUATE_SECURITY = 0xc;
/** HTTP/1.1 is required for this request. */
export const HTTP_1_1_REQUIRED = 0xd;

const ERROR_NAMES = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

/**
 * An error code's name, as RFC 9113 spells it.
 *
 * @example
 * ```ts
 * import { errorName } from "./frames.ts";
 * console.assert(errorName(0xb) === "ENHANCE_YOUR_CALM");
 * console.assert(errorName(0x42) === "error 0x42");
 * ```
 */
export function errorName(code: number): string {
  return ERROR_NAMES[code] ?? `error 0x${code.toString(16)}`;
}

/** SETTINGS_HEADER_TABLE_SIZE (RFC 9113 section 6.5.2). */
export const SETTINGS_HEADER_TABLE_SIZE = 0x1;
/** SETTINGS_ENABLE_PUSH. */
export const SETTINGS_ENABLE_PUSH = 0x2;
/** SETTINGS_MAX_CONCURRENT_STREAMS. */
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
/** SETTINGS_INITIAL_WINDOW_SIZE. */
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
/** SETTINGS_MAX_FRAME_SIZE. */
export const SETTINGS_MAX_FRAME_SIZE = 0x5;
/** SETTINGS_MAX_HEADER_LIST_SIZE. */
export const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** The initial flow-control window of every stream and of the connection. */
export const DEFAULT_WINDOW = 65_535;
/** The largest flow-control window (2^31 - 1). */
export const MAX_WINDOW = 0x7fffffff;
/** The initial and smallest SETTINGS_MAX_FRAME_SIZE. */
export const DEFAULT_MAX_FRAME = 16_384;
/** The largest SETTINGS_MAX_FRAME_SIZE (2^24 - 1). */
export const MAX_MAX_FRAME = 16_777_215;
/** The frame header's size. */
export const FRAME_HEADER_SIZE = 9;

/**
 * The client connection preface (RFC 9113 section 3.4).
 *
 * @example
 * ```ts
 * import { PREFACE } from "./frames.ts";
 * console.assert(PREFACE.length === 24);
 * ```
 */
export const PREFACE: Uint8Array = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Writes a 9-byte frame header at `at` in `into`.
 *
 * @example
 * ```ts
 * import { FRAME_PING, writeFrameHeader } from "./frames.ts";
 * const bytes = new Uint8Array(9);
 * writeFrameHeader(bytes, 0, 8, FRAME_PING, 0, 0);
 * console.assert(bytes[2] === 8 && bytes[3] === FRAME_PING);
 * ```
 */
export function writeFrameHeader(
  into: Uint8Array,
  at: number,
  length: number,
  type: number,
  flags: number,
  id: number,
): void {
  into[at] = length >>> 16;
  into[at + 1] = (length >>> 8) & 0xff;
  into[at + 2] = length & 0xff;
  into[at + 3] = type;
  into[at + 4] = flags;
  into[at + 5] = (id >>> 24) & 0x7f;
  into[at + 6] = (id >>> 16) & 0xff;
  into[at + 7] = (id >>> 8) & 0xff;
  into[at + 8] = id & 0xff;
}

/**
 * One whole frame: the 9-byte header and its payload, in a new array.
 *
 * @example
 * ```ts
 * import { encodeFrame, FRAME_SETTINGS, FLAG_ACK } from "./frames.ts";
 * const ack = encodeFrame(FRAME_SETTINGS, FLAG_ACK, 0, new Uint8Array(0));
 * console.assert(ack.length === 9 && ack[4] === FLAG_ACK);
 * ```
 */
export function encodeFrame(
  type: number,
  flags: number,
  id: number,
  payload: Uint8Array,
): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_SIZE + payload.length);
  writeFrameHeader(bytes, 0, payload.length, type, flags, id);
  bytes.set(payload, FRAME_HEADER_SIZE);
  return bytes;
}

/**
 * A frame header taken apart.
 *
 * @example
 * ```ts
 * import type { FrameHeader } from "./frames.ts";
 * const ping: FrameHeader = { length: 8, type: 6, flags: 0, id: 0 };
 * console.assert(ping.type === 6);
 * ```
 */
export interface FrameHeader {
  /** The payload's length. */
  length: number;
  /** The frame type. */
  type: number;
  /** Its flags. */
  flags: number;
  /** The stream identifier, without the reserved bit. */
  id: number;
}

/**
 * Reads the frame header at `at` (at least 9 bytes must be there).
 *
 * @example
 * ```ts
 * import { encodeFrame, readFrameHeader } from "./frames.ts";
 * const frame = encodeFrame(0, 1, 3, new Uint8Array(2));
 * const header = readFrameHeader(frame, 0);
 * console.assert(header.id === 3 && header.length === 2 && header.flags === 1);
 * ```
 */
export function readFrameHeader(bytes: Uint8Array, at: number): FrameHeader {
  return {
    length: (bytes[at] << 16) | (bytes[at + 1] << 8) | bytes[at + 2],
    type: bytes[at + 3],
    flags: bytes[at + 4],
    id: readStreamId(bytes, at + 5),
  };
}

/**
 * A 31-bit stream identifier (the reserved high bit dropped) at `at`.
 *
 * @example
 * ```ts
 * import { readStreamId } from "./frames.ts";
 * console.assert(readStreamId(new Uint8Array([0x80, 0, 0, 5]), 0) === 5);
 * ```
 */
export function readStreamId(bytes: Uint8Array, at: number): number {
  return (((bytes[at] & 0x7f) << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) |
    bytes[at + 3]) >>> 0;
}

/**
 * A big-endian 32-bit unsigned integer at `at`.
 *
 * @example
 * ```ts
 * import { readUint32 } from "./frames.ts";
 * console.assert(readUint32(new Uint8Array([0, 0, 1, 0]), 0) === 256);
 * ```
 */
export function readUint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

/**
 * Writes a big-endian 32-bit unsigned integer at `at`.
 *
 * @example
 * ```ts
 * import { readUint32, writeUint32 } from "./frames.ts";
 * const bytes = new Uint8Array(4);
 * writeUint32(bytes, 0, 0xdeadbeef);
 * console.assert(readUint32(bytes, 0) === 0xdeadbeef);
 * ```
 */
export function writeUint32(into: Uint8Array, at: number, value: number): void {
  into[at] = value >>> 24;
  into[at + 1] = (value >>> 16) & 0xff;
  into[at + 2] = (value >>> 8) & 0xff;
  into[at + 3] = value & 0xff;
}

/**
 * A payload without its padding (RFC 9113 sections 6.1, 6.2); `undefined` when the pad
 * length leaves no room (a PROTOCOL_ERROR). `flags` without PADDED returns `payload`.
 *
 * @example
 * ```ts
 * import { FLAG_PADDED, unpad } from "./frames.ts";
 * const padded = new Uint8Array([2, 0x61, 0, 0]); // pad length 2, "a", two pad bytes
 * console.assert(unpad(FLAG_PADDED, padded)?.length === 1);
 * console.assert(unpad(FLAG_PADDED, new Uint8Array([4, 0])) === undefined);
 * ```
 */
export function unpad(flags: number, payload: Uint8Array): Uint8Array | undefined {
  if (!(flags & FLAG_PADDED)) return payload;
  if (payload.length < 1) return undefined;
  const pad = payload[0];
  if (pad >= payload.length) return undefined;
  return payload.subarray(1, payload.length - pad);
}

/**
 * A SETTINGS payload from identifier/value pairs.
 *
 * @example
 * ```ts
 * import { encodeSettings, SETTINGS_MAX_CONCURRENT_STREAMS } from "./frames.ts";
 * const payload = encodeSettings([[SETTINGS_MAX_CONCURRENT_STREAMS, 100]]);
 * console.assert(payload.length === 6 && payload[5] === 100);
 * ```
 */
export function encodeSettings(entries: readonly (readonly [number, number])[]): Uint8Array {
  const payload = new Uint8Array(entries.length * 6);
  entries.forEach(([key, value], i) => {
    payload[i * 6] = key >>> 8;
    payload[i * 6 + 1] = key & 0xff;
    writeUint32(payload, i * 6 + 2, value);
  });
  return payload;
}

/**
 * Connection-specific header fields, which HTTP/2 forbids (RFC 9113 section 8.2.2): both
 * roles drop them from what they send.
 *
 * @example
 * ```ts
 * import { CONNECTION_SPECIFIC_HEADERS } from "./frames.ts";
 * import assert from "node:assert/strict";
 * assert.ok(CONNECTION_SPECIFIC_HEADERS.includes("keep-alive"));
 * ```
 */
export const CONNECTION_SPECIFIC_HEADERS: readonly string[] = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
];
