/**
 * The universal request over node:http's and node:http2's requests, which both Node
 * servers hand the guest's handler: headers read without filling a Headers, the whole
 * body read at once for the lean path, and the call's signal made only when asked for;
 * and bytes in the form Node writes fastest.
 *
 * @module
 */
import type * as http from "node:http";
import type * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { bodyOverLimit, type LeanRequest, peekHeader, readWholeBody } from "./lean_contract.ts";
import { onBun } from "./node_bun.ts";

/**
 * Bytes as Node writes them. Node turns a Uint8Array into a Buffer over the same memory,
 * and reading `.buffer` of a small typed array moves it off V8's heap, which costs more
 * than copying its bytes into Node's buffer pool.
 */
export function asNodeBuffer(bytes: Uint8Array): Uint8Array {
  return bytes.byteLength <= 64 && !Buffer.isBuffer(bytes) ? Buffer.from(bytes) : bytes;
}

/** {@linkcode leanRequest} for node:http2's stream API. */
export function leanStreamRequest(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
): LeanRequest {
  const authority = headers[":authority"] ?? headers.host;
  if (authority === undefined) {
    throw new ConnectError("the request names no authority (no :authority or Host)", Code.Internal);
  }
  return new StreamRequest(stream, headers, authority) as unknown as LeanRequest;
}

/**
 * A universal request over an HTTP/2 stream. A class rather than an object literal
 * with getters: one allocation per call instead of an object and a closure per getter.
 */
class StreamRequest {
  readonly httpVersion = "2.0";
  readonly method: string;
  readonly url: string;
  readonly #stream: http2.ServerHttp2Stream;
  readonly #headers: http2.IncomingHttpHeaders;
  #header?: Headers;
  #controller?: AbortController;

  constructor(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    authority: string,
  ) {
    this.#stream = stream;
    this.#headers = headers;
    this.method = headers[":method"] ?? "";
    const path = headers[":path"] ?? "";
    this.url = path.startsWith("/")
      ? `http://${authority}${path}`
      : new URL(path, `http://${authority}`).href;
  }

  get header(): Headers {
    return (this.#header ??= new NodeHeaders(this.#headers));
  }

  get body(): AsyncIterable<Uint8Array> {
    // Not the stream itself: leaving its iterator early (connect-es does, on a bad
    // message) would destroy it, resetting the call before its error is sent.
    return this.#stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      const call = new AbortController();
      this.#controller = call;
      const stream = this.#stream;
      // As connect-node: the signal aborts when the stream closes, for whatever reason.
      if (stream.closed) call.abort(resetCodeError(stream.rstCode));
      else stream.once("close", () => call.abort(resetCodeError(stream.rstCode)));
    }
    return this.#controller.signal;
  }

