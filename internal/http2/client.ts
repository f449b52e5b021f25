/**
 * The HTTP/2 engine's client role (h2c with prior knowledge): the hosts' one way to
 * call a plugin. A {@linkcode H2Client} keeps one client-role {@linkcode Connection} at a
 * time, opened when first needed and again after it closes; an {@linkcode H2Pool}
 * spreads calls over a few of them.
 *
 * - `post()`: a whole-body request and its whole answer (status, headers, body,
 *   trailers), the lean unary path. With the windows open, the request goes out in one
 *   socket write (HEADERS and one DATA frame carrying END_STREAM).
 * - `request()`: a stream, for streamed requests and answers: the caller writes the body
 *   with backpressure (`write`/`whenWritable`/`end`) and reads the answer's head, body
 *   (our windows refill as it is read) and trailers from the returned stream.
 *
 * A request the server never took (REFUSED_STREAM, above a GOAWAY's last stream id, or
 * still waiting for a stream slot when its connection closed) is sent again once, on
 * the client's current connection if that still takes new streams (it does after
 * REFUSED_STREAM), else on a new one; any other failure is the caller's.
 *
 * Nothing waits forever on a peer that stopped (SIGSTOP) or wedged: while streams are
 * open or a call waits for a slot, a PING goes out once nothing at all has come from the
 * server for `keepaliveIntervalMs`, and an ACK later than `keepaliveTimeoutMs` fails the
 * connection. A server that ends a connection with GOAWAY ENHANCE_YOUR_CALM
 * "too_many_pings" (grpc-go's keepalive enforcement) doubles the interval for the
 * client's later connections, up to 5 minutes (gRPC clients do the same). A call that
 * waits longer than `waitTimeoutMs` for a stream slot (MAX_CONCURRENT_STREAMS) or for
 * send window fails UNAVAILABLE. None of these bounds a live call's length. A
 * connection without streams for `idleTimeoutMs` is closed.
 *
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { ByteStream } from "../runtime/types.ts";
import type { PostAnswer } from "../runtime/types.ts";
import { Session, streamFailure } from "./client_session.ts";
import { BodyTooLarge, Http2Error } from "./errors.ts";
import { CANCEL, CONNECTION_SPECIFIC_HEADERS, NO_ERROR } from "./frames.ts";
import type { HeaderBlock } from "./header_block.ts";
import { encodeFlatHeaderBlock } from "./hpack_encoder.ts";
import type { H2Stream } from "./stream.ts";

/**
 * The largest answer body a host takes: gRPC's default 4 MiB message limit, its
 * 5-byte envelope, and room for a Connect error's JSON.
 *
 * @example
 * ```ts
 * import { ANSWER_MAX_BYTES } from "./client.ts";
 * console.assert(ANSWER_MAX_BYTES > 4 * 1024 * 1024 + 5);
 * ```
 */
export const ANSWER_MAX_BYTES: number = 4 * 1024 * 1024 + 64 * 1024;

/**
 * Options for {@linkcode H2Client} and {@linkcode H2Pool}. Times are in ms.
 *
 * @example
 * ```ts
 * import type { H2ClientOptions } from "./client.ts";
 * const options: H2ClientOptions = {
 *   authority: "127.0.0.1:8123",
 *   maxResponseBytes: 1024 * 1024,
 *   connect: () => Promise.reject(new Error("nothing to connect to here")),
 *   keepaliveIntervalMs: 5_000,
 * };
 * console.assert(options.authority === "127.0.0.1:8123");
 * ```
 */
export interface H2ClientOptions {
  /** Opens a new connection. */
  connect: () => Promise<ByteStream>;
  /** The `:authority` of every request. */
  authority: string;
  /** The largest answer body `post()` takes; a larger one fails RESOURCE_EXHAUSTED. */
  maxResponseBytes: number;
  /**
   * While streams are open (or a call waits for a slot), a PING once the server has sent
   * nothing for this long. Doubled (up to 300 000) after a GOAWAY "too_many_pings". 10 000.
   */
  keepaliveIntervalMs?: number;
  /** A PING's ACK later than this fails the connection. 20 000. */
  keepaliveTimeoutMs?: number;
  /** A call waiting this long for a stream slot or for send window fails UNAVAILABLE. 30 000. */
  waitTimeoutMs?: number;
  /** A connection without streams this long is closed (GOAWAY NO_ERROR). 300 000. */
  idleTimeoutMs?: number;
  /** Our receive window per stream: what a slow reader lets the server send ahead. 2 MiB. */
  streamWindowSize?: number;
  /** Our receive window for the whole connection. 8 MiB. */
  connectionWindowSize?: number;
}

/**
 * The client's time bounds alone, for callers that pass them through (tests use small
 * ones).
 *
 * @example
 * ```ts
 * import type { H2ClientTimeouts } from "./client.ts";
 * const quick: H2ClientTimeouts = { keepaliveIntervalMs: 100, keepaliveTimeoutMs: 200 };
 * ```
 */
export type H2ClientTimeouts = Pick<
  H2ClientOptions,
  "keepaliveIntervalMs" | "keepaliveTimeoutMs" | "waitTimeoutMs" | "idleTimeoutMs"
