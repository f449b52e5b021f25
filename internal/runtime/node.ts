/**
 * The Node side of the runtime seam: the npm build uses this file in place of
 * `deno.ts`, and it exports the same names. A guest serves h2c through the project's
 * HTTP/2 engine on node:net (or node:http2 with `server: "native"`), HTTP/1.1 through
 * node:http beside it; both send trailers, so a Node guest serves gRPC.
 *
 * @module
 */
import process from "node:process";
import { spawn } from "node:child_process";
import { chmod, mkdir, readFile, realpath, rename, rm, writeFile } from "node:fs/promises";
import { realpathSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import * as http from "node:http";
import * as http2 from "node:http2";
import {
  connect as netConnect,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from "node:net";
import type { Readable } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import type { BindAddress } from "../bind.ts";
import {
  bodyOverLimit,
  type LeanRequest,
  peekHeader,
  plainHeaders,
  readWholeBody,
  type SharedHeaders,
  type WholeBody,
  wholeBody,
} from "../lean/unary.ts";
import { createH2Server } from "../http2/server_universal.ts";
import { classifyFirstBytes, type FirstBytesKind } from "../http2/preface.ts";
import { socketStream } from "./node_socket.ts";
import type {
  ByteStream,
  Child,
  HttpServer,
  HttpServerKind,
  Listener,
  ProcessExit,
  ServeHttpOptions,
  SocketTarget,
  SpawnChildOptions,
} from "./types.ts";

export type * from "./types.ts";

/** The runtime this build of the library runs on. */
export const runtimeName: "deno" | "node" = "node";

/** The process's command-line arguments, without the executable and script. */
export function processArgs(): string[] {
  return process.argv.slice(2);
}

/** A snapshot of the environment. */
export function processEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined) env[key] = value;
  }
  return env;
}

/**
 * Ends the process with `code` once stdout and stderr are flushed: writes to a full
 * pipe are queued in Node, and `process.exit` would drop them (a plugin's last log
 * lines, seen lost here).
 */
export async function exitProcess(code: number): Promise<never> {
  await Promise.all(
    [process.stdout, process.stderr].map((stream) =>
      stream.writableLength === 0 ? undefined : new Promise<void>((resolve) => {
        stream.once("drain", resolve);
        stream.once("error", resolve);
        stream.once("close", resolve);
      })
    ),
  );
  process.exit(code);
}

/** This process's pid. */
export function ownPid(): number {
  return process.pid;
}

/** The live parent pid: it changes (to 1 or a subreaper) when the parent dies. */
export function parentPid(): number {
  return process.ppid;
}

/** Writes `text` to stderr (synchronous for files, pipes and terminals on Linux). */
export function writeStderr(text: string): void {
  process.stderr.write(text);
}

/** Writes `text` to stdout. */
export function writeStdout(text: string): void {
  process.stdout.write(text);
}

/** Whether stderr is a terminal (colour is only used there). */
export function stderrIsTerminal(): boolean {
  return process.stderr.isTTY === true;
}

