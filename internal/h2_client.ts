/**
 * A small HTTP/2 client (h2c with prior knowledge, RFC 9113) for the host's unary
 * calls: one POST with a whole body, the whole answer back with its trailers. It runs
 * over any byte stream the runtime opens, so the runtime can set TCP_NODELAY (Deno's
 * fetch turns Nagle's algorithm on and has no way to turn it off) and so that gRPC gets
 * its trailers without node:http2.
 *
 * What it keeps of the protocol: flow control both ways (answers up to a limit are
 * taken without a WINDOW_UPDATE per call), the peer's SETTINGS (frame size, window,
 * concurrent streams, applied as they change), CONTINUATION, padding, PING, GOAWAY
 * and RST_STREAM. A request the server never took (above GOAWAY's last stream,
 * refused with REFUSED_STREAM, or still waiting for a stream slot when its connection
 * closed) is sent again once, on the client's current connection if that still takes
 * new streams (it does after REFUSED_STREAM, so the retry usually goes out on the same
 * connection), else on a new one (after GOAWAY or a close); any other failure is the
 * caller's.
 *
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { concatBytes } from "./bytes.ts";
import type { ByteStream } from "./runtime/types.ts";
import type { PostAnswer } from "./fast_client.ts";
import { encodeHeaderBlock, type HeaderField, HpackDecoder, HpackError } from "./http2/hpack.ts";

/**
 * The largest answer body a host takes: gRPC's default 4 MiB message limit, its
 * 5-byte envelope, and room for a Connect error's JSON.
 *
 * @example
 * ```ts
 * import { ANSWER_MAX_BYTES } from "./h2_client.ts";
 * console.assert(ANSWER_MAX_BYTES > 4 * 1024 * 1024 + 5);
 * ```
 */
export const ANSWER_MAX_BYTES = 4 * 1024 * 1024 + 64 * 1024;

/** A connected byte stream; defined with the runtime seam, re-exported here. */
export type { ByteStream } from "./runtime/types.ts";

/**
 * Options for {@linkcode H2Client}.
 *
 * @example
 * ```ts
 * import type { H2ClientOptions } from "./h2_client.ts";
 * const options: H2ClientOptions = {
 *   authority: "127.0.0.1:8123",
 *   maxResponseBytes: 1024 * 1024,
 *   connect: () => Promise.reject(new Error("nothing to connect to here")),
 * };
 * console.assert(options.authority === "127.0.0.1:8123");
 * ```
 */
export interface H2ClientOptions {
  /** Opens a new connection. */
  connect: () => Promise<ByteStream>;
  /** The `:authority` of every request. */
  authority: string;
  /** The largest answer body taken, in bytes; a larger one fails RESOURCE_EXHAUSTED. */
  maxResponseBytes: number;
}

const FRAME_DATA = 0;
const FRAME_HEADERS = 1;
const FRAME_PRIORITY = 2;
const FRAME_RST_STREAM = 3;
const FRAME_SETTINGS = 4;
const FRAME_PUSH_PROMISE = 5;
const FRAME_PING = 6;
const FRAME_GOAWAY = 7;
const FRAME_WINDOW_UPDATE = 8;
const FRAME_CONTINUATION = 9;

const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

const PROTOCOL_ERROR = 0x1;
const FLOW_CONTROL_ERROR = 0x3;
const FRAME_SIZE_ERROR = 0x6;
const REFUSED_STREAM = 0x7;
const CANCEL = 0x8;
const COMPRESSION_ERROR = 0x9;
const ENHANCE_YOUR_CALM = 0xb;

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
const errorName = (code: number) => ERROR_NAMES[code] ?? `error 0x${code.toString(16)}`;

/** Our receive windows: a stream's, and the connection's. */
const STREAM_WINDOW = 8 * 1024 * 1024;
const CONNECTION_WINDOW = 32 * 1024 * 1024;
const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 0x7fffffff;
/** The largest frame we take: the default, which we do not raise. */
const MAX_FRAME = 16_384;
/** The most header block bytes (HEADERS and its CONTINUATIONs) we take. */
const MAX_HEADER_BLOCK = 256 * 1024;
const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** How an HTTP/1 answer (to our preface) starts: "HTTP/1." in the first 9 bytes. */
const HTTP1 = [...new TextEncoder().encode("HTTP/1.")];
/** Headers HTTP/2 forbids (RFC 9113 section 8.2.2), dropped from requests. */
const CONNECTION_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
]);