  [readWholeBody](limit: number): Promise<Uint8Array> {
    return wholeBodyOf(this.#stream, limit);
  }

  [peekHeader](name: string): string | null {
    return peek(this.#headers, name);
  }
}

const unfilled: unique symbol = Symbol("unfilled");

/** One header of Node's header object, as Headers#get would give it. */
function peek(incoming: http.IncomingHttpHeaders, name: string): string | null {
  if (name.charCodeAt(0) === 58 /* ":" */) return null;
  const value = incoming[name];
  if (value === undefined) return null;
  return typeof value === "string"
    ? value
    : Array.isArray(value)
    ? value.join(", ")
    : String(value);
}

/**
 * A universal request over an HTTP/1.1 one, as connect-node's
 * `universalRequestFromNodeRequest` makes, except that the headers, body iterator and
 * signal are made only when asked for (most unary calls never ask for the signal, whose
 * abort costs a DOMException), and the whole body can be read at once.
 */
export function leanRequest(req: http.IncomingMessage, res: http.ServerResponse): LeanRequest {
  const authority = req.headers.host;
  if (authority === undefined) {
    throw new ConnectError("the request names no authority (no Host)", Code.Internal);
  }
  return new MessageRequest(req, res, authority) as unknown as LeanRequest;
}

/** {@linkcode StreamRequest}'s twin for HTTP/1.1, a class for the same reason. */
class MessageRequest {
  readonly httpVersion: string;
  readonly method: string;
  readonly url: string;
  readonly #req: http.IncomingMessage;
  #header?: Headers;
  #controller?: AbortController;
  #ended?: { reason: unknown };

  constructor(req: http.IncomingMessage, res: http.ServerResponse, authority: string) {
    this.#req = req;
    this.httpVersion = req.httpVersion;
    this.method = req.method ?? "";
    const path = req.url ?? "";
    this.url = path.startsWith("/")
      ? `http://${authority}${path}`
      : new URL(path, `http://${authority}`).href;
    // Node closes an HTTP/1.1 request once its body is read: the response's close is the end.
    const onError = (error: Error) => this.#end(nodeReasonError(error));
    req.once("error", onError);
    res.once("close", () => {
      req.off("error", onError);
      this.#end(req.errored ? nodeReasonError(req.errored) : undefined);
    });
  }

  #end(reason: unknown): void {
    if (this.#ended) return;
    this.#ended = { reason };
    this.#controller?.abort(reason);
  }

  get header(): Headers {
    return (this.#header ??= new NodeHeaders(this.#req.headers));
  }

  get body(): AsyncIterable<Uint8Array> {
    return this.#req as AsyncIterable<Uint8Array>;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#ended) this.#controller.abort(this.#ended.reason);
    }
    return this.#controller.signal;
  }

  [readWholeBody](limit: number): Promise<Uint8Array> {
    return wholeBodyOf(this.#req, limit);
  }

  [peekHeader](name: string): string | null {
    return peek(this.#req.headers, name);
  }
}

/**
 * A real Headers over Node's header object, filled on first use. Until then `get` and
 * `has` read Node's object directly: the lean unary path asks for a few headers, and
 * filling a Headers (each name and value validated again) was a large part of a call.
 * (The methods are put on the prototype rather than declared, because Node's typings
 * declare Headers' methods as properties, which a subclass may not override.)
 */
class NodeHeaders extends Headers {
  [unfilled]?: http.IncomingHttpHeaders;

  constructor(incoming: http.IncomingHttpHeaders) {
    super();
    this[unfilled] = incoming;
    // Bun's `new Headers(h)` copies h's native storage, never calling the methods below.
    if (onBun) fill(this);
  }
}

const base = Headers.prototype;

function fill(headers: NodeHeaders): void {
  const incoming = headers[unfilled];
  if (!incoming) return;
  headers[unfilled] = undefined;
  for (const key in incoming) {
    if (key.charCodeAt(0) === 58 /* ":" */) continue;
    const value = incoming[key];
    if (value === undefined) continue;
    if (typeof value === "string") base.append.call(headers, key, value);
    else for (const v of value) base.append.call(headers, key, v);
  }
}

function filledFirst<K extends keyof Headers>(name: K): Headers[K] {
  const method = base[name] as (...args: unknown[]) => unknown;
  return function (this: NodeHeaders, ...args: unknown[]) {
    fill(this);
    return method.apply(this, args);
  } as Headers[K];
}

Object.defineProperties(NodeHeaders.prototype, {
  get: {
    value: function (this: NodeHeaders, name: string): string | null {
      const incoming = this[unfilled];
      return incoming ? peek(incoming, String(name).toLowerCase()) : base.get.call(this, name);
    },
  },
  has: {
    value: function (this: NodeHeaders, name: string): boolean {
      return this.get(name) !== null;
    },
  },
  append: { value: filledFirst("append") },
  set: { value: filledFirst("set") },
  delete: { value: filledFirst("delete") },
  getSetCookie: { value: filledFirst("getSetCookie") },
  forEach: { value: filledFirst("forEach") },
  entries: { value: filledFirst("entries") },
  keys: { value: filledFirst("keys") },
  values: { value: filledFirst("values") },
  [Symbol.iterator]: { value: filledFirst(Symbol.iterator) },
});

/**
 * The whole request body, refused once it grows past `limit` bytes (a declared length is
 * held to by node:http2 and node:http themselves). The listeners are shared functions and
 * the state lives on the source, rather than four closures per call. An error is not
 * listened for: each source already has an error listener, and a stream that errs
 * closes without an end.
 */
function wholeBodyOf(
  source: http.IncomingMessage | http2.ServerHttp2Stream,
  limit: number,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    (source as BodySource)[bodyRead] = {
      chunks: [],
      length: 0,
      limit,
      resolve,
      reject,
      settled: false,
    };
    source.on("data", collectChunk);
    source.on("end", finishBody);
    source.on("close", abandonBody);
  });
}

const bodyRead: unique symbol = Symbol("bodyRead");

interface BodyRead {
  chunks: Buffer[];
  length: number;
  limit: number;
  resolve: (body: Uint8Array) => void;
  reject: (reason: unknown) => void;
  settled: boolean;
}

type BodySource = (http.IncomingMessage | http2.ServerHttp2Stream) & { [bodyRead]: BodyRead };

function collectChunk(this: BodySource, chunk: Buffer): void {
  const read = this[bodyRead];
  if (read.settled) return; // past the limit: the rest is let through unkept
  read.chunks.push(chunk);
  read.length += chunk.length;
  if (read.length > read.limit) {
    read.settled = true;
    read.reject(bodyOverLimit(read.limit, Buffer.concat(read.chunks)));
    read.chunks = [];
  }
}

function finishBody(this: BodySource): void {
  const read = this[bodyRead];
  if (read.settled) return;
  read.settled = true;
  read.resolve(read.chunks.length === 1 ? read.chunks[0] : Buffer.concat(read.chunks));
}

function abandonBody(this: BodySource): void {
  const read = this[bodyRead];
  if (read.settled) return;
  read.settled = true;
  // A stream reset or a dropped connection closes the request without an end.
  read.reject(
    this.errored
      ? nodeReasonError(this.errored)
      : new ConnectError("the client went away mid-request", Code.Aborted),
  );
}

/** As gRPC maps HTTP/2 reset codes; NO_ERROR and STREAM_CLOSED map to nothing. */
function resetCodeError(rstCode: number | undefined): ConnectError | undefined {
  const code = rstCode === 7
    ? Code.Unavailable
    : rstCode === 8
    ? Code.Canceled
    : rstCode === 11
    ? Code.ResourceExhausted
    : rstCode === 12 || rstCode === 13
    ? Code.PermissionDenied
    : rstCode !== undefined && rstCode >= 1 && rstCode <= 10 && rstCode !== 5
    ? Code.Internal
    : undefined;
  if (code === undefined) return undefined;
  return new ConnectError(`http/2 stream closed with error code 0x${rstCode!.toString(16)}`, code);
}

/** A client that hung up is Aborted; anything else Internal. */
function nodeReasonError(error: Error): ConnectError {
  const nodeCode = (error as { code?: unknown }).code;
  const hungUp = nodeCode === "ECONNRESET" || nodeCode === "ERR_STREAM_DESTROYED" ||
    nodeCode === "ERR_STREAM_PREMATURE_CLOSE";
  return ConnectError.from(error, hungUp ? Code.Aborted : Code.Internal);
}