/** All of stdin as text (for a CLI reading a message from a pipe). */
export async function readStdinText(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Whether the module with this `import.meta` is the program being run. */
export function isMainModule(meta: ImportMeta): boolean {
  // import.meta.main arrived in Node 24.2; before it, compare with the script run.
  const main = (meta as { main?: unknown }).main;
  if (typeof main === "boolean") return main;
  const script = process.argv[1];
  if (!script) return false;
  try {
    // npm runs a bin through a symlink in node_modules/.bin.
    return realpathSync(script) === realpathSync(fileURLToPath(meta.url));
  } catch {
    return false;
  }
}

/** Whether stdout is a terminal. */
export function stdoutIsTerminal(): boolean {
  return process.stdout.isTTY === true;
}

/**
 * Calls `onSignal` with the signal's name on SIGINT or SIGTERM. Returns a function
 * that removes the listeners.
 */
export function onTerminationSignal(
  onSignal: (signal: "SIGINT" | "SIGTERM") => void,
): () => void {
  const onInt = () => onSignal("SIGINT");
  const onTerm = () => onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return () => {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  };
}

/** Runs `callback` every `ms` without keeping the process alive; returns a canceller. */
export function everyUnref(ms: number, callback: () => void): () => void {
  const id = setInterval(callback, ms);
  id.unref();
  return () => clearInterval(id);
}

/** Whether this runtime's native HTTP server can send HTTP trailers, which gRPC needs. */
export const serverSendsTrailers: boolean = true;

/**
 * The server `serveHttp` runs when not told: the project's HTTP/2 engine, which the
 * bench measured well ahead of node:http2 here (docs/BENCHMARKS.md: Ping rate over
 * Connect and gRPC, and peak memory under many streams).
 */
export const defaultServer: HttpServerKind = "engine";

/**
 * Serves h2c (prior knowledge) and HTTP/1.1 on one port. node:http2's `allowHTTP1`
 * only works with TLS, so each connection's first bytes choose (`classifyFirstBytes`):
 * an HTTP/1 request line goes to node:http; the HTTP/2 preface, or any other first
 * line, to the project's HTTP/2 engine (`server: "engine"`, which answers a bad preface
 * GOAWAY PROTOCOL_ERROR) or to node:http2 (`"native"`).
 */
export async function serveHttp(options: ServeHttpOptions): Promise<HttpServer> {
  const engine = (options.server ?? defaultServer) === "engine"
    ? createH2Server({
      handler: options.handler,
      onError: options.onError,
      headerTimeoutMs: options.headerTimeoutMs,
    })
    : undefined;
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<Socket>();
  let inFlight = 0;
  let stopping = false;
  const whenIdle = new Set<() => void>();

  const onRequest = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ) => {
    inFlight++;
    // Not the promise below: for HTTP/1.1 it waits for an "end" event that
    // http.ServerResponse never emits.
    res.once("close", () => {
      inFlight--;
      if (inFlight === 0) { for (const resolve of whenIdle) resolve(); }
    });
    let request: LeanRequest;
    try {
      request = leanRequest(req, res);
    } catch (error) {
      // An HTTP/1.0 request without Host, say: thrown here it would end the process.
      options.onError(error);
      res.writeHead(400, { "content-type": "text/plain" }).end("bad request\n");
      return;
    }
    options.handler(request)
      .then((response) => {
        const whole = (response.body as Partial<WholeBody> | undefined)?.[wholeBody];
        if (!whole) {
          return connectNode().then((m) => m.universalResponseToNodeResponse(response, res));
        }
        // The whole body is at hand: no need to stream it through an iterator.
        res.statusCode = response.status;
        response.header?.forEach((value, key) => res.setHeader(key, value));
        if (response.trailer) {
          const trailer: Record<string, string> = {};
          response.trailer.forEach((value, key) => trailer[key] = value);
          res.addTrailers(trailer);
        }
        res.end(asNodeBuffer(whole));
      })
      .catch((error) => {
        options.onError(error);
        if (!res.headersSent) {
          res.statusCode = 500;
          res.setHeader("content-type", "text/plain");
          res.end("internal error\n");
        } else {
          res.destroy();
        }
      });
  };
  // HTTP/2 on node:http2's stream API: its compatibility layer (a request and a
  // response object, each a full Node stream, per call) cost a third of a call.
  const h2 = http2.createServer({});
  // Streams in flight are not counted: on shutdown each session is closed, which lets
  // its streams finish, and the server closes once the last session has.
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
      const whole = (response.body as Partial<WholeBody> | undefined)?.[wholeBody];
      if (whole || !response.body) writeWhole(response, whole, stream);
      else await writeStreamed(response, stream);
    } catch (error) {
      options.onError(error);
      if (!stream.headersSent) respondPlain(stream, 500, "internal error\n");
      else stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
  }
  const h1 = http.createServer({
    connectionsCheckingInterval: Math.min(30_000, options.headerTimeoutMs),
    // Only the header timeout: a body may take as long as its call does.
    requestTimeout: 0,
  }, onRequest);
  // Later requests on a keep-alive HTTP/1.1 connection get Node's own header timeout.
  h1.headersTimeout = options.headerTimeoutMs;
  let newestSession: http2.ServerHttp2Session | undefined;
  h2.on("session", (session) => {
    newestSession = session;
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    if (stopping) session.close();
  });
  const firstRequestTimers = new WeakMap<Socket, ReturnType<typeof setTimeout>>();
  h1.on("request", (req: http.IncomingMessage) => clearTimeout(firstRequestTimers.get(req.socket)));
  /** Connections whose first bytes have not decided yet. */
  const undecided = new Set<Socket>();
  const route = (socket: Socket, kind: FirstBytesKind, first: Buffer, deadline: Deadline) => {
    undecided.delete(socket);
    if (stopping) return void socket.destroy();
    if (kind === "http2" && engine) {
      // The engine's own header timeout takes over; it closes the socket on shutdown.
      clearTimeout(deadline);
      sockets.delete(socket);
      void engine.serve(socketStream(socket), first);
      return;
    }
    // Both parsers pick up bytes put back: node:http reads them from the stream, and
    // node:http2 feeds whatever is buffered to its session before reading the native handle.
    socket.unshift(first);
    if (kind === "http2") {
      // Its session closes it on shutdown, once its streams are done.
      sockets.delete(socket);
      h2.emit("connection", socket);
      // node:http2 announces the session synchronously, so this one is ours.
      newestSession?.once("stream", () => clearTimeout(deadline));
    } else {
      h1.emit("connection", socket);
      socket.resume();
    }
  };
  const server = createNetServer((socket) => {
    sockets.add(socket);
    undecided.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      undecided.delete(socket);
    });
    // A reset before the first bytes decide would otherwise be thrown.
    socket.on("error", ignore);
    socket.setNoDelay(true);
    // Slowloris: the first request's headers must all be in before the deadline.
    const deadline = setTimeout(() => socket.destroy(), options.headerTimeoutMs);
    firstRequestTimers.set(socket, deadline);
    socket.once("close", () => clearTimeout(deadline));
    let first: Buffer | undefined;
    const onData = (chunk: Buffer) => {
      first = first === undefined ? chunk : Buffer.concat([first, chunk]);
      const kind = classifyFirstBytes(first);
      if (kind === undefined) return;
      socket.off("data", onData);
      socket.pause();
      route(socket, kind, first, deadline);
    };
    socket.on("data", onData);
  });
  const { address } = options;
  const finished = new Promise<void>((resolve) =>
    server.once("close", () => {
      // libuv unlinks the name it bound, the staging one: the socket itself was moved.
      if (address.kind === "unix" && movedIntoPlace) rmSync(address.path, { force: true });
      resolve();
    })
  );
  /** Whether a unix socket was moved into place (and is ours to remove). */
  let movedIntoPlace = false;
  let stopped: Promise<void> | undefined;
  const where = address.kind === "unix" ? address.path : `${address.hostname}:${address.port}`;
  // A socket file left by an earlier run would make the bind fail.
  // Bound under a private name, made 0600, then moved into place: a client never finds
  // the socket before its mode is set.
  const staging = address.kind === "unix" ? `${address.path}~` : "";
  if (address.kind === "unix") {
    await rm(address.path, { force: true });
    await rm(staging, { force: true });
  }
  return new Promise((resolve, reject) => {
    const onListenError = (error: Error) => {
      reject(new Error(`cannot listen on ${where}: ${error.message}`, { cause: error }));
    };
    server.once("error", onListenError);
    const onListening = async () => {
      // From here on the promise is settled: a later server error is the log's.
      server.off("error", onListenError);
      server.on("error", options.onError);
      // node:http checks its header timeout from "listening" on (until close()): it is
      // fed connections by hand here, so it never hears it otherwise.
      h1.emit("listening");
      let bound: BindAddress = address;
      if (address.kind === "unix") {
        try {
          await chmod(staging, 0o600);
          await rename(staging, address.path);
          movedIntoPlace = true;
        } catch (error) {
          // Unheard, this was an unhandled rejection and serve() never settled.
          server.close();
          await rm(staging, { force: true }).catch(() => {});
          const reason = error instanceof Error ? error.message : String(error);
          reject(
            new Error(`cannot put the socket in place at ${where}: ${reason}`, { cause: error }),
          );
          return;
        }
      } else {
        const info = server.address();
        const port = typeof info === "object" && info ? info.port : address.port;
        bound = { ...address, port };
      }
      resolve({
        address: bound,
        finished,
        shutdown: () =>
          stopped ??= (async () => {
            stopping = true;
            server.close();
            // Stops its timeout checks and closes its idle keep-alive connections.
            h1.close();
            // Nothing was asked on these yet.
            for (const socket of undecided) socket.destroy();
            // GOAWAY to every HTTP/2 client; streams in flight still finish.
            for (const session of sessions) session.close();
            const engineDrained = engine?.shutdown();
            // HTTP/1.1 requests in flight finish too.
            if (inFlight > 0) await new Promise<void>((r) => whenIdle.add(r));
            // Idle HTTP/1.1 keep-alive sockets (and silent ones) would hold the server open.
            for (const socket of sockets) socket.destroy();
            await engineDrained;
            await finished;
          })(),
      });
    };
    if (address.kind === "unix") server.listen(staging, onListening);
    else server.listen(address.port, address.hostname, onListening);
  });
}

