/**
 * The HTTP/2 engine's server role behind a connect-es universal handler: each stream
 * becomes a `UniversalServerRequest` (with the lean path's `readWholeBody` and
 * `peekHeader`), and the handler's answer goes back as headers, body and HTTP
 * trailers, which gRPC needs and `Deno.serve` cannot send. A small whole answer goes
 * out in one socket write; a streamed one with backpressure.
 *
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type {
  UniversalHandlerFn,
  UniversalServerRequest,
  UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import type { ByteStream } from "../runtime/types.ts";
import {
  bodyOverLimit,
  peekHeader,
  plainHeadersOf,
  readWholeBody,
  wholeBodyOf,
} from "../runtime/lean_contract.ts";
import { BodyTooLarge, Http2Error } from "./errors.ts";
import type { HeaderBlock } from "./header_block.ts";
import {
  CANCEL,
  CONNECTION_SPECIFIC_HEADERS,
  ENHANCE_YOUR_CALM,
  errorName,
  HTTP_1_1_REQUIRED,
  INADEQUATE_SECURITY,
  INTERNAL_ERROR,
  REFUSED_STREAM,
} from "./frames.ts";
import { encodeFlatHeaderBlock } from "./hpack_encoder.ts";
import { H2ConnectionServer, type ServerLimits } from "./server.ts";
import type { H2Stream } from "./stream.ts";

/**
 * What {@linkcode createH2Server} needs. Besides the contract's fields, every limit of
 * {@linkcode ServerLimits} may be given (tests use small ones).
 *
 * @example
 * ```ts
 * import type { H2ServerOptions } from "./server_universal.ts";
 * const options: H2ServerOptions = {
 *   handler: () => Promise.resolve({ status: 204 }),
 *   onError: (error) => console.error(error),
 *   headerTimeoutMs: 30_000,
 * };
 * ```
 */
export interface H2ServerOptions extends ServerLimits {
  /** Answers every request. */
  handler: UniversalHandlerFn;
  /** A handler threw: the client got 500 (or RST_STREAM INTERNAL_ERROR mid-answer). */
  onError: (error: unknown) => void;
  /**
   * From accept: the preface and the first request's whole header block; and every
   * later header block from its first frame to END_HEADERS.
   */
  headerTimeoutMs: number;
  /** No open stream for this long: GOAWAY NO_ERROR, close. Default 300 000. */
  idleTimeoutMs?: number;
  /** Advertised in SETTINGS; streams beyond it are refused. Default 1000. */
  maxConcurrentStreams?: number;
  /** Advertised; decoded size as RFC 9113 6.5.2 counts it. Default 65 536. */
  maxHeaderListSize?: number;
  /** Data waiting on a send window that stays 0 this long: ENHANCE_YOUR_CALM. 30 000. */
  stallTimeoutMs?: number;
}

/**
 * An HTTP/2 server over accepted byte streams.
 *
 * @example
 * ```ts
 * import { createH2Server } from "./server_universal.ts";
 * const server = createH2Server({
 *   handler: () => Promise.resolve({ status: 204 }),
 *   onError: () => {},
 *   headerTimeoutMs: 1_000,
 * });
 * console.assert(server.connections === 0);
 * await server.shutdown();
 * ```
 */
export interface H2Server {
  /** Serves one accepted connection. `prefix`: bytes the caller already read from it. Resolves once the connection is closed and its handlers have finished; never rejects or throws. */
  serve(socket: ByteStream, prefix: Uint8Array): Promise<void>;
  /** Graceful: GOAWAY(NO_ERROR, last stream id) on every connection, new streams refused, in-flight ones finish, each connection closes once idle. Resolves when all are closed. */
  shutdown(): Promise<void>;
  /** Closes every connection now; handlers see their signal abort. */
  close(): void;
  /** Connections open now. */
  readonly connections: number;
}

/**
 * An HTTP/2 server (h2c, prior knowledge) answering with a connect-es universal handler.
 *
 * @example
 * ```ts
 * import { createH2Server } from "./server_universal.ts";
 * const server = createH2Server({
 *   handler: () => Promise.resolve({ status: 200, body: (async function* () {})() }),
 *   onError: () => {},
 *   headerTimeoutMs: 1_000,
 * });
 * server.close();
 * ```
 */
export function createH2Server(options: H2ServerOptions): H2Server {
  const { handler, onError, ...limits } = options;
  const server = new H2ConnectionServer({
    ...limits,
    onStream: (stream) => answer(stream, handler, onError),
  });
  return {
    serve: (socket, prefix) => server.serve(socket, prefix),
    shutdown: () => server.shutdown(),
    close: () => server.close(),
    get connections() {
      return server.connections;
    },
  };
}