/**
 * A failure of one call or of a whole connection.
 *
 * @example
 * ```ts
 * import { H2Error } from "./h2_client.ts";
 * const refused = new H2Error("the server reset the stream: REFUSED_STREAM", true);
 * console.assert(refused.unprocessed);
 * ```
 */
export class H2Error extends Error {
  override name = "H2Error";
  /** The server never took the request: sending it again is safe. */
  readonly unprocessed: boolean;
  constructor(message: string, unprocessed = false) {
    super(message);
    this.unprocessed = unprocessed;
  }
}

/**
 * HTTP/2 POSTs over one connection at a time, opened when first needed and again after
 * it closes.
 *
 * @example
 * ```ts
 * import { H2Client } from "./h2_client.ts";
 * const client = new H2Client({
 *   authority: "127.0.0.1:8123",
 *   maxResponseBytes: 1024 * 1024,
 *   connect: () => Promise.reject(new Error("no plugin in this example")),
 * });
 * const header = { "content-type": "application/proto", "connect-protocol-version": "1" };
 * const outcome = await client
 *   .post("/echo.v1.EchoService/Ping", header, new Uint8Array(0), AbortSignal.timeout(1_000))
 *   .then((answer) => `status ${answer.status}`, (error: Error) => error.message);
 * console.assert(outcome === "no plugin in this example");
 * client.close();
 * ```
 */
export class H2Client {
  readonly #options: H2ClientOptions;
  #connection?: Connection;
  #connecting?: Promise<Connection>;
  #active = 0;
  #closed = false;

  constructor(options: H2ClientOptions) {
    this.#options = options;
  }

  /** Calls in flight. */
  get active(): number {
    return this.#active;
  }