type Deadline = ReturnType<typeof setTimeout>;

function respondPlain(stream: http2.ServerHttp2Stream, status: number, text: string): void {
  if (stream.destroyed) return;
  stream.respond({ ":status": status, "content-type": "text/plain" });
  stream.end(text);
}

/** Node's outgoing header object for a Headers, with `:status` when given. */
function nodeHeadersOf(header: Headers | undefined, status?: number): http2.OutgoingHttpHeaders {
  const plain = (header as Partial<SharedHeaders> | undefined)?.[plainHeaders];
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
  const plain = (trailer as Partial<SharedHeaders> | undefined)?.[plainHeaders];
  this.sendTrailers(plain ?? nodeHeadersOf(trailer));
}

/**
 * Bytes as Node writes them. Node turns a Uint8Array into a Buffer over the same memory,
 * and reading `.buffer` of a small typed array moves it off V8's heap: 315 ns for five
 * bytes, measured on Node 20, against 74 ns to copy them into Node's buffer pool.
 */
function asNodeBuffer(bytes: Uint8Array): Uint8Array {
  return bytes.byteLength <= 64 && !Buffer.isBuffer(bytes) ? Buffer.from(bytes) : bytes;
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

/** {@linkcode leanRequest} for node:http2's stream API. */
function leanStreamRequest(
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
function leanRequest(req: http.IncomingMessage, res: http.ServerResponse): LeanRequest {
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

/**
 * Listens on `address`: TCP (with TCP_NODELAY on every connection) or a unix socket,
 * bound under a private staging name, made 0600 and only then moved into place, so that
 * no client ever finds it with a wider mode. A failure names the address and leaves
 * nothing listening.
 *
 * @example
 * ```ts
 * import { connectSocket, listen } from "./node.ts";
 *
 * const listener = await listen({ kind: "tcp", hostname: "127.0.0.1", port: 0 });
 * if (listener.address.kind !== "tcp") throw new Error("a TCP listener");
 * const client = await connectSocket({ hostname: "127.0.0.1", port: listener.address.port });
 * const server = (await listener.accept())!;
 * await client.write(new TextEncoder().encode("hi"));
 * const buffer = new Uint8Array(8);
 * console.assert((await server.read(buffer)) === 2);
 * client.close();
 * server.close();
 * listener.close();
 * console.assert((await listener.accept()) === null);
 * ```
 */
export async function listen(address: BindAddress): Promise<Listener> {
  const where = address.kind === "unix" ? address.path : `${address.hostname}:${address.port}`;
  const listener = new NodeListener(address);
  const server = listener.server;
  const staging = `${address.kind === "unix" ? address.path : ""}~`;
  if (address.kind === "unix") {
    // A socket file left by an earlier run would make the bind fail.
    await rm(address.path, { force: true });
    await rm(staging, { force: true });
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) => {
      reject(new Error(`cannot listen on ${where}: ${error.message}`, { cause: error }));
    });
    if (address.kind === "unix") server.listen(staging, resolve);
    else server.listen(address.port, address.hostname, resolve);
  });
  // From here on an error of the listening socket ends accept() rather than the process.
  server.on("error", () => listener.close());
  if (address.kind === "unix") {
    try {
      await chmod(staging, 0o600);
      await rename(staging, address.path);
    } catch (error) {
      server.close();
      await rm(staging, { force: true }).catch(() => {});
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`cannot put the socket in place at ${where}: ${reason}`, { cause: error });
    }
  } else {
    const info = server.address();
    if (typeof info === "object" && info) listener.address = { ...address, port: info.port };
  }
  return listener;
}

