/**
 * A header block as received, and its validation (RFC 9113 sections 8.2 and 8.3): a
 * request head, a response head or trailers, or why it is malformed (a stream error).
 *
 * @module
 */
import { CONNECTION_SPECIFIC_HEADERS } from "./frames.ts";

/**
 * A validated header block as received: the pseudo-headers by name, the regular fields
 * flat (`name, value, …`, names lower case).
 *
 * @example
 * ```ts
 * import { HeaderBlock } from "./header_block.ts";
 * const block = new HeaderBlock(["accept", "a", "accept", "b"], 0, 80);
 * console.assert(block.get("accept") === "a, b" && block.get("te") === null);
 * ```
 */
export class HeaderBlock {
  /** The decoded fields, pseudo-headers first; regular ones start at `start`. */
  readonly raw: readonly string[];
  /** Where the regular fields start in `raw`. */
  readonly start: number;
  /** The list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it. */
  readonly size: number;
  /** `:method`, in a request. */
  method?: string;
  /** `:scheme`, in a request. */
  scheme?: string;
  /** `:authority`, in a request. */
  authority?: string;
  /** `:path`, in a request. */
  path?: string;
  /** `:status`, in a response. */
  status?: number;
  /** The declared content-length, or -1. */
  contentLength: number = -1;

  /** A block of `raw` fields whose regular ones start at `start`; `size` as counted. */
  constructor(raw: readonly string[], start: number, size: number) {
    this.raw = raw;
    this.start = start;
    this.size = size;
  }

  /** One field's value, repeated fields joined with ", " (as `Headers#get`); null if absent. */
  get(name: string): string | null {
    const raw = this.raw;
    let found: string | null = null;
    for (let i = this.start; i < raw.length; i += 2) {
      if (raw[i] === name) found = found === null ? raw[i + 1] : `${found}, ${raw[i + 1]}`;
    }
    return found;
  }

  /** The regular fields as a new Headers. */
  toHeaders(): Headers {
    const headers = new Headers();
    const raw = this.raw;
    for (let i = this.start; i < raw.length; i += 2) headers.append(raw[i], raw[i + 1]);
    return headers;
  }
}

/** Connection-specific fields (RFC 9113 section 8.2.2). */
const CONNECTION_SPECIFIC = new Set(CONNECTION_SPECIFIC_HEADERS);
const BAD_VALUE = /[\0\r\n]|^[ \t]|[ \t]$/;

/** A field name RFC 9113 section 8.2.1 allows: no upper case, controls, space or colon. */
function validName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || (c >= 0x41 && c <= 0x5a) || c >= 0x7f || c === 0x3a) return false;
  }
  return true;
}

/** Why the regular fields from `start` are malformed, or undefined. */
function checkRegular(
  raw: readonly string[],
  start: number,
  block: HeaderBlock,
): string | undefined {
  for (let i = start; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name.charCodeAt(0) === 0x3a) return `pseudo-header ${name} after regular fields`;
    if (!validName(name)) return `invalid field name ${JSON.stringify(name)}`;
    if (value.length > 0 && BAD_VALUE.test(value)) return `invalid value of ${name}`;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
    if (name === "te" && value !== "trailers") return `te: ${value}`;
    if (name === "content-length") {
      if (!/^[0-9]+$/.test(value)) return `content-length: ${value}`;
      const length = Number(value);
      if (block.contentLength >= 0 && block.contentLength !== length) {
        return "conflicting content-length";
      }
      block.contentLength = length;
    }
  }
  return undefined;
}

/**
 * A request head (RFC 9113 section 8.3.1), or why it is malformed.
 *
 * @example
 * ```ts
 * import { requestHead } from "./header_block.ts";
 * const head = requestHead([":method", "GET", ":scheme", "http", ":path", "/"], 0);
 * console.assert(typeof head !== "string" && head.path === "/");
 * console.assert(requestHead([":method", "GET", ":method", "GET"], 0) === "duplicate :method");
 * ```
 */
export function requestHead(raw: string[], size: number): HeaderBlock | string {
  let i = 0;
  const block = new HeaderBlock(raw, 0, size);
  for (; i < raw.length && raw[i].charCodeAt(0) === 0x3a; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    for (let j = 0; j < i; j += 2) if (raw[j] === name) return `duplicate ${name}`;
    if (name === ":method") block.method = value;
    else if (name === ":scheme") block.scheme = value;
    else if (name === ":authority") block.authority = value;
    else if (name === ":path") block.path = value;
    else return `pseudo-header ${name} in a request`;
  }
  (block as { start: number }).start = i;
  if (block.method === undefined) return "no :method";
  if (block.method === "CONNECT") {
    if (block.scheme !== undefined || block.path !== undefined) {
      return "CONNECT with :scheme or :path";
    }
    if (block.authority === undefined) return "CONNECT without :authority";
  } else {
    if (block.scheme === undefined) return "no :scheme";
    if (block.path === undefined) return "no :path";
    if (block.path === "") return "empty :path";
  }
  return checkRegular(raw, i, block) ?? block;
}

/**
 * A response head, or why it is malformed.
 *
 * @example
 * ```ts
 * import { responseHead } from "./header_block.ts";
 * const head = responseHead([":status", "204", "x-a", "1"], 0);
 * console.assert(typeof head !== "string" && head.status === 204 && head.get("x-a") === "1");
 * ```
 */
export function responseHead(raw: string[], size: number): HeaderBlock | string {
  const block = new HeaderBlock(raw, 0, size);
  let i = 0;
  for (; i < raw.length && raw[i].charCodeAt(0) === 0x3a; i += 2) {
    if (raw[i] !== ":status") return `pseudo-header ${raw[i]} in a response`;
    if (block.status !== undefined) return "duplicate :status";
    if (!/^[1-9][0-9][0-9]$/.test(raw[i + 1])) return `:status ${raw[i + 1]}`;
    block.status = Number(raw[i + 1]);
  }
  (block as { start: number }).start = i;
  if (block.status === undefined) return "no :status";
  return checkRegular(raw, i, block) ?? block;
}

/**
 * Trailers: regular fields only.
 *
 * @example
 * ```ts
 * import { trailerBlock } from "./header_block.ts";
 * const why = trailerBlock([":status", "200"], 0);
 * console.assert(why === "pseudo-header :status after regular fields");
 * ```
 */
export function trailerBlock(raw: string[], size: number): HeaderBlock | string {
  const block = new HeaderBlock(raw, 0, size);
  return checkRegular(raw, 0, block) ?? block;
}
