/**
 * The first-bytes switch both runtimes' guests put in front of the engine: a
 * connection's first bytes decide whether it speaks HTTP/2 (prior knowledge) or
 * HTTP/1.1. Only an HTTP/1 request line goes to HTTP/1.1; anything else that is not
 * the preface goes to HTTP/2, whose server answers it GOAWAY PROTOCOL_ERROR (RFC 9113,
 * 3.4), as h2spec expects (3.5#2), rather than an HTTP/1.1 400.
 *
 * @module
 */
import type { ByteStream } from "../runtime/types.ts";
import { PREFACE } from "./frames.ts";

/**
 * How many first bytes {@linkcode classifyFirstBytes} looks at, at most. Small: a
 * connection that says nothing holds that much until its header timeout; and a request
 * line longer than this is HTTP/1.1's to refuse.
 */
export const FIRST_BYTES_LIMIT = 4 * 1024;

/**
 * Which server a connection goes to.
 *
 * @example
 * ```ts
 * import type { FirstBytesKind } from "./preface.ts";
 * const toTheEngine: FirstBytesKind = "http2";
 * ```
 */
export type FirstBytesKind = "http2" | "http1";

/**
 * What a connection's first bytes speak: `"http2"` once they hold the whole preface, or
 * once they differ from it and their first line is not an HTTP/1 request line;
 * `"http1"` for such a line (or for {@linkcode FIRST_BYTES_LIMIT} bytes that differ
 * from the preface and hold no line end); `undefined` while they cannot tell yet. Only
 * the first {@linkcode FIRST_BYTES_LIMIT} bytes are looked at.
 *
 * @example
 * ```ts
 * import { classifyFirstBytes } from "./preface.ts";
 * const bytes = (text: string) => new TextEncoder().encode(text);
 * console.assert(classifyFirstBytes(bytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) === "http2");
 * console.assert(classifyFirstBytes(bytes("PRI * HTTP/2")) === undefined);
 * console.assert(classifyFirstBytes(bytes("GET / HTTP/1.1\r\n")) === "http1");
 * console.assert(classifyFirstBytes(bytes("GET / HTTP/1.1")) === undefined);
 * console.assert(classifyFirstBytes(bytes("INVALID PREFACE\r\n")) === "http2");
 * ```
 */
export function classifyFirstBytes(bytes: Uint8Array): FirstBytesKind | undefined {
  const length = Math.min(bytes.length, FIRST_BYTES_LIMIT);
  const end = Math.min(length, PREFACE.length);
  let differs = false;
  for (let i = 0; i < end && !differs; i++) differs = bytes[i] !== PREFACE[i];
  if (!differs) return length >= PREFACE.length ? "http2" : undefined;
  const newline = bytes.subarray(0, length).indexOf(0x0a);
  if (newline < 0) return length === FIRST_BYTES_LIMIT ? "http1" : undefined;
  const line = String.fromCharCode(...bytes.subarray(0, newline));
  return HTTP1_REQUEST_LINE.test(line) ? "http1" : "http2";
}

/** Method, target, HTTP/1.x (RFC 9112, section 3). */
const HTTP1_REQUEST_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP\/1\.\d\r?$/;

/**
 * A connection's first bytes, as {@linkcode readFirstBytes} read them, and their kind.
 *
 * @example
 * ```ts
 * import type { FirstBytes } from "./preface.ts";
 * const first: FirstBytes = { kind: "http1", bytes: new TextEncoder().encode("GET / HTTP/1.1\r\n") };
 * ```
 */
export interface FirstBytes {
  /** Where they go. */
  kind: FirstBytesKind;
  /** Every byte read (at most {@linkcode FIRST_BYTES_LIMIT}): the server's to read first. */
  bytes: Uint8Array;
}

/**
 * Reads a connection's first bytes until {@linkcode classifyFirstBytes} can tell what
 * they speak; `null` if the connection ends first. At most
 * {@linkcode FIRST_BYTES_LIMIT} bytes are read: the rest of a large first packet waits
 * in the socket for the server chosen.
 *
 * @example
 * ```ts
 * import { readFirstBytes } from "./preface.ts";
 * const text = new TextEncoder().encode("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
 * let given = false;
 * const first = await readFirstBytes({
 *   read: (into) => {
 *     if (given) return Promise.resolve(null);
 *     given = true;
 *     into.set(text);
 *     return Promise.resolve(text.length);
 *   },
 *   write: (bytes) => Promise.resolve(bytes.length),
 *   close: () => {},
 * });
 * console.assert(first?.kind === "http1" && first.bytes.length === text.length);
 * ```
 */
export async function readFirstBytes(socket: ByteStream): Promise<FirstBytes | null> {
  const buffer = new Uint8Array(FIRST_BYTES_LIMIT);
  let length = 0;
  for (;;) {
    const count = await socket.read(buffer.subarray(length));
    if (count === null) return null;
    length += count;
    const bytes = buffer.subarray(0, length);
    const kind = classifyFirstBytes(bytes);
    if (kind !== undefined) return { kind, bytes };
  }
}
