/**
 * One HTTP/2 connection (RFC 9113) over a {@linkcode ByteStream}, for both roles: the
 * server (peer-opened, odd streams) and the client (streams we open). It keeps the
 * stream states of section 5.1, both sides' SETTINGS, flow control both ways, PING,
 * GOAWAY, RST_STREAM, CONTINUATION assembly, padding, header validation (RFC 9113
 * section 8.2 and 8.3) and the limits that keep a hostile peer cheap. No runtime
 * globals: only web ones (setTimeout, queueMicrotask, AbortController).
 *
 * ## API
 *
 * ```ts ignore
 * const connection = new Connection(socket, {
 *   role: "server",                 // or "client"
 *   prefix,                         // bytes already read from the socket, if any
 *   onStream: (stream) => {},       // server: a peer opened a stream with a valid head
 *   // our settings and limits: see ConnectionOptions
 * });
 * await connection.closed;          // resolves once the socket is closed (never rejects)
 * ```
 *
 * - Client: `connection.openStream(headerFields, endStream)` sends HEADERS on a new
 *   stream (ids in order) and returns its {@linkcode H2Stream}; `canOpenStream` and
 *   `availableStreams` say whether the peer takes more now, `onCapacity` (an option)
 *   is called whenever that may have changed. The answer's head arrives through
 *   `stream.head()` (or `stream.onHead`), 1xx heads through `stream.onInformational`.
 * - Both: `stream.read()` / `for await (const chunk of stream)` / `stream.readAll(limit)`
 *   / `stream.bufferedBody()` read the peer's body; our receive windows are refilled as
 *   the body is consumed, so a slow reader pushes back on the peer. `stream.trailers`
 *   holds the peer's trailers once `stream.receivedEnd`.
 * - Both: `stream.sendHeaders(fields, endStream)`, `stream.write(bytes)` (false: wait
 *   for `stream.whenWritable()`, about 64 KiB are queued), `stream.end(trailers?)`.
 *   Writes are queued per stream and sent as the peer's windows allow; frames made in
 *   one turn of the event loop go out in one socket write.
 * - Both: `stream.reset(code)`, `stream.signal` (aborts when the stream is reset, by
 *   either side, or the connection is lost), `stream.onClose`.
 * - Both: `connection.ping()` (resolves with the round trip in ms), `goAway(code)`
 *   (graceful with NO_ERROR: the peer's streams up to now finish, then the connection
 *   closes), `close(error?)` (now), `onGoAway` (an option: the peer's GOAWAY).
 *
 * Header fields travel flat: `[name, value, name, value, …]`, names lower case, byte
 * strings (one character per byte). Failures are {@linkcode Http2Error}s: `code` is the
 * RFC 9113 error code, `remote` says whether the peer sent it, `unprocessed` whether
 * the peer never processed the stream (REFUSED_STREAM, or above a GOAWAY's last
 * stream id), so that a client may retry it.
 *
 * @module
 */
import type { ByteStream } from "../runtime/types.ts";
import {
  COMPRESSION_ERROR,
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  ENHANCE_YOUR_CALM,
  errorName,
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FLAG_PADDED,
  FLAG_PRIORITY,
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
  INTERNAL_ERROR,
  MAX_MAX_FRAME,
  MAX_WINDOW,
  NO_ERROR,
  PREFACE,
  PROTOCOL_ERROR,
  readStreamId,
  readUint32,
  REFUSED_STREAM,
  SETTINGS_ENABLE_PUSH,
  SETTINGS_HEADER_TABLE_SIZE,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  SETTINGS_MAX_FRAME_SIZE,
  SETTINGS_MAX_HEADER_LIST_SIZE,
  STREAM_CLOSED,
  writeFrameHeader,
  writeUint32,
} from "./frames.ts";
import { HeaderListTooLarge, HpackDecoder, HpackError } from "./hpack.ts";
import { encodeFlatHeaderBlock } from "./hpack_encoder.ts";

/**
 * Which end of the connection we are.
 *
 * @example
 * ```ts
 * import type { Role } from "./connection.ts";
 * const role: Role = "server";
 * ```
 */
export type Role = "client" | "server";

/**
 * An HTTP/2 failure: of a stream (it was reset) or of the whole connection.
 *
 * @example
 * ```ts
 * import { Http2Error } from "./connection.ts";
 * const refused = new Http2Error("refused", 7, { remote: true, unprocessed: true });
 * console.assert(refused.codeName === "REFUSED_STREAM" && refused.unprocessed);
 * ```
 */
export class Http2Error extends Error {
  override name = "Http2Error";
  /** The RFC 9113 error code. */
  readonly code: number;
  /** Whether the peer sent it (RST_STREAM or GOAWAY), rather than we. */
  readonly remote: boolean;
  /** The peer never processed the stream: sending it again is safe. */
  readonly unprocessed: boolean;
  /** Whether the whole connection failed, not just one stream. */
  readonly connection: boolean;

  constructor(
    message: string,
    code: number,
    options: { remote?: boolean; unprocessed?: boolean; connection?: boolean; cause?: unknown } =
      {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.remote = options.remote ?? false;
    this.unprocessed = options.unprocessed ?? false;
    this.connection = options.connection ?? false;
  }

  /** The code's RFC 9113 name. */
  get codeName(): string {
    return errorName(this.code);
  }
}

/**
 * What {@linkcode H2Stream.readAll} rejects with past its limit, holding what was read.
 *
 * @example
 * ```ts
 * import { BodyTooLarge } from "./connection.ts";
 * const error = new BodyTooLarge(4, new Uint8Array(5));
 * console.assert(error.readSoFar.length === 5);
 * ```
 */
export class BodyTooLarge extends Error {
  override name = "BodyTooLarge";
  /** The limit passed. */
  readonly limit: number;
  /** The bytes read by then. */
  readonly readSoFar: Uint8Array;
  constructor(limit: number, readSoFar: Uint8Array) {
    super(`body larger than ${limit} bytes`);
    this.limit = limit;
    this.readSoFar = readSoFar;
  }
}

/**
 * A validated header block as received: the pseudo-headers by name, the regular fields
 * flat (`name, value, …`, names lower case).
 *
 * @example
 * ```ts
 * import { HeaderBlock } from "./connection.ts";
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
  contentLength = -1;

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

/**
 * Everything a {@linkcode Connection} can be told. Sizes are in bytes, times in ms.
 *
 * @example
 * ```ts
 * import type { ConnectionOptions } from "./connection.ts";
 * const options: ConnectionOptions = { role: "server", maxConcurrentStreams: 100 };
 * ```
 */
export interface ConnectionOptions {
  /** Which end we are. */
  role: Role;
  /** Bytes the caller already read from the socket. */
  prefix?: Uint8Array;
  /** Server: a peer opened a stream and its head is valid. Throwing resets the stream. */
  onStream?: (stream: H2Stream) => void;
  /** The peer sent GOAWAY (streams above `lastStreamId` have already failed). */
  onGoAway?: (lastStreamId: number, code: number, debug: string) => void;
  /** Client: streams may have become available (one closed, or the peer's SETTINGS). */
  onCapacity?: () => void;
  /** The connection failed or began to close (its streams have just failed, if any). */
  onTerminate?: (failure: Http2Error) => void;
  /** Advertised: how many streams the peer may open at once (server). Default 1000. */
  maxConcurrentStreams?: number;
  /** Advertised: each stream's receive window. Default 1 MiB. */
  initialWindowSize?: number;
  /** The connection's receive window. Default 4 MiB. */
  connectionWindowSize?: number;
  /** Advertised: the largest frame we take. Default 16 384. */
  maxFrameSize?: number;
  /** Advertised: the largest header list we take, as RFC 9113 6.5.2 counts. Default 65 536. */
  maxHeaderListSize?: number;
  /** Encoded header block bytes past which we GOAWAY ENHANCE_YOUR_CALM. */
  maxHeaderBlockBytes?: number;
  /** CONTINUATION frames in one block past which we GOAWAY ENHANCE_YOUR_CALM. Default 1000. */
  maxContinuations?: number;
  /** Streams the peer may reset before their answer is done, per 10 s. */
  maxPeerResets?: number;
  /** Unwritten output the peer made us queue (ACKs, resets) past which we give up. 1 MiB. */
  maxQueuedControlBytes?: number;
  /** The same in frames. Default 10 000. */
  maxQueuedControlFrames?: number;
  /** SETTINGS entries in one frame past which the peer is abusive. Default 64. */
  maxSettingsEntries?: number;
  /** Data waiting on a zero send window this long: GOAWAY ENHANCE_YOUR_CALM. 30 000. */
  stallTimeoutMs?: number;
  /**
   * Header blocks must arrive whole within this: the first request's (server, from the
   * start) and every later block from its first frame. GOAWAY NO_ERROR, then close.
   */
  headerTimeoutMs?: number;
  /** No open stream for this long: GOAWAY NO_ERROR, then close. */
  idleTimeoutMs?: number;
  /** A stream's queued output past which `write` returns false. Default 64 KiB. */
  streamHighWaterMark?: number;
}

const READ_BUFFER = 64 * 1024;
/** Output held (queued plus being written) past which no more DATA is framed for now. */
const OUTPUT_HIGH_WATER = 256 * 1024;
/** A written output buffer this small is kept for the next write. */
const SPARE_LIMIT = 1024 * 1024;
/** How long a closing connection waits for its last bytes to go out and drains input. */
const LINGER_MS = 3_000;
/** How much input a connection that failed for an error still reads, and drops. */
const DRAIN_BUDGET = 256 * 1024;
/** Streams we reset, remembered to ignore what the peer sent before it learnt of it. */
const RESET_MEMORY = 4096;
const RESET_WINDOW_MS = 10_000;
const EMPTY = new Uint8Array(0);

/** Connection-specific fields (RFC 9113 section 8.2.2). */
const CONNECTION_SPECIFIC = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);
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