>;

/** The longest keepalive interval "too_many_pings" backs off to (grpc-go's default MinTime). */
const MAX_KEEPALIVE_MS = 300_000;
/**
 * Dropped from requests: what HTTP/2 forbids, `host` (`:authority` says it) and
 * `content-length` (the client sets it from the body).
 */
const FORBIDDEN = new Set([...CONNECTION_SPECIFIC_HEADERS, "host", "content-length"]);

/**
 * What {@linkcode H2Client.request} opens: a stream's method, path, headers and whether
 * its request has no body.
 *
 * @example
 * ```ts
 * import type { StreamInit } from "./client.ts";
 * const init: StreamInit = {
 *   method: "POST",
 *   path: "/echo.v1.EchoService/Count",
 *   header: new Headers({ "content-type": "application/connect+proto" }),
 *   endStream: false,
 * };
 * ```
 */
export interface StreamInit {
  /** `:method`. */
  method: string;
  /** `:path`, with any query. */
  path: string;
  /** The request's headers (names lower case in a record). */
  header: Headers | Record<string, string>;
  /** No body follows the head. */
  endStream: boolean;
  /** Ends the wait for a connection or a slot (the stream itself is the caller's). */
  signal?: AbortSignal;
}

/**
 * HTTP/2 requests over one connection at a time, opened when first needed and again
 * after it closes.
 *
 * @example
 * ```ts
 * import { H2Client } from "./client.ts";
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
  /** The keepalive interval of the next connection (grows on "too_many_pings"). */
  #keepaliveMs: number;
  #session?: Session;
  #connecting?: Promise<Session>;
  #active = 0;
  #closed = false;
  /** Each path's encoded `POST` pseudo-headers (HPACK blocks without state concatenate). */
  readonly #heads = new Map<string, Uint8Array>();

  /** A client of `options.authority`; it connects when first needed. */
  constructor(options: H2ClientOptions) {
    this.#options = options;
    this.#keepaliveMs = options.keepaliveIntervalMs ?? 10_000;
  }

  /** The keepalive interval the next connection uses. */
  get keepaliveIntervalMs(): number {
    return this.#keepaliveMs;
  }

  /** Calls in flight (posts, and streams until they close). */
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
    const block = this.#postBlock(path, header, body.length);
    this.#active++;
    try {
      for (let attempt = 0;; attempt++) {
        try {
          return await this.#postOnce(block, body, signal);
        } catch (error) {
          if (attempt > 0 || !(error instanceof Http2Error && error.unprocessed)) throw error;
          if (signal?.aborted) throw signal.reason;
        }
      }
    } finally {
      this.#active--;
    }
  }

  /**
   * Opens a stream and sends its head: the body (unless `endStream`) is the caller's to
   * write (`write`, `whenWritable`, `end`); the answer comes through the stream's
   * `head()`, body and `trailers`. Waits for a connection and a stream slot first; a
   * wait on the send window longer than the bound resets the stream (see
   * {@linkcode streamFailure}).
   */
  async request(init: StreamInit): Promise<H2Stream> {
    const flat = [
      ":method",
      init.method,
      ":scheme",
      "http",
      ":authority",
      this.#options.authority,
      ":path",
      init.path,
    ];
    const header = init.header;
    if (header instanceof Headers) {
      header.forEach((value, name) => pushField(flat, name, value));
    } else {
      for (const name in header) pushField(flat, name, header[name]);
    }
    const block = encodeFlatHeaderBlock(flat);
    this.#active++;
    let stream: H2Stream;
    try {
      const [session, opened] = await this.#open(block, init.endStream, init.signal);
      stream = opened;
      if (!init.endStream) session.watch(stream);
    } catch (error) {
      this.#active--;
      throw error;
    }
    if (stream.isClosed) this.#active--;
    else stream.onClose = () => void this.#active--;
    return stream;
  }

  /** Drops the connection at once; later calls fail. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#session?.close(closedClient());
    this.#session = undefined;
  }

  async #postOnce(
    block: Uint8Array,
    body: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<PostAnswer> {
    const session = this.#session;
    const [current, stream] = session !== undefined && session.conn.canOpenStream
      ? [session, session.open(block, body.length === 0)]
      : await this.#open(block, body.length === 0, signal);
    if (body.length > 0) {
      stream.writeLast(body);
      if (!stream.sendEnded) current.watch(stream);
    }
    let onAbort: (() => void) | undefined;
    if (signal !== undefined) {
      onAbort = () => stream.reset(CANCEL);
      signal.addEventListener("abort", onAbort, { once: true });
      if (signal.aborted) onAbort();
    }
    try {
      const data = await stream.readAll(this.#options.maxResponseBytes);
      return new Answer(stream.headValue!, data, stream.trailers);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (error instanceof BodyTooLarge) {
        stream.reset(CANCEL);
        throw new ConnectError(
          `answer larger than ${this.#options.maxResponseBytes} bytes`,
          Code.ResourceExhausted,
        );
      }
      throw streamFailure(stream, error);
    } finally {
      if (onAbort !== undefined) signal!.removeEventListener("abort", onAbort);
    }
  }

  /**
   * A stream opened on a usable connection, after waiting for a connection and a slot.
   * A connection that begins to close meanwhile fails the attempt as unprocessed.
   */
  async #open(
    block: Uint8Array,
    endStream: boolean,
    signal: AbortSignal | undefined,
  ): Promise<[Session, H2Stream]> {
    if (this.#closed) throw closedClient();
    signal?.throwIfAborted();
    const session = this.#session?.usable
      ? this.#session
      : await untilAborted(this.#connecting ??= this.#connect(), signal);
    for (;;) {
      if (this.#closed) throw closedClient();
      const conn = session.conn;
      if (conn.canOpenStream) return [session, session.open(block, endStream)];
      if (conn.isClosing) {
        // Never sent: safe to send again elsewhere.
        const failure = conn.failure;
        throw new Http2Error(
          `the connection closed before the request was sent${
            failure ? ` (${failure.message})` : ""
          }`,
          failure?.code ?? NO_ERROR,
          { unprocessed: true, connection: true, cause: failure },
        );
      }
      await session.slot(signal);
    }
  }

  /** A new connection, shared by every call that needs one meanwhile. */
  async #connect(): Promise<Session> {
    try {
      const socket = await this.#options.connect();
      const session = new Session(socket, this.#options, this.#keepaliveMs, () => {
        const cap = Math.max(this.#options.keepaliveIntervalMs ?? 0, MAX_KEEPALIVE_MS);
        this.#keepaliveMs = Math.min(this.#keepaliveMs * 2, cap);
      });
      if (this.#closed) {
        session.close(closedClient());
        throw closedClient();
      }
      this.#session = session;
      return session;
    } finally {
      this.#connecting = undefined;
    }
  }

  #postBlock(path: string, header: Record<string, string>, length: number): Uint8Array {
    let head = this.#heads.get(path);
    if (head === undefined) {
      head = encodeFlatHeaderBlock([
        ":method",
        "POST",
        ":scheme",
        "http",
        ":authority",
        this.#options.authority,
        ":path",
        path,
      ]);
      if (this.#heads.size < 1_000) this.#heads.set(path, head);
    }
    const flat: string[] = [];
    for (const name in header) pushField(flat, name, header[name]);
    flat.push("content-length", String(length));
    const rest = encodeFlatHeaderBlock(flat);
    const block = new Uint8Array(head.length + rest.length);
    block.set(head);
    block.set(rest, head.length);
    return block;
  }
}

/** Adds a request field unless HTTP/2 forbids it. */
function pushField(flat: string[], name: string, value: string): void {
  if (FORBIDDEN.has(name) || (name === "te" && value !== "trailers")) return;
  flat.push(name, value);
}

function closedClient(): Http2Error {
  return new Http2Error("the client is closed", NO_ERROR, { connection: true });
}

/** A whole answer; its headers and trailers are made into `Headers` when first asked for. */
class Answer implements PostAnswer {
  readonly status: number;
  readonly body: Uint8Array;
  readonly #head: HeaderBlock;
  readonly #trailers?: HeaderBlock;
  #header?: Headers;
  #trailer?: Headers;

  constructor(head: HeaderBlock, body: Uint8Array, trailers: HeaderBlock | undefined) {
    this.status = head.status!;
    this.body = body;
    this.#head = head;
    this.#trailers = trailers;
  }

  get header(): Headers {
    return (this.#header ??= this.#head.toHeaders());
  }

  get trailer(): Headers {
    return (this.#trailer ??= this.#trailers?.toHeaders() ?? new Headers());
  }

  headerNames(): string[] {
    const raw = this.#head.raw;
    const names: string[] = [];
    for (let i = this.#head.start; i < raw.length; i += 2) names.push(raw[i]);
    return names;
  }
}

/**
 * A few {@linkcode H2Client}s to one server, each call going to the least busy: one
 * call at a time stays on the first connection, many in flight spread over all.
 *
 * @example
 * ```ts
 * import { H2Pool } from "./client.ts";
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

  /** `connections` clients with the same options. */
  constructor(connections: number, options: H2ClientOptions) {
    this.#clients = Array.from({ length: connections }, () => new H2Client(options));
  }

  /** The least busy client. */
  pick(): H2Client {
    let chosen = this.#clients[0];
    for (const client of this.#clients) if (client.active < chosen.active) chosen = client;
    return chosen;
  }

  /** `url`'s path and query. */
  pathOf(url: string): string {
    let path = this.#paths.get(url);
    if (path === undefined) {
      const parsed = new URL(url);
      path = parsed.pathname + parsed.search;
      if (this.#paths.size < 1_000) this.#paths.set(url, path);
    }
    return path;
  }

  /** POSTs to `url`'s path; see {@linkcode H2Client.post}. */
  post(
    url: string,
    header: Record<string, string>,
    body: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<PostAnswer> {
    return this.pick().post(this.pathOf(url), header, body, signal);
  }

  /** Opens a stream on the least busy client; see {@linkcode H2Client.request}. */
  request(init: StreamInit): Promise<H2Stream> {
    return this.pick().request(init);
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