  /** POSTs `body` to `path` and reads the whole answer. */
  async post(
    path: string,
    header: Record<string, string>,
    body: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<PostAnswer> {
    const block = requestHeaderBlock(this.#options.authority, path, header, body.length);
    this.#active++;
    try {
      for (let attempt = 0;; attempt++) {
        if (this.#closed) throw new H2Error("the client is closed");
        signal?.throwIfAborted();
        const connection = this.#connection?.usable
          ? this.#connection
          : await untilAborted(this.#connecting ??= this.#open(), signal);
        try {
          return await connection.request(block, body, signal);
        } catch (error) {
          if (!(error instanceof H2Error && error.unprocessed) || attempt > 0) throw error;
        }
      }
    } finally {
      this.#active--;
    }
  }

  /** A new connection, shared by every call that needs one meanwhile. */
  async #open(): Promise<Connection> {
    try {
      const socket = await this.#options.connect();
      const connection = new Connection(socket, this.#options);
      if (this.#closed) {
        connection.fail(new H2Error("the client is closed"));
        throw new H2Error("the client is closed");
      }
      this.#connection = connection;
      return connection;
    } finally {
      this.#connecting = undefined;
    }
  }

  /** Drops the connection at once; later calls fail. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#connection?.fail(new H2Error("the client is closed"));
    this.#connection = undefined;
  }
}

/**
 * A few {@linkcode H2Client}s to one server, each call going to the least busy: one
 * call at a time stays on the first connection, many in flight spread over all.
 *
 * @example
 * ```ts
 * import { H2Pool } from "./h2_client.ts";
 * const pool = new H2Pool(2, {
 *   authority: "127.0.0.1:8123",
 *   maxResponseBytes: 1024 * 1024,
 *   connect: () => Promise.reject(new Error("no plugin in this example")),
 * });
 * const failed = await pool
 *   .post("http://127.0.0.1:8123/echo.v1.EchoService/Ping", {}, new Uint8Array(0), undefined)
 *   .catch((error: Error) => error.message);
 * console.assert(failed === "no plugin in this example");
 * pool.close();
 * ```
 */
export class H2Pool {
  readonly #clients: H2Client[];
  /** Each URL's path, parsed once. */
  readonly #paths = new Map<string, string>();

  constructor(connections: number, options: H2ClientOptions) {
    this.#clients = Array.from({ length: connections }, () => new H2Client(options));
  }

  /** POSTs to `url`'s path; see {@linkcode H2Client.post}. */
  post(
    url: string,
    header: Record<string, string>,
    body: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<PostAnswer> {
    let chosen = this.#clients[0];
    for (const client of this.#clients) if (client.active < chosen.active) chosen = client;
    let path = this.#paths.get(url);
    if (path === undefined) {
      const parsed = new URL(url);
      path = parsed.pathname + parsed.search;
      if (this.#paths.size < 1_000) this.#paths.set(url, path);
    }
    return chosen.post(path, header, body, signal);
  }

  /** Closes every connection. */
  close(): void {
    for (const client of this.#clients) client.close();
  }
}

/**
 * `promise`, or the signal's reason if it aborts first: a connection attempt the kernel
 * retries for minutes must not hold a call past its deadline. (The attempt goes on, and
 * a later call may use it.)
 */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    if (signal.aborted) onAbort();
  });
}

/** The request's header block: pseudo-headers, then the caller's, then the length. */
function requestHeaderBlock(
  authority: string,
  path: string,
  header: Record<string, string>,
  length: number,
): Uint8Array {
  const fields: HeaderField[] = [
    [":method", "POST"],
    [":scheme", "http"],
    [":authority", authority],
    [":path", path],
  ];
  for (const name in header) {
    if (CONNECTION_HEADERS.has(name) || name === "content-length") continue;
    if (name === "te" && header[name] !== "trailers") continue;
    fields.push([name, header[name]]);
  }
  fields.push(["content-length", String(length)]);
  return encodeHeaderBlock(fields);
}

interface Stream {
  readonly id: number;
  sendWindow: number;
  /** The request body and how much of it is sent. */
  readonly body: Uint8Array;
  sent: number;
  /** Bytes received since the last WINDOW_UPDATE we sent for the stream. */
  received: number;
  recvWindow: number;
  status?: number;
  header?: Headers;
  /** The answer's header fields (":status" first), for their names. */
  fields?: HeaderField[];
  trailer?: Headers;
  readonly chunks: Uint8Array[];
  size: number;
  readonly resolve: (answer: PostAnswer) => void;
  readonly reject: (error: unknown) => void;
  readonly signal?: AbortSignal;
  readonly onAbort?: () => void;
}

/** One HTTP/2 connection and its streams. */
class Connection {
  readonly #socket: ByteStream;
  readonly #options: H2ClientOptions;
  readonly #streams = new Map<number, Stream>();
  readonly #decoder = new HpackDecoder();
  #nextId = 1;
  #failed?: unknown;
  #goingAway = false;
  // The peer's settings.
  #maxFrame = MAX_FRAME;
  #initialWindow = DEFAULT_WINDOW;
  #maxStreams = Infinity;
  #sendWindow = DEFAULT_WINDOW;
  // Our connection receive window.
  #recvWindow = CONNECTION_WINDOW;
  /** Calls waiting for a stream slot under the peer's MAX_CONCURRENT_STREAMS. */
  readonly #waiting: { go: () => void; fail: (error: unknown) => void }[] = [];
  /** A header block being put together from HEADERS and CONTINUATION frames. */
  #partial?: { id: number; endStream: boolean; parts: Uint8Array[]; size: number };
  #out: Uint8Array[] = [];
  #flushing = false;
  /** Whether the server's first frame (its SETTINGS) has come. */
  #settled = false;
  #closeTimer?: ReturnType<typeof setTimeout>;

  constructor(socket: ByteStream, options: H2ClientOptions) {
    this.#socket = socket;
    this.#options = options;
    const settings = new Uint8Array(12);
    const view = new DataView(settings.buffer);
    view.setUint16(0, 0x2); // ENABLE_PUSH
    view.setUint32(2, 0);
    view.setUint16(6, 0x4); // INITIAL_WINDOW_SIZE
    view.setUint32(8, STREAM_WINDOW);
    const increment = new Uint8Array(4);
    new DataView(increment.buffer).setUint32(0, CONNECTION_WINDOW - DEFAULT_WINDOW);
    this.#send(
      PREFACE,
      frame(FRAME_SETTINGS, 0, 0, settings),
      frame(FRAME_WINDOW_UPDATE, 0, 0, increment),
    );
    this.#readLoop();
  }

  /** Whether new calls may start here. */
  get usable(): boolean {
    return this.#failed === undefined && !this.#goingAway && this.#nextId <= MAX_WINDOW;
  }

  async request(
    block: Uint8Array,
    body: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<PostAnswer> {
    while (this.#streams.size >= this.#maxStreams && this.usable) {
      await this.#slot(signal);
    }
    // Not sent yet, so safe to send again elsewhere.
    if (!this.usable) throw new H2Error(`the connection is ${this.#state()}`, true);
    const id = this.#nextId;
    this.#nextId += 2;
    return new Promise<PostAnswer>((resolve, reject) => {
      const onAbort = signal
        ? () => {
          if (!this.#streams.has(id)) return;
          this.#reset(id, CANCEL);
          this.#close(stream, signal.reason);
        }
        : undefined;
      const stream: Stream = {
        id,
        sendWindow: this.#initialWindow,
        body,
        sent: 0,
        received: 0,
        recvWindow: STREAM_WINDOW,
        chunks: [],
        size: 0,
        resolve,
        reject,
        signal,
        onAbort,
      };
      this.#streams.set(id, stream);
      signal?.addEventListener("abort", onAbort!, { once: true });
      this.#sendHeaders(id, block, body.length === 0);
      if (body.length > 0) this.#pump(stream);
    });
  }

  /** Why the connection takes no new calls, for an error message. */
  #state(): string {
    if (this.#failed !== undefined) {
      const reason = this.#failed instanceof Error ? this.#failed.message : String(this.#failed);
      return `closed (${reason})`;
    }
    return this.#goingAway ? "going away" : "out of stream ids";
  }

  /** Waits until a stream closes (or the connection fails, or the call is aborted). */
  #slot(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((go, fail) => {
      const onAbort = () => {
        const at = this.#waiting.indexOf(waiter);
        if (at >= 0) this.#waiting.splice(at, 1);
        fail(signal!.reason);
      };
      const done = () => signal?.removeEventListener("abort", onAbort);
      const waiter = {
        go: () => (done(), go()),
        fail: (error: unknown) => (done(), fail(error)),
      };
      if (signal?.aborted) return fail(signal.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  /**
   * Fails every call and closes the socket; after sending `goaway`, if given (within a
   * second: a peer that reads nothing does not keep the socket open).
   */
  fail(error: unknown, goaway?: Uint8Array): void {
    if (this.#failed !== undefined) return;
    this.#failed = error;
    for (const stream of [...this.#streams.values()]) this.#close(stream, error);
    for (const waiter of this.#waiting.splice(0)) {
      waiter.fail(new H2Error(`the connection is ${this.#state()}`, true));
    }
    if (goaway) {
      this.#out = [goaway];
      if (!this.#flushing) this.#flush();
      this.#closeTimer = setTimeout(() => this.#closeSocket(), 1_000);
    } else {
      this.#closeSocket();
    }
  }

  #closeSocket(): void {
    clearTimeout(this.#closeTimer);
    try {
      this.#socket.close();
    } catch {
      // Already closed.
    }
  }

  /** Ends the connection for a protocol error of the peer's. */
  #connectionError(code: number, detail: string): void {
    const payload = new Uint8Array(8);
    const view = new DataView(payload.buffer);
    view.setUint32(0, 0);
    view.setUint32(4, code);
    this.fail(
      new H2Error(`HTTP/2 ${errorName(code)}: ${detail}`),
      frame(FRAME_GOAWAY, 0, 0, payload),
    );
  }

  #sendHeaders(id: number, block: Uint8Array, endStream: boolean): void {
    const end = endStream ? FLAG_END_STREAM : 0;
    if (block.length <= this.#maxFrame) {
      this.#send(frame(FRAME_HEADERS, FLAG_END_HEADERS | end, id, block));
      return;
    }
    const frames = [frame(FRAME_HEADERS, end, id, block.subarray(0, this.#maxFrame))];
    for (let at = this.#maxFrame; at < block.length; at += this.#maxFrame) {
      const last = at + this.#maxFrame >= block.length;
      frames.push(
        frame(
          FRAME_CONTINUATION,
          last ? FLAG_END_HEADERS : 0,
          id,
          block.subarray(at, at + this.#maxFrame),
        ),
      );
    }
    this.#send(...frames);
  }

  /** Sends as much of a stream's body as the windows allow. */
  #pump(stream: Stream): void {
    const frames: Uint8Array[] = [];
    while (stream.sent < stream.body.length) {
      const size = Math.min(
        this.#maxFrame,
        stream.sendWindow,
        this.#sendWindow,
        stream.body.length - stream.sent,
      );
      if (size <= 0) break;
      const end = stream.sent + size === stream.body.length ? FLAG_END_STREAM : 0;
      frames.push(
        frame(FRAME_DATA, end, stream.id, stream.body.subarray(stream.sent, stream.sent + size)),
      );
      stream.sent += size;
      stream.sendWindow -= size;
      this.#sendWindow -= size;
    }
    if (frames.length > 0) this.#send(...frames);
  }

  #pumpAll(): void {
    for (const stream of this.#streams.values()) {
      if (stream.sent < stream.body.length) this.#pump(stream);
    }
  }

  #reset(id: number, code: number): void {
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint32(0, code);
    this.#send(frame(FRAME_RST_STREAM, 0, id, payload));
  }

  /** Ends a call: with its answer if `error` is undefined. */
  #close(stream: Stream, error?: unknown): void {
    if (!this.#streams.delete(stream.id)) return;
    if (stream.onAbort) stream.signal!.removeEventListener("abort", stream.onAbort);
    if (error !== undefined) {
      stream.reject(error);
    } else {
      const fields = stream.fields!;
      stream.resolve({
        status: stream.status!,
        header: stream.header!,
        headerNames: () => fields.slice(1).map(([name]) => name),
        body: stream.chunks.length === 1
          ? stream.chunks[0]
          : concatBytes(stream.chunks, stream.size),
        trailer: stream.trailer ?? new Headers(),
      });
    }
    this.#waiting.shift()?.go();
    if (this.#goingAway && this.#streams.size === 0) this.fail(new H2Error("the server went away"));
  }

  #send(...chunks: Uint8Array[]): void {
    if (this.#failed !== undefined) return;
    this.#out.push(...chunks);
    if (!this.#flushing) this.#flush();
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      // Once failed, only a GOAWAY is left to send (see fail()), then the socket closes.
      while (this.#out.length > 0) {
        const chunks = this.#out;
        this.#out = [];
        const bytes = chunks.length === 1 ? chunks[0] : concatBytes(chunks);
        for (let at = 0; at < bytes.length;) at += await this.#socket.write(bytes.subarray(at));
      }
      if (this.#failed !== undefined) this.#closeSocket();
    } catch (error) {
      this.fail(error);
      this.#closeSocket();
    } finally {
      this.#flushing = false;
    }
  }

  async #readLoop(): Promise<void> {
    let buffer = new Uint8Array(64 * 1024);
    let start = 0;
    let end = 0;
    try {
      for (;;) {
        while (end - start >= 9 && this.#failed === undefined) {
          const length = (buffer[start] << 16) | (buffer[start + 1] << 8) | buffer[start + 2];
          if (!this.#settled) {
            // The server's first frame must be its SETTINGS.
            if (HTTP1.every((byte, i) => buffer[start + i] === byte)) {
              return this.fail(new H2Error("the server answered in HTTP/1: it does not speak h2c"));
            }
            if (buffer[start + 3] !== FRAME_SETTINGS) {
              return this.#connectionError(PROTOCOL_ERROR, "the first frame is not SETTINGS");
            }
            this.#settled = true;
          }
          if (length > MAX_FRAME) {
            return this.#connectionError(FRAME_SIZE_ERROR, `a frame of ${length} bytes`);
          }
          if (end - start < 9 + length) break;
          const type = buffer[start + 3];
          const flags = buffer[start + 4];
          const id = ((buffer[start + 5] & 0x7f) << 24 | buffer[start + 6] << 16 |
            buffer[start + 7] << 8 | buffer[start + 8]) >>> 0;
          this.#onFrame(type, flags, id, buffer.subarray(start + 9, start + 9 + length));
          start += 9 + length;
        }
        if (this.#failed !== undefined) return;
        if (start === end) {
          start = end = 0;
        } else if (buffer.length - start < 9 + MAX_FRAME) {
          buffer.copyWithin(0, start, end);
          end -= start;
          start = 0;
        }
        if (end === buffer.length) {
          const bigger = new Uint8Array(buffer.length * 2);
          bigger.set(buffer.subarray(0, end));
          buffer = bigger;
        }
        const read = await this.#socket.read(buffer.subarray(end));
        if (read === null) return this.fail(new H2Error("the server closed the connection"));
        end += read;
      }
    } catch (error) {
      this.fail(error);
    }
  }

  #onFrame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.#partial && type !== FRAME_CONTINUATION) {
      return this.#connectionError(PROTOCOL_ERROR, "a header block was interrupted");
    }
    // A stream we never opened is idle (push is off, so the server opens none): any
    // frame but PRIORITY on it is a connection error (RFC 9113 section 5.1).
    if (id !== 0 && type !== FRAME_PRIORITY && type <= FRAME_CONTINUATION && this.#isIdle(id)) {
      return this.#connectionError(PROTOCOL_ERROR, `a frame on idle stream ${id}`);
    }
    switch (type) {
      case FRAME_DATA:
        return this.#onData(flags, id, payload);
      case FRAME_HEADERS:
        return this.#onHeaders(flags, id, payload);
      case FRAME_PRIORITY:
        if (id === 0) return this.#connectionError(PROTOCOL_ERROR, "PRIORITY on stream 0");
        return;
      case FRAME_RST_STREAM:
        return this.#onReset(id, payload);
      case FRAME_SETTINGS:
        return this.#onSettings(flags, id, payload);
      case FRAME_PUSH_PROMISE:
        return this.#connectionError(PROTOCOL_ERROR, "PUSH_PROMISE, though push is off");
      case FRAME_PING:
        if (id !== 0 || payload.length !== 8) {
          return this.#connectionError(FRAME_SIZE_ERROR, "a malformed PING");
        }
        if (!(flags & FLAG_ACK)) this.#send(frame(FRAME_PING, FLAG_ACK, 0, payload.slice()));
        return;
      case FRAME_GOAWAY:
        return this.#onGoAway(id, payload);
      case FRAME_WINDOW_UPDATE:
        return this.#onWindowUpdate(id, payload);
      case FRAME_CONTINUATION:
        return this.#onContinuation(flags, id, payload);
      default:
        return; // Unknown frame types are ignored (RFC 9113 section 4.1).
    }
  }

  #onData(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) return this.#connectionError(PROTOCOL_ERROR, "DATA on stream 0");
    const length = payload.length;
    this.#recvWindow -= length;
    if (this.#recvWindow < 0) {
      return this.#connectionError(FLOW_CONTROL_ERROR, "DATA beyond the connection window");
    }
    if (CONNECTION_WINDOW - this.#recvWindow >= CONNECTION_WINDOW / 2) {
      this.#windowUpdate(0, CONNECTION_WINDOW - this.#recvWindow);
      this.#recvWindow = CONNECTION_WINDOW;
    }
    const data = unpad(flags, payload);
    if (data === undefined) return this.#connectionError(PROTOCOL_ERROR, "bad DATA padding");
    const stream = this.#streams.get(id);
    if (!stream) return; // A stream we reset, or closed: its data only counts above.
    stream.recvWindow -= length;
    if (stream.recvWindow < 0) {
      return this.#streamError(stream, FLOW_CONTROL_ERROR, "DATA beyond the stream window");
    }
    if (stream.status === undefined || stream.trailer) {
      return this.#streamError(stream, PROTOCOL_ERROR, "DATA outside the answer's body");
    }
    stream.size += data.length;
    if (stream.size > this.#options.maxResponseBytes) {
      this.#reset(id, CANCEL);
      return this.#close(
        stream,
        new ConnectError(
          `answer larger than ${this.#options.maxResponseBytes} bytes`,
          Code.ResourceExhausted,
        ),
      );
    }
    if (data.length > 0) stream.chunks.push(data.slice());
    if (flags & FLAG_END_STREAM) return this.#close(stream);
    stream.received += length;
    if (stream.received >= STREAM_WINDOW / 2) {
      this.#windowUpdate(id, stream.received);
      stream.recvWindow += stream.received;
      stream.received = 0;
    }
  }

  #onHeaders(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) return this.#connectionError(PROTOCOL_ERROR, "HEADERS on stream 0");
    let block = unpad(flags, payload);
    if (block === undefined) return this.#connectionError(PROTOCOL_ERROR, "bad HEADERS padding");
    if (flags & FLAG_PRIORITY) {
      if (block.length < 5) return this.#connectionError(FRAME_SIZE_ERROR, "short HEADERS");
      block = block.subarray(5);
    }
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    if (flags & FLAG_END_HEADERS) return this.#onHeaderBlock(id, endStream, block);
    this.#partial = { id, endStream, parts: [block.slice()], size: block.length };
  }

  #onContinuation(flags: number, id: number, payload: Uint8Array): void {
    const partial = this.#partial;
    if (!partial || partial.id !== id) {
      return this.#connectionError(PROTOCOL_ERROR, "an unexpected CONTINUATION");
    }
    partial.size += payload.length;
    if (partial.size > MAX_HEADER_BLOCK) {
      return this.#connectionError(ENHANCE_YOUR_CALM, "a header block over 256 KiB");
    }
    partial.parts.push(payload.slice());
    if (!(flags & FLAG_END_HEADERS)) return;
    this.#partial = undefined;
    this.#onHeaderBlock(id, partial.endStream, concatBytes(partial.parts, partial.size));
  }

  #onHeaderBlock(id: number, endStream: boolean, block: Uint8Array): void {
    let fields: HeaderField[];
    try {
      // Decoded even for a stream we no longer track: the table is the connection's.
      fields = this.#decoder.decode(block);
    } catch (error) {
      if (error instanceof HpackError) {
        return this.#connectionError(COMPRESSION_ERROR, error.message);
      }
      throw error;
    }
    const stream = this.#streams.get(id);
    if (!stream) return;
    if (stream.status !== undefined) {
      // Trailers: they end the stream and carry no pseudo-headers.
      if (!endStream) {
        return this.#streamError(stream, PROTOCOL_ERROR, "trailers without END_STREAM");
      }
      const trailer = toHeaders(fields, false);
      if (typeof trailer === "string") return this.#streamError(stream, PROTOCOL_ERROR, trailer);
      stream.trailer = trailer;
      return this.#close(stream);
    }
    const status = fields[0]?.[0] === ":status" ? Number(fields[0][1]) : NaN;
    if (!(Number.isInteger(status) && status >= 100 && status <= 999)) {
      return this.#streamError(stream, PROTOCOL_ERROR, "an answer without a valid :status");
    }
    if (status < 200) {
      if (endStream) return this.#streamError(stream, PROTOCOL_ERROR, "an interim answer ended");
      return; // Informational (100, 103): the real answer follows.
    }
    const header = toHeaders(fields.slice(1), false);
    if (typeof header === "string") return this.#streamError(stream, PROTOCOL_ERROR, header);
    stream.status = status;
    stream.header = header;
    stream.fields = fields;
    if (endStream) this.#close(stream);
  }

  #isIdle(id: number): boolean {
    return id % 2 === 0 || id >= this.#nextId;
  }

  #onReset(id: number, payload: Uint8Array): void {
    if (id === 0 || payload.length !== 4) {
      return this.#connectionError(PROTOCOL_ERROR, "a malformed RST_STREAM");
    }
    const stream = this.#streams.get(id);
    if (!stream) return;
    const code = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
    this.#close(
      stream,
      new H2Error(`the server reset the stream: ${errorName(code)}`, code === REFUSED_STREAM),
    );
  }

  #onSettings(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) return this.#connectionError(PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & FLAG_ACK) {
      if (payload.length > 0) return this.#connectionError(FRAME_SIZE_ERROR, "a SETTINGS ACK");
      return;
    }
    if (payload.length % 6 !== 0) return this.#connectionError(FRAME_SIZE_ERROR, "SETTINGS");
    const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
    for (let at = 0; at < payload.length; at += 6) {
      const key = view.getUint16(at);
      const value = view.getUint32(at + 2);
      if (key === 0x3) {
        this.#maxStreams = value;
      } else if (key === 0x4) {
        if (value > MAX_WINDOW) {
          return this.#connectionError(FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE too large");
        }
        const delta = value - this.#initialWindow;
        this.#initialWindow = value;
        for (const stream of this.#streams.values()) stream.sendWindow += delta;
      } else if (key === 0x5) {
        if (value < 16_384 || value > 16_777_215) {
          return this.#connectionError(PROTOCOL_ERROR, `MAX_FRAME_SIZE ${value}`);
        }
        this.#maxFrame = value;
      }
      // HEADER_TABLE_SIZE: we never index, so any size suits. Others: nothing to do.
    }
    this.#send(frame(FRAME_SETTINGS, FLAG_ACK, 0, new Uint8Array(0)));
    this.#pumpAll();
    while (this.#streams.size < this.#maxStreams && this.#waiting.length > 0) {
      this.#waiting.shift()!.go();
    }
  }

  #onGoAway(id: number, payload: Uint8Array): void {
    if (id !== 0 || payload.length < 8) {
      return this.#connectionError(PROTOCOL_ERROR, "a malformed GOAWAY");
    }
    const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
    const last = view.getUint32(0) & MAX_WINDOW;
    const code = view.getUint32(4);
    this.#goingAway = true;
    for (const stream of [...this.#streams.values()]) {
      if (stream.id > last) {
        this.#close(stream, new H2Error(`the server went away: ${errorName(code)}`, true));
      }
    }
    for (const waiter of this.#waiting.splice(0)) {
      waiter.fail(new H2Error("the server went away", true));
    }
    if (this.#streams.size === 0) this.fail(new H2Error("the server went away", true));
  }

  #onWindowUpdate(id: number, payload: Uint8Array): void {
    if (payload.length !== 4) return this.#connectionError(FRAME_SIZE_ERROR, "WINDOW_UPDATE");
    const increment = new DataView(payload.buffer, payload.byteOffset).getUint32(0) & MAX_WINDOW;
    if (id === 0) {
      if (increment === 0) return this.#connectionError(PROTOCOL_ERROR, "a zero WINDOW_UPDATE");
      this.#sendWindow += increment;
      if (this.#sendWindow > MAX_WINDOW) {
        return this.#connectionError(FLOW_CONTROL_ERROR, "the window passed 2^31-1");
      }
      return this.#pumpAll();
    }
    const stream = this.#streams.get(id);
    if (!stream) return;
    if (increment === 0) return this.#streamError(stream, PROTOCOL_ERROR, "a zero WINDOW_UPDATE");
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) {
      return this.#streamError(stream, FLOW_CONTROL_ERROR, "the window passed 2^31-1");
    }
    this.#pump(stream);
  }