/** A request head (RFC 9113 section 8.3.1), or why it is malformed. */
function requestHead(raw: string[], size: number): HeaderBlock | string {
  let i = 0;
  const block = new HeaderBlock(raw, 0, size);
  for (; i < raw.length && raw[i].charCodeAt(0) === 0x3a; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    switch (name) {
      case ":method":
        if (block.method !== undefined) return "duplicate :method";
        block.method = value;
        break;
      case ":scheme":
        if (block.scheme !== undefined) return "duplicate :scheme";
        block.scheme = value;
        break;
      case ":authority":
        if (block.authority !== undefined) return "duplicate :authority";
        block.authority = value;
        break;
      case ":path":
        if (block.path !== undefined) return "duplicate :path";
        block.path = value;
        break;
      default:
        return `pseudo-header ${name} in a request`;
    }
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

/** A response head, or why it is malformed. */
function responseHead(raw: string[], size: number): HeaderBlock | string {
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

/** Trailers: regular fields only. */
function trailerBlock(raw: string[], size: number): HeaderBlock | string {
  const block = new HeaderBlock(raw, 0, size);
  return checkRegular(raw, 0, block) ?? block;
}

/** A header block being put together from HEADERS and CONTINUATION frames. */
interface PartialBlock {
  id: number;
  endStream: boolean;
  selfDependent: boolean;
  parts: Uint8Array[];
  size: number;
  continuations: number;
}

/** A waiter on a stream (reader or writer). */
type Wake = () => void;

/**
 * One stream of a {@linkcode Connection}. Made by the connection (the peer opened it,
 * or `openStream`); its fields not documented as public are the connection's.
 *
 * @example
 * ```ts ignore
 * const body = await stream.readAll(4 * 1024 * 1024);
 * stream.sendHeaders([":status", "200", "content-type", "text/plain"], false);
 * stream.write(new TextEncoder().encode("hello"));
 * stream.end(["x-checksum", "abc"]);
 * ```
 */
export class H2Stream {
  /** The stream id. */
  readonly id: number;
  /** The peer's head: the request (server) or the final response (client). */
  headValue?: HeaderBlock;
  /** The peer's trailers, once they came. */
  trailers?: HeaderBlock;
  /** Client: called with the final response head. */
  onHead?: (head: HeaderBlock) => void;
  /** Client: called with each 1xx head. */
  onInformational?: (head: HeaderBlock) => void;
  /** Called once when the stream closes; `error` unless both sides ended normally. */
  onClose?: (error: Http2Error | undefined) => void;

  // --- the connection's ---
  /** @internal */ readonly conn: Connection;
  /** @internal */ sendWindow: number;
  /** @internal */ recvWindow: number;
  /** @internal Consumed bytes not yet given back to the peer. */ unacked = 0;
  /** @internal Received body bytes, for content-length. */ received = 0;
  /** @internal */ recvEnded = false;
  /** @internal */ headersSent = false;
  /** @internal END_STREAM requested by us. */ endQueued = false;
  /** @internal END_STREAM framed. */ sendEnded = false;
  /** @internal */ closed = false;
  /** @internal */ error?: Http2Error;
  /** @internal */ outChunks: Uint8Array[] = [];
  /** @internal */ outOffset = 0;
  /** @internal */ outBytes = 0;
  /** @internal */ trailerBlock?: Uint8Array;
  /** @internal When data last waited on a zero window, or 0. */ blockedAt = 0;
  /** @internal Whether conn window credit for the body is settled (closed). */ settled = false;
  /** @internal Client: a HEAD request, whose answer's content-length has no body. */ isHead =
    false;

  #chunks: Uint8Array[] = [];
  #buffered = 0;
  /** Of the bytes held, those already given back to the peer's windows (readAll's). */
  #credited = 0;
  #discard = false;
  #readWake?: Wake;
  #writeWake?: Wake;
  #collect?: {
    limit: number;
    resolve: (body: Uint8Array) => void;
    reject: (error: unknown) => void;
  };
  #controller?: AbortController;
  #headWaiters?: { resolve: (head: HeaderBlock) => void; reject: (error: unknown) => void }[];

  /** @internal */
  constructor(conn: Connection, id: number, sendWindow: number, recvWindow: number) {
    this.conn = conn;
    this.id = id;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** Whether the peer's END_STREAM came. */
  get receivedEnd(): boolean {
    return this.recvEnded;
  }

  /** Whether the stream is closed (both sides ended, or it was reset). */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Why the stream failed, if it did. */
  get failure(): Http2Error | undefined {
    return this.error;
  }

  /** Aborts when the stream is reset (either side) or the connection is lost. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.error) this.#controller.abort(this.error);
    }
    return this.#controller.signal;
  }

  /** Client: the final response head. */
  head(): Promise<HeaderBlock> {
    if (this.headValue) return Promise.resolve(this.headValue);
    if (this.error) return Promise.reject(this.error);
    if (this.closed) return Promise.reject(new Http2Error("the stream closed", NO_ERROR));
    return new Promise((resolve, reject) => (this.#headWaiters ??= []).push({ resolve, reject }));
  }

  /** Whether `write` may go on without waiting. */
  get writable(): boolean {
    return this.outBytes < this.conn.streamHighWater;
  }

  /** Sends a header block (the head, before any body). */
  sendHeaders(fields: readonly string[] | Uint8Array, endStream: boolean): void {
    if (this.closed || this.endQueued) return;
    if (this.outBytes > 0) throw new Error("headers after body bytes; trailers go with end()");
    const block = fields instanceof Uint8Array ? fields : encodeFlatHeaderBlock(fields);
    this.headersSent = true;
    if (endStream) this.endQueued = true;
    this.conn.sendHeaderBlock(this, block, endStream);
  }

  /** Queues body bytes (kept, not copied: do not change them). False: wait for `whenWritable()`. */
  write(bytes: Uint8Array): boolean {
    if (this.closed || this.endQueued) return true;
    if (!this.headersSent) throw new Error("body bytes before the headers");
    if (bytes.length > 0) {
      this.outChunks.push(bytes);
      this.outBytes += bytes.length;
      this.conn.pumpStream(this);
    }
    return this.outBytes < this.conn.streamHighWater;
  }

  /** Resolves once `write` may go on (or the stream closed). */
  whenWritable(): Promise<void> {
    if (this.closed || this.outBytes < this.conn.streamHighWater) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.#writeWake;
      this.#writeWake = () => (previous?.(), resolve());
    });
  }

  /**
   * Queues the last body bytes and ends our side: with the windows open they go as one
   * DATA frame carrying END_STREAM (kept, not copied).
   */
  writeLast(bytes: Uint8Array): void {
    if (this.closed || this.endQueued) return;
    this.endQueued = true;
    if (bytes.length > 0) {
      this.outChunks.push(bytes);
      this.outBytes += bytes.length;
    }
    this.conn.pumpStream(this);
  }

  /** Ends our side: after the queued body, trailers (a header block) if given. */
  end(trailers?: readonly string[] | Uint8Array): void {
    if (this.closed || this.endQueued) return;
    if (!this.headersSent) throw new Error("the end of a stream before its headers");
    this.endQueued = true;
    if (trailers !== undefined) {
      this.trailerBlock = trailers instanceof Uint8Array
        ? trailers
        : encodeFlatHeaderBlock(trailers);
    }
    this.conn.pumpStream(this);
  }

  /** Resets the stream (RST_STREAM `code`); what is queued is dropped. */
  reset(code = 0x8): void {
    this.conn.resetStream(this, code, `reset by us: ${errorName(code)}`);
  }

  /** The next body chunk; null at the end. Rejects if the stream failed. */
  read(): Promise<Uint8Array | null> {
    const chunk = this.#take();
    if (chunk !== undefined) return Promise.resolve(chunk);
    if (this.error) return Promise.reject(this.error);
    if (this.recvEnded || this.closed) return Promise.resolve(null);
    return new Promise<void>((resolve) => (this.#readWake = resolve)).then(() => this.read());
  }

  /** The body chunk by chunk. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const chunk = await this.read();
      if (chunk === null) return;
      yield chunk;
    }
  }

  /** The next body chunk if one is already here (taken), else undefined: a read without a turn. */
  takeChunk(): Uint8Array | undefined {
    return this.#take();
  }

  /** The whole body if all of it has arrived (taken: reads see nothing more), else undefined. */
  bufferedBody(): Uint8Array | undefined {
    if (!this.recvEnded || this.error) return undefined;
    return this.#takeAll();
  }

  /** The whole body, rejecting with {@linkcode BodyTooLarge} once it passes `limit`. */
  readAll(limit: number): Promise<Uint8Array> {
    if (this.#buffered > limit) return Promise.reject(this.#overLimit(limit));
    if (this.recvEnded || this.error || this.closed) {
      if (this.error) return Promise.reject(this.error);
      return Promise.resolve(this.#takeAll());
    }
    // What readAll holds is bounded by its limit: the windows are given back as it
    // arrives, or a body larger than a window would never come whole.
    const uncredited = this.#buffered - this.#credited;
    this.#credited = this.#buffered;
    this.conn.consumed(this, uncredited);
    return new Promise((resolve, reject) => (this.#collect = { limit, resolve, reject }));
  }

  #overLimit(limit: number): BodyTooLarge {
    const error = new BodyTooLarge(limit, this.#takeAll());
    // What else comes is not kept, only counted back into the windows.
    this.#discard = true;
    return error;
  }

  #take(): Uint8Array | undefined {
    const chunk = this.#chunks.shift();
    if (chunk === undefined) return undefined;
    this.#buffered -= chunk.length;
    const already = Math.min(this.#credited, chunk.length);
    this.#credited -= already;
    this.conn.consumed(this, chunk.length - already);
    return chunk;
  }

  #takeAll(): Uint8Array {
    const chunks = this.#chunks;
    const total = this.#buffered;
    const uncredited = total - this.#credited;
    this.#chunks = [];
    this.#buffered = 0;
    this.#credited = 0;
    if (uncredited > 0) this.conn.consumed(this, uncredited);
    if (chunks.length === 1) return chunks[0];
    const body = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      body.set(chunk, at);
      at += chunk.length;
    }
    return body;
  }

  /** @internal Body bytes from the peer (already copied). */
  deliver(data: Uint8Array): void {
    if (this.#discard) {
      this.conn.consumed(this, data.length);
      return;
    }
    this.#chunks.push(data);
    this.#buffered += data.length;
    const collect = this.#collect;
    if (collect) {
      if (this.#buffered > collect.limit) {
        this.#collect = undefined;
        collect.reject(this.#overLimit(collect.limit));
        return;
      }
      this.#credited += data.length;
      this.conn.consumed(this, data.length);
      return;
    }
    this.#wakeReader();
  }

  /** @internal The peer's END_STREAM. */
  deliverEnd(): void {
    this.recvEnded = true;
    const collect = this.#collect;
    if (collect) {
      this.#collect = undefined;
      collect.resolve(this.#takeAll());
    }
    this.#wakeReader();
  }

  /** @internal Unread bytes still held. */
  get bufferedBytes(): number {
    return this.#buffered - this.#credited;
  }

  /** @internal The final head arrived. */
  deliverHead(head: HeaderBlock): void {
    this.headValue = head;
    for (const waiter of this.#headWaiters?.splice(0) ?? []) waiter.resolve(head);
    this.onHead?.(head);
  }

  /** @internal Output went below the high-water mark. */
  wakeWriter(): void {
    const wake = this.#writeWake;
    if (wake) {
      this.#writeWake = undefined;
      wake();
    }
  }

  #wakeReader(): void {
    const wake = this.#readWake;
    if (wake) {
      this.#readWake = undefined;
      wake();
    }
  }

  /** @internal Closed by the connection: `error` unless it ended normally. */
  finish(error: Http2Error | undefined): void {
    this.closed = true;
    this.outChunks = [];
    this.outBytes = 0;
    if (error) {
      this.error = error;
      this.#chunks = [];
      this.#buffered = 0;
      this.#credited = 0;
      this.#controller?.abort(error);
      const collect = this.#collect;
      this.#collect = undefined;
      collect?.reject(error);
      for (const waiter of this.#headWaiters?.splice(0) ?? []) waiter.reject(error);
    } else if (!this.headValue) {
      const missing = new Http2Error("the stream ended without a head", PROTOCOL_ERROR);
      for (const waiter of this.#headWaiters?.splice(0) ?? []) waiter.reject(missing);
    }
    this.#wakeReader();
    this.wakeWriter();
    try {
      this.onClose?.(error);
    } catch {
      // A listener's failure is its own.
    }
  }
}

/**
 * One HTTP/2 connection; see the module documentation.
 *
 * @example
 * ```ts ignore
 * const connection = new Connection(socket, { role: "client" });
 * const stream = connection.openStream([
 *   ":method", "GET", ":scheme", "http", ":authority", "localhost", ":path", "/",
 * ], true);
 * const head = await stream.head();
 * const body = await stream.readAll(1024 * 1024);
 * ```
 */
export class Connection {
  /** Which end we are. */
  readonly role: Role;
  /** @internal */ readonly streamHighWater: number;
  readonly #socket: ByteStream;
  readonly #options: ConnectionOptions;
  readonly #streams = new Map<number, H2Stream>();
  readonly #decoder: HpackDecoder;
  /** The highest stream id the peer opened. */
  #lastPeerId = 0;
  #nextLocalId: number;
  #peerOpen = 0;
  #localOpen = 0;
  /** Peer stream ids skipped over (never opened): [from, to] pairs, oldest first. */
  #skipped: number[] = [];
  #resetByUs = new Set<number>();
  // Our settings (advertised) and the receive side.
  readonly #maxStreams: number;
  readonly #localWindow: number;
  #recvInitialWindow = DEFAULT_WINDOW;
  #settingsAcked = false;
  readonly #connWindow: number;
  #recvWindow = DEFAULT_WINDOW;
  #connUnacked = 0;
  readonly #maxFrame: number;
  readonly #maxHeaderList: number;
  readonly #maxHeaderBlock: number;
  readonly #maxContinuations: number;
  // The peer's settings and our send side.
  #peerMaxFrame = DEFAULT_MAX_FRAME;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxStreams = Infinity;
  #peerMaxHeaderList = Infinity;
  #sendWindow = DEFAULT_WINDOW;
  #settingsReceived = false;
  #partial?: PartialBlock;
  // GOAWAY both ways.
  #goAwaySent = -1;
  #goAwayReceived = -1;
  // Abuse accounting.
  #resets = 0;
  #resetsSince = 0;
  readonly #maxResets: number;
  // Output.
  #out = new Uint8Array(16 * 1024);
  #outLen = 0;
  #spare?: Uint8Array<ArrayBuffer>;
  #inflight = 0;
  #writing = false;
  #flushQueued = false;
  #controlFrames = 0;
  #controlBytes = 0;
  #inflightControlFrames = 0;
  #inflightControlBytes = 0;
  readonly #pending = new Set<H2Stream>();
  // Pings we sent, by payload.
  #pingSeq = 0;
  readonly #pings = new Map<
    number,
    { sent: number; resolve: (ms: number) => void; reject: (e: unknown) => void }
  >();
  // Timers.
  #headerTimer?: ReturnType<typeof setTimeout>;
  #awaitingFirstHead: boolean;
  #idleTimer?: ReturnType<typeof setTimeout>;
  #idleSince = 0;
  #stallTimer?: ReturnType<typeof setTimeout>;
  #lingerTimer?: ReturnType<typeof setTimeout>;
  /** When the last bytes came in (per read, not per frame): keepalive pings only a quiet peer. */
  #receivedAt = Date.now();
  /** Input bytes still read (and dropped) after an error GOAWAY. */
  #drainBudget = DRAIN_BUDGET;
  // The end.
  #failure?: Http2Error;
  #terminating = false;
  #socketClosed = false;
  #resolveClosed!: () => void;
  /** Resolves once the socket is closed; never rejects. */
  readonly closed: Promise<void>;

  constructor(socket: ByteStream, options: ConnectionOptions) {
    this.#socket = socket;
    this.#options = options;
    this.role = options.role;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#nextLocalId = options.role === "client" ? 1 : 2;
    this.#maxStreams = options.maxConcurrentStreams ?? 1000;
    this.#localWindow = Math.min(options.initialWindowSize ?? 1024 * 1024, MAX_WINDOW);
    this.#connWindow = Math.min(
      Math.max(options.connectionWindowSize ?? 4 * 1024 * 1024, DEFAULT_WINDOW),
      MAX_WINDOW,
    );
    this.#maxFrame = Math.min(
      Math.max(options.maxFrameSize ?? DEFAULT_MAX_FRAME, DEFAULT_MAX_FRAME),
      MAX_MAX_FRAME,
    );
    this.#maxHeaderList = options.maxHeaderListSize ?? 65_536;
    this.#maxHeaderBlock = options.maxHeaderBlockBytes ??
      Math.max(4 * this.#maxHeaderList, 256 * 1024);
    this.#maxContinuations = options.maxContinuations ?? 1000;
    this.#maxResets = options.maxPeerResets ?? Math.max(1000, 2 * this.#maxStreams);
    this.streamHighWater = options.streamHighWaterMark ?? 64 * 1024;
    this.#decoder = new HpackDecoder(4096);
    this.#awaitingFirstHead = options.role === "server";

    // A server sends its SETTINGS once the client's preface is in: a peer that is no
    // HTTP/2 client gets nothing but a GOAWAY.
    if (options.role === "client") this.#sendPreface();
    this.#requestFlush();
    if (options.headerTimeoutMs !== undefined && this.#awaitingFirstHead) this.#armHeaderTimer();
    this.#idleSince = Date.now();
    if (options.idleTimeoutMs !== undefined) this.#armIdleTimer(options.idleTimeoutMs);
    this.#readLoop(options.prefix ?? EMPTY);
  }

  /** Our connection preface: the client's magic, then SETTINGS and a larger window. */
  #sendPreface(): void {
    const role = this.role;
    if (role === "client") this.#append(PREFACE);
    const settings: [number, number][] = [];
    if (role === "client") settings.push([SETTINGS_ENABLE_PUSH, 0]);
    if (role === "server" || this.#options.maxConcurrentStreams !== undefined) {
      settings.push([SETTINGS_MAX_CONCURRENT_STREAMS, this.#maxStreams]);
    }
    if (this.#localWindow !== DEFAULT_WINDOW) {
      settings.push([SETTINGS_INITIAL_WINDOW_SIZE, this.#localWindow]);
    }
    if (this.#maxFrame !== DEFAULT_MAX_FRAME) {
      settings.push([SETTINGS_MAX_FRAME_SIZE, this.#maxFrame]);
    }
    settings.push([SETTINGS_MAX_HEADER_LIST_SIZE, this.#maxHeaderList]);
    const at = this.#frame(settings.length * 6, FRAME_SETTINGS, 0, 0);
    settings.forEach(([key, value], i) => {
      this.#out[at + i * 6] = key >>> 8;
      this.#out[at + i * 6 + 1] = key & 0xff;
      writeUint32(this.#out, at + i * 6 + 2, value);
    });
    if (this.#connWindow > DEFAULT_WINDOW) {
      this.#windowUpdate(0, this.#connWindow - DEFAULT_WINDOW);
      this.#recvWindow = this.#connWindow;
    }
    this.#requestFlush();
  }

  // ---------------------------------------------------------------- public

  /** Streams open now (both directions). */
  get activeStreams(): number {
    return this.#streams.size;
  }

  /** Why the connection failed or closed, once it did. */
  get failure(): Http2Error | undefined {
    return this.#failure;
  }

  /** When the peer last sent anything (`Date.now()` of the last read; opening, before that). */
  get lastReceivedAt(): number {
    return this.#receivedAt;
  }

  /** Whether the connection is closing or closed. */
  get isClosing(): boolean {
    return this.#terminating || this.#goAwaySent >= 0 || this.#goAwayReceived >= 0;
  }

  /** The peer's SETTINGS_MAX_HEADER_LIST_SIZE (Infinity if it sent none). */
  get peerMaxHeaderListSize(): number {
    return this.#peerMaxHeaderList;
  }

  /** Client: how many more streams the peer takes now. */
  get availableStreams(): number {
    if (!this.canOpenStream) return 0;
    const ids = Math.floor((MAX_WINDOW - this.#nextLocalId) / 2) + 1;
    return Math.max(0, Math.min(this.#peerMaxStreams - this.#localOpen, ids));
  }

  /** Client: whether `openStream` would succeed now. */
  get canOpenStream(): boolean {
    return !this.#terminating && this.#goAwayReceived < 0 && this.#goAwaySent < 0 &&
      this.#nextLocalId <= MAX_WINDOW && this.#localOpen < this.#peerMaxStreams;
  }

  /** Client: opens a stream with its head (`fields` flat or an encoded block). */
  openStream(fields: readonly string[] | Uint8Array, endStream: boolean): H2Stream {
    if (!this.canOpenStream) {
      throw this.#failure ??
        new Http2Error("the connection takes no new streams now", REFUSED_STREAM, {
          unprocessed: true,
          connection: true,
        });
    }
    const id = this.#nextLocalId;
    this.#nextLocalId += 2;
    const stream = new H2Stream(this, id, this.#peerInitialWindow, this.#recvInitialWindow);
    this.#streams.set(id, stream);
    this.#localOpen++;
    if (!(fields instanceof Uint8Array)) {
      for (let i = 0; i < fields.length; i += 2) {
        if (fields[i] === ":method") stream.isHead = fields[i + 1] === "HEAD";
      }
    }
    stream.sendHeaders(fields, endStream);
    return stream;
  }

  /** Sends a PING; resolves with the round trip in ms once the ACK comes. */
  ping(): Promise<number> {
    if (this.#terminating) return Promise.reject(this.#failure ?? this.#closedError());
    const seq = ++this.#pingSeq;
    const at = this.#frame(8, FRAME_PING, 0, 0);
    writeUint32(this.#out, at, 0x68327069); // "h2pi"
    writeUint32(this.#out, at + 4, seq);
    this.#requestFlush();
    return new Promise((resolve, reject) => {
      this.#pings.set(seq, { sent: Date.now(), resolve, reject });
    });
  }

  /**
   * Sends GOAWAY. NO_ERROR is graceful: streams the peer opened so far (and ours) finish,
   * new ones are refused, and the connection closes once none is left. Any other code
   * ends the connection now.
   */
  goAway(code: number = NO_ERROR, debug = ""): void {
    if (this.#terminating) return;
    if (code !== NO_ERROR) {
      this.#connectionError(code, debug || errorName(code));
      return;
    }
    if (this.#goAwaySent >= 0) return;
    this.#sendGoAway(NO_ERROR, debug);
    this.#closeIfDone();
  }

  /** Closes the connection now: streams fail with `error` (or a plain "closed"). */
  close(error?: Error): void {
    if (this.#terminating) return;
    const failure = error instanceof Http2Error
      ? error
      : new Http2Error(error?.message ?? "the connection was closed", NO_ERROR, {
        connection: true,
        cause: error,
      });
    this.#terminate(failure, false);
  }

  // ------------------------------------------------------- stream plumbing

  /** @internal A stream's header block, framed now (it is not flow-controlled). */
  sendHeaderBlock(stream: H2Stream, block: Uint8Array, endStream: boolean): void {
    if (this.#terminating) return;
    this.#headerFrames(stream.id, block, endStream);
    this.#requestFlush();
    if (endStream) this.#sentEnd(stream);
  }

  /** @internal Frames as much of the stream's queued output as the windows allow. */
  pumpStream(stream: H2Stream): void {
    if (this.#terminating || stream.closed) return;
    this.#pumpOne(stream, Infinity);
    if (stream.outBytes > 0 || (stream.endQueued && !stream.sendEnded)) this.#pending.add(stream);
    else this.#pending.delete(stream);
  }

  /** @internal The reader took `n` body bytes: give them back to the peer's windows. */
  consumed(stream: H2Stream, n: number): void {
    if (n === 0 || this.#terminating) return;
    if (!stream.settled) this.#creditConnection(n);
    if (stream.recvEnded || stream.closed) return;
    stream.unacked += n;
    if (stream.unacked >= this.#localWindow / 2 || stream.unacked >= stream.recvWindow) {
      this.#windowUpdate(stream.id, stream.unacked);
      stream.recvWindow += stream.unacked;
      stream.unacked = 0;
      this.#requestFlush();
    }
  }

  /** @internal Resets a stream from our side. */
  resetStream(stream: H2Stream, code: number, message: string): void {
    if (stream.closed || this.#terminating) return;
    this.#rstFrame(stream.id, code, false);
    this.#closeStream(stream, new Http2Error(message, code), true);
  }

  // ---------------------------------------------------------------- output

  /** Makes room for `bytes` more in the output buffer; returns where they go. */
  #reserve(bytes: number): number {
    const at = this.#outLen;
    if (at + bytes > this.#out.length) {
      const bigger = new Uint8Array(Math.max(this.#out.length * 2, at + bytes));
      bigger.set(this.#out.subarray(0, at));
      this.#out = bigger;
    }
    this.#outLen = at + bytes;
    return at;
  }

  /** Appends a frame header; returns where its payload goes. */
  #frame(length: number, type: number, flags: number, id: number): number {
    const at = this.#reserve(9 + length);
    writeFrameHeader(this.#out, at, length, type, flags, id);
    return at + 9;
  }

  #append(bytes: Uint8Array): void {
    const at = this.#reserve(bytes.length);
    this.#out.set(bytes, at);
  }

  /** Counts a frame the peer made us queue; false (and the connection ends) on a flood. */
  #countControl(bytes: number): boolean {
    this.#controlFrames++;
    this.#controlBytes += bytes;
    const frames = this.#controlFrames + this.#inflightControlFrames;
    const total = this.#controlBytes + this.#inflightControlBytes;
    if (
      frames > (this.#options.maxQueuedControlFrames ?? 10_000) ||
      total > (this.#options.maxQueuedControlBytes ?? 1024 * 1024)
    ) {
      this.#connectionError(
        ENHANCE_YOUR_CALM,
        "the peer makes us queue frames it does not read",
        true,
      );
      return false;
    }
    return true;
  }

  #windowUpdate(id: number, increment: number): void {
    const at = this.#frame(4, FRAME_WINDOW_UPDATE, 0, id);
    writeUint32(this.#out, at, increment);
  }

  #rstFrame(id: number, code: number, peerInduced: boolean): void {
    if (peerInduced && !this.#countControl(13)) return;
    const at = this.#frame(4, FRAME_RST_STREAM, 0, id);
    writeUint32(this.#out, at, code);
    this.#rememberReset(id);
    this.#requestFlush();
  }

  #rememberReset(id: number): void {
    this.#resetByUs.add(id);
    if (this.#resetByUs.size > RESET_MEMORY) {
      this.#resetByUs.delete(this.#resetByUs.values().next().value!);
    }
  }

  #headerFrames(id: number, block: Uint8Array, endStream: boolean): void {
    const end = endStream ? FLAG_END_STREAM : 0;
    const max = this.#peerMaxFrame;
    if (block.length <= max) {
      const at = this.#frame(block.length, FRAME_HEADERS, FLAG_END_HEADERS | end, id);
      this.#out.set(block, at);
      return;
    }
    let at = this.#frame(max, FRAME_HEADERS, end, id);
    this.#out.set(block.subarray(0, max), at);
    for (let from = max; from < block.length; from += max) {
      const size = Math.min(max, block.length - from);
      const last = from + size >= block.length;
      at = this.#frame(size, FRAME_CONTINUATION, last ? FLAG_END_HEADERS : 0, id);
      this.#out.set(block.subarray(from, from + size), at);
    }
  }

  #sendGoAway(code: number, debug: string): void {
    const text = new TextEncoder().encode(debug.slice(0, 256));
    const at = this.#frame(8 + text.length, FRAME_GOAWAY, 0, 0);
    writeUint32(this.#out, at, this.#lastPeerId);
    writeUint32(this.#out, at + 4, code);
    this.#out.set(text, at + 8);
    if (this.#goAwaySent < 0) this.#goAwaySent = this.#lastPeerId;
    this.#requestFlush();
  }

  #requestFlush(): void {
    if (this.#writing || this.#flushQueued || this.#socketClosed) return;
    this.#flushQueued = true;
    queueMicrotask(this.#flushNow);
  }

  readonly #flushNow = (): void => {
    this.#flushQueued = false;
    if (!this.#writing) this.#flush();
  };

  async #flush(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#outLen > 0 && !this.#socketClosed) {
        const bytes = this.#out.subarray(0, this.#outLen);
        const buffer = this.#out;
        this.#out = this.#spare ?? new Uint8Array(16 * 1024);
        this.#spare = undefined;
        this.#outLen = 0;
        this.#inflight = bytes.length;
        this.#inflightControlFrames = this.#controlFrames;
        this.#inflightControlBytes = this.#controlBytes;
        this.#controlFrames = 0;
        this.#controlBytes = 0;
        for (let at = 0; at < bytes.length;) at += await this.#socket.write(bytes.subarray(at));
        this.#inflight = 0;
        this.#inflightControlFrames = 0;
        this.#inflightControlBytes = 0;
        if (buffer.length <= SPARE_LIMIT) this.#spare = buffer;
        if (!this.#terminating) this.#pumpAll();
      }
    } catch (error) {
      this.#writing = false;
      this.#terminate(
        new Http2Error(`writing to the connection failed: ${messageOf(error)}`, INTERNAL_ERROR, {
          connection: true,
          cause: error,
        }),
        false,
      );
      this.#closeSocket();
      return;
    }
    this.#writing = false;
    if (this.#terminating) this.#afterFinalFlush();
  }

  // ------------------------------------------------------------ data pump

  #outputFull(): boolean {
    return this.#outLen + this.#inflight >= OUTPUT_HIGH_WATER;
  }

  /** Frames up to `quantum` bytes of a stream's output. */
  #pumpOne(stream: H2Stream, quantum: number): void {
    let framed = 0;
    while (stream.outBytes > 0) {
      const size = Math.min(
        this.#peerMaxFrame,
        stream.sendWindow,
        this.#sendWindow,
        stream.outBytes,
      );
      if (size <= 0 || this.#outputFull()) {
        // Waiting on a window, or on a peer that does not read what we write.
        if (stream.blockedAt === 0) {
          stream.blockedAt = Date.now();
          this.#armStallTimer();
        }
        break;
      }
      if (framed >= quantum) break;
      stream.blockedAt = 0;
      const last = size === stream.outBytes && stream.endQueued && !stream.trailerBlock;
      const at = this.#frame(size, FRAME_DATA, last ? FLAG_END_STREAM : 0, stream.id);
      this.#copyOut(stream, at, size);
      stream.sendWindow -= size;
      this.#sendWindow -= size;
      framed += size;
      if (last) {
        this.#requestFlush();
        this.#sentEnd(stream);
        return;
      }
    }
    if (stream.outBytes === 0 && stream.endQueued && !stream.sendEnded) {
      if (stream.trailerBlock) {
        this.#headerFrames(stream.id, stream.trailerBlock, true);
      } else {
        this.#frame(0, FRAME_DATA, FLAG_END_STREAM, stream.id);
      }
      this.#requestFlush();
      this.#sentEnd(stream);
      return;
    }
    if (framed > 0) this.#requestFlush();
    if (stream.outBytes < this.streamHighWater) stream.wakeWriter();
  }

  /** Moves `size` bytes of a stream's queued chunks into the output at `at`. */
  #copyOut(stream: H2Stream, at: number, size: number): void {
    const out = this.#out;
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

  /** Frames queued output of every stream, round robin, while the output has room. */
  #pumpAll(): void {
    while (this.#pending.size > 0 && !this.#outputFull() && this.#sendWindow >= 0) {
      let progress = false;
      for (const stream of [...this.#pending]) {
        if (this.#outputFull()) break;
        const before = stream.outBytes;
        const ending = stream.endQueued && !stream.sendEnded;
        this.#pumpOne(stream, 64 * 1024);
        const framed = stream.outBytes !== before || (ending && stream.sendEnded);
        const more = !stream.closed &&
          (stream.outBytes > 0 || (stream.endQueued && !stream.sendEnded));
        // One that framed something and has more goes last: a small window opening now
        // and then is shared, not always taken by the same stream.
        if (!more || framed) this.#pending.delete(stream);
        if (more && framed) this.#pending.add(stream);
        if (framed) progress = true;
      }
      if (!progress) break;
    }
  }

  /** Our END_STREAM is framed. */
  #sentEnd(stream: H2Stream): void {
    stream.sendEnded = true;
    this.#pending.delete(stream);
    stream.wakeWriter();
    if (stream.recvEnded) {
      this.#closeStream(stream, undefined, false);
    } else if (this.role === "server") {
      // The answer is complete before the request (RFC 9113 section 8.1): the rest of the
      // request is not needed.
      this.#rstFrame(stream.id, NO_ERROR, false);
      this.#closeStream(
        stream,
        undefined,
        true,
        new Http2Error("the answer ended before the request", NO_ERROR),
      );
    }
  }

  // ------------------------------------------------------- stream lifecycle

  #closeStream(
    stream: H2Stream,
    error: Http2Error | undefined,
    byUs: boolean,
    readerError?: Http2Error,
  ): void {
    if (stream.closed) return;
    this.#streams.delete(stream.id);
    this.#pending.delete(stream);
    if (this.#isLocal(stream.id)) this.#localOpen--;
    else this.#peerOpen--;
    if (byUs) this.#rememberReset(stream.id);
    // Body bytes nobody read yet need not hold the connection window any longer.
    const held = stream.bufferedBytes;
    if (held > 0 && !this.#terminating) this.#creditConnection(held);
    stream.settled = true;
    stream.finish(error ?? (stream.recvEnded ? undefined : readerError));
    if (this.#streams.size === 0) this.#idleSince = Date.now();
    if (this.role === "client") this.#options.onCapacity?.();
    this.#closeIfDone();
  }

  #closeIfDone(): void {
    if (this.#terminating || this.#streams.size > 0) return;
    if (this.#goAwaySent >= 0 || this.#goAwayReceived >= 0) {
      this.#terminate(this.#closedError(), false);
    }
  }

  #closedError(): Http2Error {
    return new Http2Error("the connection is closed", NO_ERROR, { connection: true });
  }

  #isLocal(id: number): boolean {
    return (id & 1) === (this.role === "client" ? 1 : 0);
  }

  /** Whether `id` names a stream that was never opened and may still be. */
  #isIdle(id: number): boolean {
    return this.#isLocal(id) ? id >= this.#nextLocalId : id > this.#lastPeerId;
  }

  #wasSkipped(id: number): boolean {
    const skipped = this.#skipped;
    for (let i = 0; i < skipped.length; i += 2) {
      if (id >= skipped[i] && id <= skipped[i + 1]) return true;
    }
    return false;
  }

  #creditConnection(n: number): void {
    this.#connUnacked += n;
    if (this.#connUnacked >= this.#connWindow / 2) {
      this.#windowUpdate(0, this.#connUnacked);
      this.#recvWindow += this.#connUnacked;
      this.#connUnacked = 0;
      this.#requestFlush();
    }
  }

  /** A stream error (RFC 9113 section 5.4.2): RST_STREAM, the connection lives. */
  #streamError(stream: H2Stream | number, code: number, message: string): void {
    if (typeof stream === "number") {
      this.#rstFrame(stream, code, true);
      return;
    }
    if (stream.closed) return;
    this.#rstFrame(stream.id, code, true);
    this.#closeStream(stream, new Http2Error(`HTTP/2 ${errorName(code)}: ${message}`, code), true);
  }

  /** A connection error (RFC 9113 section 5.4.1): GOAWAY, then close. */
  #connectionError(code: number, message: string, dropOutput = false): void {
    if (this.#terminating) return;
    if (dropOutput) {
      this.#outLen = 0;
      this.#controlFrames = 0;
      this.#controlBytes = 0;
    }
    this.#sendGoAway(code, message);
    this.#terminate(
      new Http2Error(`HTTP/2 ${errorName(code)}: ${message}`, code, { connection: true }),
      true,
    );
  }

  /** Fails every stream and closes once the output is written (or after a while). */
  #terminate(error: Http2Error, sentGoAway: boolean): void {
    if (this.#terminating) return;
    this.#terminating = true;
    this.#failure = error;
    clearTimeout(this.#headerTimer);
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#stallTimer);
    for (const stream of [...this.#streams.values()]) {
      if (!stream.closed) {
        const unprocessed = this.#isLocal(stream.id) && this.#goAwayReceived >= 0 &&
          stream.id > this.#goAwayReceived;
        this.#closeStream(
          stream,
          new Http2Error(error.message, error.code, {
            remote: error.remote,
            unprocessed: unprocessed || error.unprocessed,
            connection: true,
            cause: error.cause,
          }),
          false,
        );
      }
    }
    this.#pending.clear();
    for (const ping of this.#pings.values()) ping.reject(error);
    this.#pings.clear();
    try {
      this.#options.onTerminate?.(error);
    } catch {
      // A listener's failure is its own.
    }
    if (this.#socketClosed) return;
    // Queued output still goes (a GOAWAY last), unless the socket is gone.
    this.#lingerTimer = setTimeout(() => this.#closeSocket(), LINGER_MS);
    if (sentGoAway || this.#outLen > 0) this.#requestFlush();
    if (!this.#writing && !this.#flushQueued) this.#afterFinalFlush();
  }

  /** The last bytes are out: close soon. */
  #afterFinalFlush(): void {
    if (this.#outLen > 0) return;
    // Not at once: closing with unread input makes the kernel send RST, which can destroy
    // the GOAWAY before the peer reads it. After a graceful end the read loop drains
    // input (and closes at the peer's end of stream), so a moment is enough; a peer we
    // stopped reading gets a second to read the GOAWAY before the reset.
    clearTimeout(this.#lingerTimer);
    const failure = this.#failure;
    const abusive = failure !== undefined && failure.code !== NO_ERROR && !failure.remote;
    this.#lingerTimer = setTimeout(() => this.#closeSocket(), abusive ? 1_000 : 50);
  }

  #closeSocket(): void {
    if (this.#socketClosed) return;
    this.#socketClosed = true;
    clearTimeout(this.#lingerTimer);
    clearTimeout(this.#headerTimer);
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#stallTimer);
    try {
      this.#socket.close();
    } catch {
      // Already closed.
    }
    if (!this.#terminating) this.#terminate(this.#closedError(), false);
    this.#resolveClosed();
  }

  // ---------------------------------------------------------------- timers

  #armHeaderTimer(): void {
    const ms = this.#options.headerTimeoutMs;
    if (ms === undefined || this.#headerTimer !== undefined || this.#terminating) return;
    this.#headerTimer = setTimeout(() => {
      this.#headerTimer = undefined;
      if (this.#terminating) return;
      this.#sendGoAway(NO_ERROR, "header timeout");
      this.#terminate(
        new Http2Error("the peer's headers took too long", NO_ERROR, { connection: true }),
        true,
      );
    }, ms);
  }

  #clearHeaderTimer(): void {
    if (this.#headerTimer === undefined) return;
    clearTimeout(this.#headerTimer);
    this.#headerTimer = undefined;
  }

  #armIdleTimer(ms: number): void {
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#terminating) return;
      if (this.#streams.size > 0) return this.#armIdleTimer(ms);
      const idle = Date.now() - this.#idleSince;
      if (idle < ms) return this.#armIdleTimer(ms - idle);
      this.#sendGoAway(NO_ERROR, "idle");
      this.#terminate(
        new Http2Error("the connection was idle", NO_ERROR, { connection: true }),
        true,
      );
    }, ms);
  }

  #armStallTimer(delay?: number): void {
    const ms = this.#options.stallTimeoutMs ?? 30_000;
    if (this.#stallTimer !== undefined || this.#terminating) return;
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = undefined;
      if (this.#terminating) return;
      const now = Date.now();
      let oldest = Infinity;
      for (const stream of this.#pending) {
        if (stream.blockedAt > 0 && stream.blockedAt < oldest) oldest = stream.blockedAt;
      }
      if (oldest === Infinity) return;
      if (now - oldest >= ms) {
        this.#connectionError(ENHANCE_YOUR_CALM, "the peer took no data for too long");
        return;
      }
      this.#armStallTimer(ms - (now - oldest));
    }, delay ?? ms);
  }

  // ----------------------------------------------------------------- input

  async #readLoop(prefix: Uint8Array): Promise<void> {
    let buffer = new Uint8Array(Math.max(READ_BUFFER, prefix.length + 9 + this.#maxFrame));
    buffer.set(prefix);
    let start = 0;
    let end = prefix.length;
    let prefaceLeft = this.role === "server" ? PREFACE.length : 0;
    try {
      for (;;) {
        if (this.#terminating) {
          // After a graceful end, input is drained until we close. A peer we gave up on
          // for an error is drained only up to a budget, then not read any more (a flood
          // pushes back on it): within the budget, a peer that closes on reading our
          // GOAWAY is seen at once instead of at the end of the linger.
          const failure = this.#failure;
          if (failure !== undefined && failure.code !== NO_ERROR && !failure.remote) {
            this.#drainBudget -= end - start;
            if (this.#drainBudget < 0) return;
          }
          start = end = 0;
        } else {
          if (prefaceLeft > 0) {
            const n = Math.min(prefaceLeft, end - start);
            const from = PREFACE.length - prefaceLeft;
            for (let i = 0; i < n; i++) {
              if (buffer[start + i] !== PREFACE[from + i]) {
                this.#connectionError(PROTOCOL_ERROR, "invalid connection preface");
                break;
              }
            }
            if (!this.#terminating) {
              start += n;
              prefaceLeft -= n;
              if (prefaceLeft === 0) this.#sendPreface();
            }
          }
          if (prefaceLeft === 0 && !this.#terminating) {
            while (end - start >= 9) {
              const length = (buffer[start] << 16) | (buffer[start + 1] << 8) | buffer[start + 2];
              const type = buffer[start + 3];
              if (!this.#settingsReceived) {
                if (this.role === "client" && isHttp1(buffer, start, end)) {
                  this.#terminate(
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
                  this.#connectionError(PROTOCOL_ERROR, "the first frame is not SETTINGS");
                  break;
                }
              }
              if (length > this.#maxFrame) {
                this.#connectionError(FRAME_SIZE_ERROR, `a frame of ${length} bytes`);
                break;
              }
              if (end - start < 9 + length) break;
              const flags = buffer[start + 4];
              const id = readStreamId(buffer, start + 5);
              const payload = buffer.subarray(start + 9, start + 9 + length);
              start += 9 + length;
              this.#onFrame(type, flags, id, payload);
              if (this.#terminating) break;
            }
            if (!this.#terminating && this.#options.headerTimeoutMs !== undefined) {
              // A header block that has begun (or a HEADERS frame still arriving) runs
              // against the header timeout.
              const arriving = end - start >= 4 &&
                (buffer[start + 3] === FRAME_HEADERS || buffer[start + 3] === FRAME_CONTINUATION);
              if (this.#awaitingFirstHead || this.#partial || arriving) this.#armHeaderTimer();
              else this.#clearHeaderTimer();
            }
          }
        }
        if (start === end) {
          start = end = 0;
        } else if (start > 0 && buffer.length - start < 9 + this.#maxFrame) {
          buffer.copyWithin(0, start, end);
          end -= start;
          start = 0;
        }
        if (end === buffer.length) {
          const bigger = new Uint8Array(buffer.length * 2);
          bigger.set(buffer.subarray(0, end));
          buffer = bigger;
        }
        if (this.#socketClosed) return;
        const read = await this.#socket.read(buffer.subarray(end));
        if (read === null) {
          if (!this.#terminating) {
            this.#terminate(
              new Http2Error("the peer closed the connection", NO_ERROR, {
                connection: true,
                remote: true,
              }),
              false,
            );
          }
          // Nothing more will come: what is left to write goes, then the socket closes.
          if (!this.#writing && !this.#flushQueued) this.#closeSocket();
          return;
        }
        end += read;
        this.#receivedAt = Date.now();
      }
    } catch (error) {
      if (!this.#terminating) {
        this.#terminate(
          new Http2Error(
            `reading from the connection failed: ${messageOf(error)}`,
            INTERNAL_ERROR,
            {
              connection: true,
              cause: error,
            },
          ),
          false,
        );
      }
      this.#closeSocket();
    }
  }

  #onFrame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.#partial !== undefined && type !== FRAME_CONTINUATION) {
      return this.#connectionError(PROTOCOL_ERROR, "a header block was interrupted");
    }
    switch (type) {
      case FRAME_DATA:
        return this.#onData(flags, id, payload);
      case FRAME_HEADERS:
        return this.#onHeaders(flags, id, payload);
      case FRAME_PRIORITY:
        return this.#onPriority(id, payload);
      case FRAME_RST_STREAM:
        return this.#onReset(id, payload);
      case FRAME_SETTINGS:
        return this.#onSettings(flags, id, payload);
      case FRAME_PUSH_PROMISE:
        return this.#connectionError(PROTOCOL_ERROR, "PUSH_PROMISE, though push is off");
      case FRAME_PING:
        return this.#onPing(flags, id, payload);
      case FRAME_GOAWAY:
        return this.#onGoAway(id, payload);
      case FRAME_WINDOW_UPDATE:
        return this.#onWindowUpdate(id, payload);
      case FRAME_CONTINUATION:
        return this.#onContinuation(flags, id, payload);
      default:
        return; // Unknown frame types are ignored (RFC 9113 section 5.5).
    }
  }

  #onData(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) return this.#connectionError(PROTOCOL_ERROR, "DATA on stream 0");
    const length = payload.length;
    if (length > this.#recvWindow) {
      return this.#connectionError(FLOW_CONTROL_ERROR, "DATA beyond the connection window");
    }
    this.#recvWindow -= length;
    const stream = this.#streams.get(id);
    if (stream === undefined) {
      // Its bytes count against the connection window all the same.
      this.#creditConnection(length);
      if (this.#isIdle(id)) {
        return this.#connectionError(PROTOCOL_ERROR, `DATA on idle stream ${id}`);
      }
      if (this.#resetByUs.has(id)) return;
      return this.#streamError(id, STREAM_CLOSED, `DATA on closed stream ${id}`);
    }
    if (stream.recvEnded) {
      this.#creditConnection(length);
      return this.#streamError(stream, STREAM_CLOSED, "DATA after END_STREAM");
    }
    const data = flags & FLAG_PADDED ? unpadded(payload) : payload;
    if (data === undefined) return this.#connectionError(PROTOCOL_ERROR, "bad DATA padding");
    if (length > stream.recvWindow) {
      this.#creditConnection(length);
      return this.#streamError(stream, FLOW_CONTROL_ERROR, "DATA beyond the stream window");
    }
    stream.recvWindow -= length;
    if (stream.headValue === undefined) {
      this.#creditConnection(length);
      return this.#streamError(stream, PROTOCOL_ERROR, "DATA before the head");
    }
    // Padding is consumed at once.
    const padding = length - data.length;
    if (padding > 0) this.consumed(stream, padding);
    stream.received += data.length;
    const declared = stream.headValue.contentLength;
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    if (
      declared >= 0 && (stream.received > declared || (endStream && stream.received !== declared))
    ) {
      this.#creditConnection(data.length);
      return this.#streamError(stream, PROTOCOL_ERROR, "body length differs from content-length");
    }
    if (data.length > 0) stream.deliver(data.slice());
    if (endStream) this.#receivedEnd(stream);
  }

  #receivedEnd(stream: H2Stream): void {
    stream.deliverEnd();
    if (stream.sendEnded) this.#closeStream(stream, undefined, false);
  }

  #onHeaders(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) return this.#connectionError(PROTOCOL_ERROR, "HEADERS on stream 0");
    if (this.role === "client" && this.#isIdle(id)) {
      // Push is off: a server opens no stream, whether or not the block is complete.
      return this.#connectionError(PROTOCOL_ERROR, `HEADERS opening stream ${id}`);
    }
    let block = flags & FLAG_PADDED ? unpadded(payload) : payload;
    if (block === undefined) return this.#connectionError(PROTOCOL_ERROR, "bad HEADERS padding");
    let selfDependent = false;
    if (flags & FLAG_PRIORITY) {
      if (block.length < 5) return this.#connectionError(FRAME_SIZE_ERROR, "short HEADERS");
      selfDependent = readStreamId(block, 0) === id;
      block = block.subarray(5);
    }
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    if (flags & FLAG_END_HEADERS) {
      return this.#onHeaderBlock(id, endStream, selfDependent, block);
    }
    if (block.length > this.#maxHeaderBlock) {
      return this.#connectionError(ENHANCE_YOUR_CALM, "a header block too large");
    }
    this.#partial = {
      id,
      endStream,
      selfDependent,
      parts: [block.slice()],
      size: block.length,
      continuations: 0,
    };
    if (this.#options.headerTimeoutMs !== undefined) this.#armHeaderTimer();
  }

  #onContinuation(flags: number, id: number, payload: Uint8Array): void {
    const partial = this.#partial;
    if (partial === undefined || partial.id !== id) {
      return this.#connectionError(PROTOCOL_ERROR, "an unexpected CONTINUATION");
    }
    partial.size += payload.length;
    if (partial.size > this.#maxHeaderBlock) {
      return this.#connectionError(ENHANCE_YOUR_CALM, "a header block too large");
    }
    if (++partial.continuations > this.#maxContinuations) {
      return this.#connectionError(ENHANCE_YOUR_CALM, "a CONTINUATION flood");
    }
    partial.parts.push(payload.slice());
    if (!(flags & FLAG_END_HEADERS)) return;
    this.#partial = undefined;
    const block = new Uint8Array(partial.size);
    let at = 0;
    for (const part of partial.parts) {
      block.set(part, at);
      at += part.length;
    }
    this.#onHeaderBlock(id, partial.endStream, partial.selfDependent, block);
  }

  #onHeaderBlock(id: number, endStream: boolean, selfDependent: boolean, block: Uint8Array): void {
    // Decoded whatever becomes of the stream: the table is the connection's.
    const raw: string[] = [];
    let size: number;
    try {
      size = this.#decoder.decodeFlat(block, raw, this.#maxHeaderList, 4 * this.#maxHeaderList);
    } catch (error) {
      if (error instanceof HeaderListTooLarge) {
        return this.#connectionError(ENHANCE_YOUR_CALM, "a header list too large (HPACK bomb?)");
      }
      if (error instanceof HpackError) {
        return this.#connectionError(COMPRESSION_ERROR, error.message);
      }
      throw error;
    }
    const oversize = size > this.#maxHeaderList;
    const stream = this.#streams.get(id);
    if (stream !== undefined) return this.#onStreamHeaders(stream, endStream, raw, size, oversize);
    if (!this.#isIdle(id)) {
      if (this.#resetByUs.has(id)) return;
      if (!this.#isLocal(id) && this.#wasSkipped(id)) {
        return this.#connectionError(
          PROTOCOL_ERROR,
          `HEADERS on stream ${id}, below one already opened`,
        );
      }
      // Not a frame in flight before our reset: the peer tries to reuse a closed stream.
      return this.#connectionError(STREAM_CLOSED, `HEADERS on closed stream ${id}`);
    }
    if (this.#isLocal(id) || this.role === "client") {
      return this.#connectionError(PROTOCOL_ERROR, `HEADERS opening stream ${id}`);
    }
    // A new stream from the peer.
    if (id > this.#lastPeerId + 2) {
      this.#skipped.push(this.#lastPeerId + 2, id - 2);
      if (this.#skipped.length > 128) this.#skipped.splice(0, 2);
    }
    this.#lastPeerId = id;
    if (this.#awaitingFirstHead) {
      this.#awaitingFirstHead = false;
      if (this.#partial === undefined) this.#clearHeaderTimer();
    }
    if (this.#goAwaySent >= 0) {
      // Above our GOAWAY's last stream: ignored (RFC 9113 section 6.8), its frames too.
      this.#rememberReset(id);
      return;
    }
    if (selfDependent) return this.#streamError(id, PROTOCOL_ERROR, "a stream depending on itself");
    if (this.#peerOpen >= this.#maxStreams) {
      return this.#streamError(id, REFUSED_STREAM, "over MAX_CONCURRENT_STREAMS");
    }
    const stream2 = new H2Stream(this, id, this.#peerInitialWindow, this.#recvInitialWindow);
    this.#streams.set(id, stream2);
    this.#peerOpen++;
    if (oversize) {
      // The stream lives just long enough for its 431.
      stream2.headValue = new HeaderBlock([], 0, size);
      if (endStream) stream2.deliverEnd();
      stream2.sendHeaders([":status", "431"], true);
      return;
    }
    const head = requestHead(raw, size);
    if (typeof head === "string") return this.#streamError(stream2, PROTOCOL_ERROR, head);
    stream2.headValue = head;
    if (endStream) {
      if (head.contentLength > 0) {
        return this.#streamError(
          stream2,
          PROTOCOL_ERROR,
          "body length differs from content-length",
        );
      }
      stream2.deliverEnd();
    }
    try {
      this.#options.onStream?.(stream2);
    } catch (error) {
      this.resetStream(stream2, INTERNAL_ERROR, `the stream handler failed: ${messageOf(error)}`);
    }
  }

  /** A header block on a stream already open: the answer's head, or trailers. */
  #onStreamHeaders(
    stream: H2Stream,
    endStream: boolean,
    raw: string[],
    size: number,
    oversize: boolean,
  ): void {
    if (stream.recvEnded) {
      return this.#streamError(stream, STREAM_CLOSED, "HEADERS after END_STREAM");
    }
    if (oversize) return this.#streamError(stream, PROTOCOL_ERROR, "a header list too large");
    if (stream.headValue === undefined) {
      // Client: the response.
      const head = responseHead(raw, size);
      if (typeof head === "string") return this.#streamError(stream, PROTOCOL_ERROR, head);
      if (head.status! < 200) {
        if (endStream) {
          return this.#streamError(stream, PROTOCOL_ERROR, "a 1xx head ends the stream");
        }
        stream.onInformational?.(head);
        return;
      }
      stream.deliverHead(head);
      if (endStream) {
        if (head.contentLength > 0 && head.status !== 304 && !stream.isHead) {
          return this.#streamError(
            stream,
            PROTOCOL_ERROR,
            "body length differs from content-length",
          );
        }
        this.#receivedEnd(stream);
      }
      return;
    }
    if (!endStream) return this.#streamError(stream, PROTOCOL_ERROR, "trailers without END_STREAM");
    const trailers = trailerBlock(raw, size);
    if (typeof trailers === "string") return this.#streamError(stream, PROTOCOL_ERROR, trailers);
    const declared = stream.headValue.contentLength;
    if (declared >= 0 && stream.received !== declared) {
      return this.#streamError(stream, PROTOCOL_ERROR, "body length differs from content-length");
    }
    stream.trailers = trailers;
    this.#receivedEnd(stream);
  }

  #onPriority(id: number, payload: Uint8Array): void {
    if (id === 0) return this.#connectionError(PROTOCOL_ERROR, "PRIORITY on stream 0");
    if (payload.length !== 5) {
      return this.#streamError(id, FRAME_SIZE_ERROR, "PRIORITY of wrong size");
    }
    if (readStreamId(payload, 0) === id) {
      const stream = this.#streams.get(id);
      return this.#streamError(stream ?? id, PROTOCOL_ERROR, "a stream depending on itself");
    }
  }

  #onReset(id: number, payload: Uint8Array): void {
    if (id === 0) return this.#connectionError(PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (payload.length !== 4) {
      return this.#connectionError(FRAME_SIZE_ERROR, "RST_STREAM of wrong size");
    }
    if (this.#isIdle(id)) {
      return this.#connectionError(PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
    }
    const stream = this.#streams.get(id);
    if (stream === undefined) return;
    const code = readUint32(payload, 0);
    if (this.role === "client" && code === NO_ERROR && stream.recvEnded) {
      // The whole answer came before our request was done (RFC 9113 section 8.1): the
      // answer stands, only our sending stops.
      return this.#closeStream(stream, undefined, false);
    }
    if (this.role === "server" && !stream.sendEnded) {
      // Rapid reset (CVE-2023-44487): streams reset before their answer is done.
      const now = Date.now();
      if (now - this.#resetsSince > RESET_WINDOW_MS) {
        this.#resetsSince = now;
        this.#resets = 0;
      }
      if (++this.#resets > this.#maxResets) {
        return this.#connectionError(ENHANCE_YOUR_CALM, "too many streams reset (rapid reset)");
      }
    }
    this.#closeStream(
      stream,
      new Http2Error(`the peer reset the stream: ${errorName(code)}`, code, {
        remote: true,
        unprocessed: code === REFUSED_STREAM,
      }),
      false,
    );
  }

  #onSettings(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) return this.#connectionError(PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & FLAG_ACK) {
      if (payload.length > 0) {
        return this.#connectionError(FRAME_SIZE_ERROR, "a SETTINGS ACK with a payload");
      }
      if (!this.#settingsAcked) {
        this.#settingsAcked = true;
        // Our INITIAL_WINDOW_SIZE holds from here (RFC 9113 section 6.9.2).
        const delta = this.#localWindow - this.#recvInitialWindow;
        this.#recvInitialWindow = this.#localWindow;
        if (delta !== 0) {
          for (const stream of this.#streams.values()) stream.recvWindow += delta;
        }
      }
      return;
    }
    if (payload.length % 6 !== 0) {
      return this.#connectionError(FRAME_SIZE_ERROR, "SETTINGS of wrong size");
    }
    if (payload.length / 6 > (this.#options.maxSettingsEntries ?? 64)) {
      return this.#connectionError(ENHANCE_YOUR_CALM, "a SETTINGS frame with too many entries");
    }
    this.#settingsReceived = true;
    for (let at = 0; at < payload.length; at += 6) {
      const key = (payload[at] << 8) | payload[at + 1];
      const value = readUint32(payload, at + 2);
      switch (key) {
        case SETTINGS_HEADER_TABLE_SIZE:
          break; // Our encoder never indexes: any table size suits it.
        case SETTINGS_ENABLE_PUSH:
          if (value > 1 || (this.role === "client" && value !== 0)) {
            return this.#connectionError(PROTOCOL_ERROR, `ENABLE_PUSH ${value}`);
          }
          break;
        case SETTINGS_MAX_CONCURRENT_STREAMS:
          this.#peerMaxStreams = value;
          break;
        case SETTINGS_INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) {
            return this.#connectionError(FLOW_CONTROL_ERROR, `INITIAL_WINDOW_SIZE ${value}`);
          }
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          for (const stream of this.#streams.values()) {
            stream.sendWindow += delta;
            if (stream.sendWindow > MAX_WINDOW) {
              return this.#connectionError(FLOW_CONTROL_ERROR, "a stream window passed 2^31-1");
            }
          }
          break;
        }
        case SETTINGS_MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME || value > MAX_MAX_FRAME) {
            return this.#connectionError(PROTOCOL_ERROR, `MAX_FRAME_SIZE ${value}`);
          }
          this.#peerMaxFrame = value;
          break;
        case SETTINGS_MAX_HEADER_LIST_SIZE:
          this.#peerMaxHeaderList = value;
          break;
        default:
          break; // Unknown settings are ignored.
      }
    }
    if (!this.#countControl(9)) return;
    this.#frame(0, FRAME_SETTINGS, FLAG_ACK, 0);
    this.#requestFlush();
    // Windows may have opened.
    for (const stream of this.#streams.values()) {
      if (stream.outBytes > 0 || (stream.endQueued && !stream.sendEnded)) this.#pending.add(stream);
    }
    this.#pumpAll();
    if (this.role === "client") this.#options.onCapacity?.();
  }

  #onPing(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) return this.#connectionError(PROTOCOL_ERROR, "PING on a stream");
    if (payload.length !== 8) return this.#connectionError(FRAME_SIZE_ERROR, "PING of wrong size");
    if (flags & FLAG_ACK) {
      if (readUint32(payload, 0) !== 0x68327069) return;
      const seq = readUint32(payload, 4);
      const ping = this.#pings.get(seq);
      if (ping) {
        this.#pings.delete(seq);
        ping.resolve(Date.now() - ping.sent);
      }
      return;
    }
    if (!this.#countControl(17)) return;
    const at = this.#frame(8, FRAME_PING, FLAG_ACK, 0);
    this.#out.set(payload, at);
    this.#requestFlush();
  }

  #onGoAway(id: number, payload: Uint8Array): void {
    if (id !== 0) return this.#connectionError(PROTOCOL_ERROR, "GOAWAY on a stream");
    if (payload.length < 8) return this.#connectionError(FRAME_SIZE_ERROR, "GOAWAY too short");
    const last = readStreamId(payload, 0);
    const code = readUint32(payload, 4);
    const debug = latin1(payload.subarray(8, Math.min(payload.length, 8 + 256)));
    if (this.#goAwayReceived < 0 || last < this.#goAwayReceived) this.#goAwayReceived = last;
    // Our streams above `last` were never processed: they fail, safe to retry.
    for (const stream of [...this.#streams.values()]) {
      if (this.#isLocal(stream.id) && stream.id > last) {
        this.#closeStream(
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
    this.#options.onGoAway?.(last, code, debug);
    this.#closeIfDone();
  }

  #onWindowUpdate(id: number, payload: Uint8Array): void {
    if (payload.length !== 4) {
      return this.#connectionError(FRAME_SIZE_ERROR, "WINDOW_UPDATE of wrong size");
    }
    const increment = readUint32(payload, 0) & MAX_WINDOW;
    if (id === 0) {
      if (increment === 0) return this.#connectionError(PROTOCOL_ERROR, "a zero WINDOW_UPDATE");
      this.#sendWindow += increment;
      if (this.#sendWindow > MAX_WINDOW) {
        return this.#connectionError(FLOW_CONTROL_ERROR, "the connection window passed 2^31-1");
      }
      return this.#pumpAll();
    }
    const stream = this.#streams.get(id);
    if (stream === undefined) {
      if (this.#isIdle(id)) {
        return this.#connectionError(PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
      }
      return; // A closed stream: the peer had not seen its end yet.
    }
    if (increment === 0) return this.#streamError(stream, PROTOCOL_ERROR, "a zero WINDOW_UPDATE");
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) {
      return this.#streamError(stream, FLOW_CONTROL_ERROR, "the stream window passed 2^31-1");
    }
    if (stream.outBytes > 0 || (stream.endQueued && !stream.sendEnded)) {
      this.#pending.add(stream);
      if (!this.#outputFull()) this.#pumpOne(stream, Infinity);
      if (stream.outBytes === 0 && !(stream.endQueued && !stream.sendEnded)) {
        this.#pending.delete(stream);
      }
    }
  }
}

/** A padded payload's data; undefined when the padding is malformed. */
function unpadded(payload: Uint8Array): Uint8Array | undefined {
  if (payload.length < 1) return undefined;
  const pad = payload[0];
  if (pad >= payload.length) return undefined;
  return payload.subarray(1, payload.length - pad);
}

function isHttp1(buffer: Uint8Array, start: number, end: number): boolean {
  const text = "HTTP/1.";
  if (end - start < text.length) return false;
  for (let i = 0; i < text.length; i++) if (buffer[start + i] !== text.charCodeAt(i)) return false;
  return true;
}

function latin1(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i]);
  return out;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