/** One stream's call: the request to the handler, its answer back. */
async function answer(
  stream: H2Stream,
  handler: UniversalHandlerFn,
  onError: (error: unknown) => void,
): Promise<void> {
  const head = stream.headValue!;
  let request: StreamRequest;
  try {
    request = new StreamRequest(stream, head);
  } catch (error) {
    onError(error);
    respondPlain(stream, 400, "bad request\n");
    return;
  }
  try {
    const response = await handler(request as unknown as UniversalServerRequest);
    if (stream.isClosed) {
      // Nobody will read the answer: let its body's producer finish.
      await response.body?.[Symbol.asyncIterator]().return?.()?.catch(() => {});
      return;
    }
    const whole = wholeBodyOf(response.body);
    if (whole !== undefined || response.body === undefined) {
      writeWhole(stream, response, whole, head.method === "HEAD");
    } else {
      await writeStreamed(stream, response, head.method === "HEAD");
    }
  } catch (error) {
    // A stream the client reset, or a connection that went away, ends its call: the
    // client's doing (a deadline, a cancel), not a failure of the server to log.
    if (stream.isClosed) return;
    onError(error);
    if (!stream.headersSent) respondPlain(stream, 500, "internal error\n");
    else stream.reset(INTERNAL_ERROR);
  }
}

const TEXT_PLAIN = ["content-type", "text/plain"];

function respondPlain(stream: H2Stream, status: number, text: string): void {
  if (stream.isClosed || stream.headersSent) return;
  const body = new TextEncoder().encode(text);
  stream.sendHeaders(
    [":status", String(status), ...TEXT_PLAIN, "content-length", String(body.length)],
    false,
  );
  stream.write(body);
  stream.end();
}

/** Fields a handler may set that HTTP/2 forbids. */
const FORBIDDEN = new Set(CONNECTION_SPECIFIC_HEADERS);

/** Encoded `:status 200` plus a shared header record, made once per record. */
const sharedHeads = new WeakMap<object, Uint8Array>();
/** Encoded shared trailer records. */
const sharedTrailers = new WeakMap<object, Uint8Array>();

function pushFields(flat: string[], header: Headers | undefined, skipLength: boolean): void {
  const plain = plainHeadersOf(header);
  if (plain) {
    for (const name in plain) {
      if (skipLength && name === "content-length") continue;
      flat.push(name, name === "grpc-message" ? grpcMessage(plain[name]) : plain[name]);
    }
    return;
  }
  header?.forEach((value, name) => {
    if (FORBIDDEN.has(name) || (skipLength && name === "content-length")) return;
    flat.push(name, name === "grpc-message" ? grpcMessage(value) : value);
  });
}

const utf8 = new TextEncoder();

/**
 * `grpc-message` as the gRPC spec encodes it: only bytes outside printable ASCII, and
 * `%`, percent-encoded. connect-es encodes with encodeURIComponent, which also escapes
 * `,`, `:`, `/` and more; grpc-js decodes with decodeURI, which leaves some of those
 * escaped, so its users read "a%3A b". Every decoder takes the spec's form.
 */