  #streamError(stream: Stream, code: number, detail: string): void {
    this.#reset(stream.id, code);
    this.#close(stream, new H2Error(`HTTP/2 ${errorName(code)}: ${detail}`));
  }

  #windowUpdate(id: number, increment: number): void {
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint32(0, increment);
    this.#send(frame(FRAME_WINDOW_UPDATE, 0, id, payload));
  }
}

/** A frame: the 9-byte header and its payload, in one array. */
function frame(type: number, flags: number, id: number, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(9 + payload.length);
  const length = payload.length;
  bytes[0] = length >>> 16;
  bytes[1] = (length >>> 8) & 0xff;
  bytes[2] = length & 0xff;
  bytes[3] = type;
  bytes[4] = flags;
  bytes[5] = (id >>> 24) & 0x7f;
  bytes[6] = (id >>> 16) & 0xff;
  bytes[7] = (id >>> 8) & 0xff;
  bytes[8] = id & 0xff;
  bytes.set(payload, 9);
  return bytes;
}

/** A frame's payload without its padding; undefined if the padding is malformed. */
function unpad(flags: number, payload: Uint8Array): Uint8Array | undefined {
  if (!(flags & FLAG_PADDED)) return payload;
  if (payload.length < 1) return undefined;
  const pad = payload[0];
  if (pad >= payload.length) return undefined;
  return payload.subarray(1, payload.length - pad);
}

/** Header fields as Headers; a string says why they are malformed. */
function toHeaders(fields: HeaderField[], pseudoAllowed: boolean): Headers | string {
  const headers = new Headers();
  for (const [name, value] of fields) {
    if (name.startsWith(":") && !pseudoAllowed) return `an unexpected ${name}`;
    if (name !== name.toLowerCase()) return `an upper-case header name ${name}`;
    try {
      headers.append(name, value);
    } catch {
      return `a malformed header ${name}`;
    }
  }
  return headers;
}