/** A node:net server as a {@linkcode Listener}: connections wait in a queue for accept(). */
class NodeListener implements Listener {
  address: BindAddress;
  readonly server: NetServer;
  readonly #waiting: ByteStream[] = [];
  #wake?: (stream: ByteStream | null) => void;
  #closed = false;

  constructor(address: BindAddress) {
    this.address = address;
    this.server = createNetServer({ noDelay: true }, (socket) => {
      if (this.#closed) return void socket.destroy();
      if (address.kind === "tcp") socket.setNoDelay(true);
      // Wrapped at once: its error listener keeps a reset before accept() from
      // crashing the process, and its read limit bounds what it buffers meanwhile.
      const stream = socketStream(socket);
      const wake = this.#wake;
      this.#wake = undefined;
      if (wake) wake(stream);
      else this.#waiting.push(stream);
    });
  }

  accept(): Promise<ByteStream | null> {
    if (this.#waiting.length > 0) return Promise.resolve(this.#waiting.shift()!);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.#wake = resolve));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.server.close();
    for (const stream of this.#waiting.splice(0)) stream.close();
    this.#wake?.(null);
    this.#wake = undefined;
    // libuv unlinks the name it bound, which is the staging name: the socket was moved.
    if (this.address.kind === "unix") rmSync(this.address.path, { force: true });
  }
}

/**
 * Connects to a TCP address (with TCP_NODELAY) or a unix socket.
 *
 * @example
 * ```ts
 * import { connectSocket } from "./node.ts";
 * // Nothing listens on port 1.
 * const refused = await connectSocket({ hostname: "127.0.0.1", port: 1 }).then(
 *   () => false,
 *   () => true,
 * );
 * console.assert(refused);
 * ```
 */
export function connectSocket(target: SocketTarget): Promise<ByteStream> {
  return new Promise((resolve, reject) => {
    const socket = "path" in target
      ? netConnect(target.path)
      : netConnect({ host: target.hostname, port: target.port, noDelay: true });
    socket.once("error", reject).once("connect", () => {
      socket.off("error", reject);
      resolve(socketStream(socket));
    });
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Another process can take it
 * before the caller binds it: the race every "find a free port" helper has.
 */
export function allocatePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a process in a new process group (and session), stdin closed and
 * stdout/stderr piped, so that signalling the group reaches its children too.
 */
export function spawnChild(options: SpawnChildOptions): Promise<Child> {
  const child = spawn(options.exe, [...options.args], {
    env: options.env,
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  return new Promise((resolve, reject) => {
    child.once("error", (error: NodeJS.ErrnoException) => {
      const why = error.code === "ENOENT"
        ? "no such file or directory"
        : error.code === "EACCES"
        ? "permission denied"
        : error.message;
      reject(new Error(`cannot run ${options.exe}: ${why}`, { cause: error }));
    });
    child.once("spawn", () => {
      resolve({
        pid: child.pid!,
        stdout: webStreamOf(child.stdout!),
        stderr: webStreamOf(child.stderr!),
        exited,
      });
    });
  });
}

/**
 * A web stream of a child's output. Not `Readable.toWeb`: on Node 20 its reading
 * stalled here on a 3 MiB line until the child exited.
 */
function webStreamOf(output: Readable): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      output.on("data", (chunk: Buffer) => {
        controller.enqueue(chunk);
        if ((controller.desiredSize ?? 1) <= 0) output.pause();
      });
      output.once("end", () => controller.close());
      output.once("error", (error) => controller.error(error));
    },
    pull: () => void output.resume(),
    cancel: () => void output.destroy(),
  }, { highWaterMark: 16 });
}

/** Sends `signal` to every process in group `pgid`; false if there was none left. */
export function signalGroup(pgid: number, signal: "SIGTERM" | "SIGKILL"): boolean {
  return signalPid(-pgid, signal);
}

/** Sends `signal` to `pid`; false if there is no such process. */
export function signalPid(pid: number, signal: "SIGTERM" | "SIGKILL"): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

/**
 * The command line of a live process, its arguments joined by spaces (as `ps` shows
 * them), or undefined if it is gone; throws when it cannot tell. Linux's /proc is read
 * where there is one; elsewhere `ps` is asked.
 */
export async function processCommandLine(pid: number): Promise<string | undefined> {
  if ((await readTextFile("/proc/self/cmdline").catch(() => undefined)) !== undefined) {
    const raw = await readTextFile(`/proc/${pid}/cmdline`);
    if (!raw) return undefined; // gone, or a zombie (which has no command line)
    return raw.replace(/\0$/, "").replaceAll("\0", " ");
  }
  const ps = spawn("ps", ["-ww", "-o", "args=", "-p", String(pid)], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  let text = "";
  ps.stdout!.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    ps.once("error", reject);
    ps.once("close", resolve);
  });
  // ps exits 1 and prints nothing when there is no such process.
  text = text.trim();
  return code === 0 && text !== "" ? text : undefined;
}

/** The real path of `path`, or `path` itself if it cannot be resolved. */
export async function realPath(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return path;
  }
}

/** Creates `path` (and parents) with `mode` if missing, and sets its mode. */
export async function makeDirectory(path: string, mode: number): Promise<void> {
  await mkdir(path, { recursive: true, mode });
  await chmod(path, mode);
}

/** Reads a text file, or undefined if it does not exist. */
export async function readTextFile(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Writes a text file. */
export async function writeTextFile(path: string, text: string): Promise<void> {
  await writeFile(path, text);
}

/** Removes a file if it exists. */
export async function removeFile(path: string): Promise<void> {
  await rm(path, { force: true });
}

/**
 * Writes a file only its owner can read (mode 0600), replacing any file at `path`:
 * removed first, then created anew, so that an old file's wider mode (or a link put
 * there) is never reused.
 */
export async function writeSecretFile(path: string, text: string): Promise<void> {
  await rm(path, { force: true });
  await writeFile(path, text, { flag: "wx", mode: 0o600 });
}

/**
 * This package's version, from the package.json beside the compiled files (the npm
 * build writes deno.json's version there).
 */
export function packageVersion(): string {
  return (createRequire(import.meta.url)("../../package.json") as { version: string }).version;
}

let connectNodeModule: Promise<typeof import("@connectrpc/connect-node")> | undefined;

/**
 * connect-node, loaded when first needed (a guest's streamed HTTP/1.1 answer): imported
 * up front it added about 25 ms to every Node plugin's start.
 */
function connectNode(): Promise<typeof import("@connectrpc/connect-node")> {
  return (connectNodeModule ??= import("@connectrpc/connect-node"));
}