function grpcMessage(value: string): string {
  let text = value;
  try {
    text = decodeURIComponent(value);
  } catch {
    // Not percent-encoded by connect-es: taken as it is.
  }
  if (/^[\x20-\x24\x26-\x7e]*$/.test(text)) return text;
  let out = "";
  for (const byte of utf8.encode(text)) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25
      ? String.fromCharCode(byte)
      : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The answer's head as a header block; `length` adds content-length. */
function headBlock(response: UniversalServerResponse, length: number | undefined): Uint8Array {
  const plain = plainHeadersOf(response.header);
  if (plain && response.status === 200 && !("content-length" in plain)) {
    let base = sharedHeads.get(plain);
    if (!base) {
      const flat = [":status", "200"];
      pushFields(flat, response.header, false);
      sharedHeads.set(plain, base = encodeFlatHeaderBlock(flat));
    }
    if (length === undefined) return base;
    // HPACK literals without indexing keep no state: blocks concatenate.
    const tail = encodeFlatHeaderBlock(["content-length", String(length)]);
    const block = new Uint8Array(base.length + tail.length);
    block.set(base);
    block.set(tail, base.length);
    return block;
  }
  const flat = [":status", String(response.status)];
  pushFields(flat, response.header, length !== undefined);
  if (length !== undefined) flat.push("content-length", String(length));
  return encodeFlatHeaderBlock(flat);
}

function trailerBlock(trailer: Headers): Uint8Array {
  const plain = plainHeadersOf(trailer);
  if (plain) {
    let block = sharedTrailers.get(plain);
    if (!block) {
      const flat: string[] = [];
      pushFields(flat, trailer, false);
      sharedTrailers.set(plain, block = encodeFlatHeaderBlock(flat));
    }
    return block;
  }
  const flat: string[] = [];
  pushFields(flat, trailer, false);
  return encodeFlatHeaderBlock(flat);
}

/** An answer whose body is at hand: head, body and trailers framed at once. */
function writeWhole(
  stream: H2Stream,
  response: UniversalServerResponse,
  whole: Uint8Array | undefined,
  isHead: boolean,
): void {
  const length = whole?.length ?? 0;
  const trailer = response.trailer;
  const head = headBlock(response, trailer === undefined ? length : undefined);
  if (isHead || (length === 0 && trailer === undefined)) {
    stream.sendHeaders(head, true);
    return;
  }
  stream.sendHeaders(head, false);
  if (length > 0) stream.write(whole!);
  stream.end(trailer === undefined ? undefined : trailerBlock(trailer));
}

/**
 * A streamed answer: the head once the first chunk is ready (so a handler can still
 * add headers until then), the body with backpressure, then the trailers. A stream
 * that goes away stops the body's iterator.
 */
async function writeStreamed(
  stream: H2Stream,
  response: UniversalServerResponse,
  isHead: boolean,
): Promise<void> {
  const it = response.body![Symbol.asyncIterator]();
  try {
    let chunk = await it.next();
    if (stream.isClosed) return;
    if (isHead) {
      stream.sendHeaders(headBlock(response, undefined), true);
      return;
    }
    stream.sendHeaders(headBlock(response, undefined), false);
    for (; !chunk.done; chunk = await it.next()) {
      if (stream.isClosed) return;
      if (!stream.write(chunk.value)) await stream.whenWritable();
    }
    if (stream.isClosed) return;
    const trailer = response.trailer;
    stream.end(trailer === undefined ? undefined : trailerBlock(trailer));
  } finally {
    // Ends the handler's side too when the client went away mid-stream.
    await it.return?.().catch(() => {});
  }
}

/**
 * A universal request over an HTTP/2 stream. A class, not an object literal with
 * getters: one allocation per call; headers, body iterator and signal are made only
 * when asked for.
 */
class StreamRequest {
  readonly httpVersion = "2.0";
  readonly method: string;
  readonly url: string;
  readonly #stream: H2Stream;
  readonly #head: HeaderBlock;
  #header?: Headers;
  #controller?: AbortController;

  constructor(stream: H2Stream, head: HeaderBlock) {
    this.#stream = stream;
    this.#head = head;
    this.method = head.method!;
    const authority = head.authority ?? head.get("host");
    if (authority === null || authority === "") {
      throw new ConnectError(
        "the request names no authority (no :authority or Host)",
        Code.Internal,
      );
    }
    const path = head.path ?? "/";
    this.url = path.charCodeAt(0) === 0x2f /* "/" */
      ? `http://${authority}${path}`
      : new URL(path, `http://${authority}`).href;
  }

  get header(): Headers {
    return (this.#header ??= this.#head.toHeaders());
  }

  get body(): AsyncIterable<Uint8Array> {
    return this.#stream;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      const call = new AbortController();
      this.#controller = call;
      const source = this.#stream.signal;
      const onAbort = () => call.abort(callError(source.reason));
      if (source.aborted) onAbort();
      else source.addEventListener("abort", onAbort, { once: true });
    }
    return this.#controller.signal;
  }

  [readWholeBody](limit: number): Promise<Uint8Array> {
    const stream = this.#stream;
    const whole = stream.bufferedBody();
    if (whole !== undefined) {
      if (whole.length > limit) return Promise.reject(bodyOverLimit(limit, whole));
      return Promise.resolve(whole);
    }
    return stream.readAll(limit).catch((error) => {
      if (error instanceof BodyTooLarge) throw bodyOverLimit(limit, error.readSoFar);
      throw callError(error);
    });
  }

  [peekHeader](name: string): string | null {
    return this.#head.get(name);
  }
}

/** An HTTP/2 failure as the ConnectError a handler sees (gRPC's mapping of reset codes). */
function callError(reason: unknown): unknown {
  if (!(reason instanceof Http2Error)) return reason;
  const code = reason.code;
  const connectCode = code === REFUSED_STREAM
    ? Code.Unavailable
    : code === CANCEL
    ? Code.Canceled
    : code === ENHANCE_YOUR_CALM
    ? Code.ResourceExhausted
    : code === INADEQUATE_SECURITY || code === HTTP_1_1_REQUIRED
    ? Code.PermissionDenied
    : reason.connection && code === 0
    ? Code.Aborted
    : code === 0
    ? Code.Canceled
    : Code.Internal;
  return new ConnectError(
    `http/2 stream closed: ${errorName(code)} (${reason.message})`,
    connectCode,
    undefined,
    undefined,
    reason,
  );
}
