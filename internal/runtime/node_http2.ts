/**
 * node:http2 as the Node guest's native server (`server: "native"`): fed h2c connections
 * by the first-bytes switch (node:http2's own `allowHTTP1` works only with TLS), each
 * stream answered on its stream API, whole answers written at once and streamed ones
 * with backpressure, trailers included (so gRPC is served).
 *
 * @module
 */
import * as http2 from "node:http2";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import { type LeanRequest, plainHeadersOf, wholeBodyOf } from "./lean_contract.ts";
import { asNodeBuffer, leanStreamRequest } from "./node_request.ts";
import { handOff } from "./node_socket.ts";
import { onBun } from "./node_bun.ts";
import type { ConnectionServer, HttpServer, ServeHttpOptions, SwitchedServe } from "./types.ts";

/**
 * node:http2 behind the first-bytes switch (`switched`, from `internal/server/serve.ts`):
 * h2c to node:http2, HTTP/1.1 to node:http.
 *
 * @example
 * ```ts
 * import type { SwitchedServe } from "./types.ts";
 * import { serveNative } from "./node_http2.ts";
 *
 * // A switch that only shows what it was given.
 * const switched: SwitchedServe = (options, http2) => {
 *   void http2.shutdown();
 *   return Promise.resolve({ address: options.address, shutdown: async () => {}, finished: Promise.resolve() });
 * };
 * const server = await serveNative({
 *   address: { kind: "tcp", hostname: "127.0.0.1", port: 0 },
 *   handler: () => Promise.resolve({ status: 204 }),
 *   onError: (error) => console.error(error),
 *   headerTimeoutMs: 10_000,
 * }, switched);
 * await server.shutdown();
 * ```
 */
export function serveNative(
  options: ServeHttpOptions,
  switched: SwitchedServe,
): Promise<HttpServer> {
  return switched(options, createHttp2Server(options));
}

/** node:http2 as a {@linkcode ConnectionServer}. */
function createHttp2Server(options: ServeHttpOptions): ConnectionServer {
  const sessions = new Set<http2.ServerHttp2Session>();
  let stopping = false;
  // HTTP/2 on node:http2's stream API: its compatibility layer (a request and a
  // response object, each a full Node stream, per call) cost much of a call.
  const h2 = http2.createServer({});
  // Streams in flight are not counted: on shutdown each session is closed, which lets
  // its streams finish, and shutdown is over once the last session has closed.
  h2.on("stream", answerStream);
  // One async function per call rather than a then/catch pair of closures.
  async function answerStream(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
  ): Promise<void> {
    // A reset or write error ends the call through its signal; unheard, it would crash.
    stream.on("error", ignore);
    let request: LeanRequest;
    try {
      request = leanStreamRequest(stream, headers);
    } catch (error) {
      options.onError(error);
      respondPlain(stream, 400, "bad request\n");
      return;
    }
    try {
      const response = await options.handler(request);
      const whole = wholeBodyOf(response.body);
      if (whole || !response.body) writeWhole(response, whole, stream);
      else await writeStreamed(response, stream);
    } catch (error) {
      options.onError(error);
      if (!stream.headersSent) respondPlain(stream, 500, "internal error\n");
      else stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
  }
  let newestSession: http2.ServerHttp2Session | undefined;
  h2.on("session", (session) => {
    newestSession = session;
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    if (stopping) session.close();
  });
  return {
    serve(stream, first, deadline) {
      // node:http2 feeds whatever is buffered to its session before reading the native handle.
      const socket = handOff(stream, first, deadline);
      if (!socket) return;
      // Its session closes it on shutdown, once its streams are done.
      h2.emit("connection", socket);
      // Bun's session reads through the socket's stream, which handOff left paused.
      if (onBun) socket.resume();
      // node:http2 announces the session synchronously, so this one is ours.
      newestSession?.once("stream", () => clearTimeout(deadline));
    },
    async shutdown() {
      stopping = true;
      // GOAWAY to every HTTP/2 client; streams in flight still finish.
      const closed = [...sessions].map((session) =>
        new Promise<void>((resolve) => session.once("close", resolve))
      );
      for (const session of sessions) session.close();
      await Promise.all(closed);
    },
  };
}

function respondPlain(stream: http2.ServerHttp2Stream, status: number, text: string): void {
  if (stream.destroyed) return;
  stream.respond({ ":status": status, "content-type": "text/plain" });
  stream.end(text);
}

/** Node's outgoing header object for a Headers, with `:status` when given. */
function nodeHeadersOf(header: Headers | undefined, status?: number): http2.OutgoingHttpHeaders {
  const plain = plainHeadersOf(header);
  // node:http2 copies what it is given, so a shared head can be passed as it is.
  if (plain && status === 200) return sharedHeadOf(plain);
  const out: http2.OutgoingHttpHeaders = status === undefined ? {} : { ":status": status };
  if (plain) return Object.assign(out, plain);
  header?.forEach((value, key) => out[key] = value);
  return out;
}

/** A frozen `:status: 200` head for each shared header record, made once. */
const sharedHeads = new WeakMap<object, http2.OutgoingHttpHeaders>();

function sharedHeadOf(plain: Readonly<Record<string, string>>): http2.OutgoingHttpHeaders {
  let head = sharedHeads.get(plain);
  if (!head) sharedHeads.set(plain, head = Object.freeze({ ":status": 200, ...plain }));
  return head;
}

function ignore(): void {}

/** Sends the response head on an HTTP/2 stream; trailers follow the body. */
function respondOn(
  stream: http2.ServerHttp2Stream,
  response: UniversalServerResponse,
  length?: number,
): void {
  const trailer = response.trailer;
  if (trailer === undefined) {
    const head = nodeHeadersOf(response.header, response.status);
    if (length === undefined) {
      stream.respond(head, NO_TRAILERS);
      return;
    }
    // A shared head is frozen: the length goes on a copy.
    const sized = Object.isFrozen(head) ? { ...head } : head;
    sized["content-length"] = length;
    // An empty body ends with the head: no DATA frame, no end() of the writable side.
    stream.respond(sized, length === 0 ? END : NO_TRAILERS);
    return;
  }
  stream.respond(nodeHeadersOf(response.header, response.status), WITH_TRAILERS);
  // One listener for every stream, the trailers kept on the stream: no closure per call.
  // (`on`, not `once`: node:http2 asks for trailers once, and once() wraps the listener.)
  // Read only then: a streamed answer's trailers are complete once its body has ended.
  (stream as TrailerStream)[pendingTrailer] = trailer;
  stream.on("wantTrailers", sendPendingTrailer);
}

const NO_TRAILERS = Object.freeze({ waitForTrailers: false });
const WITH_TRAILERS = Object.freeze({ waitForTrailers: true });
const END = Object.freeze({ endStream: true });
const pendingTrailer: unique symbol = Symbol("pendingTrailer");
type TrailerStream = http2.ServerHttp2Stream & {
  [pendingTrailer]?: Headers;
};

function sendPendingTrailer(this: TrailerStream): void {
  const trailer = this[pendingTrailer];
  this[pendingTrailer] = undefined;
  const plain = plainHeadersOf(trailer);
  this.sendTrailers(plain ?? nodeHeadersOf(trailer));
}

/** A response whose body is at hand: head, body and trailers at once. */
function writeWhole(
  response: UniversalServerResponse,
  whole: Uint8Array | undefined,
  stream: http2.ServerHttp2Stream,
): void {
  if (stream.destroyed) return;
  const length = whole?.length ?? 0;
  respondOn(stream, response, length);
  // An empty body without trailers went with the head (endStream).
  if (length > 0 || response.trailer !== undefined) stream.end(whole && asNodeBuffer(whole));
}

/**
 * Sends a streamed universal response on an HTTP/2 stream: headers when the first
 * body chunk is ready (so a handler can still add headers until then), the body with
 * backpressure, then the trailers. A stream that goes away stops the body's iterator.
 */
async function writeStreamed(
  response: UniversalServerResponse,
  stream: http2.ServerHttp2Stream,
): Promise<void> {
  const it = response.body![Symbol.asyncIterator]();
  try {
    let chunk = await it.next();
    if (stream.destroyed) return;
    respondOn(stream, response);
    for (; !chunk.done; chunk = await it.next()) {
      if (stream.destroyed) return;
      if (!stream.write(chunk.value)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            stream.off("drain", done);
            stream.off("close", done);
            resolve();
          };
          stream.on("drain", done);
          stream.on("close", done);
        });
      }
    }
    if (!stream.destroyed) stream.end();
  } finally {
    // Ends the handler's side too when the client went away mid-stream.
    await it.return?.().catch(() => {});
  }
}
