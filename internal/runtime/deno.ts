/**
 * The Deno side of the runtime seam: the only place in the library that touches
 * `Deno.*`. The npm build swaps this file for `node.ts`, which exports the same names.
 *
 * @module
 */
import { universalServerResponseToFetch } from "@connectrpc/connect/protocol";
import { createH2Server } from "../http2/server_universal.ts";
import { type FirstBytes, readFirstBytes } from "../http2/preface.ts";
import {
  type LeanRequest,
  plainHeaders,
  readWholeBody,
  type SharedHeaders,
  type WholeBody,
  wholeBody,
} from "../lean/unary.ts";
import type { BindAddress } from "../bind.ts";
import type {
  ByteStream,
  Child,
  HttpServer,
  HttpServerKind,
  Listener,
  ServeHttpOptions,
  SocketTarget,
  SpawnChildOptions,
} from "./types.ts";
import denoConfig from "../../deno.json" with { type: "json" };

export type * from "./types.ts";

/** The runtime this build of the library runs on. */
export const runtimeName: "deno" | "node" = "deno";

/** The process's command-line arguments, without the executable and script. */
export function processArgs(): string[] {
  return [...Deno.args];
}

/** A snapshot of the environment; needs `--allow-env`. */
export function processEnv(): Record<string, string> {
  try {
    return Deno.env.toObject();
  } catch (error) {
    throw explainPermission(error, "--allow-env", "read the environment");
  }
}

/** Ends the process with `code` once stdout and stderr are flushed. */
export function exitProcess(code: number): Promise<never> {
  // Output is written synchronously here, so nothing is pending.
  Deno.exit(code);
}

/** This process's pid. */
export function ownPid(): number {
  return Deno.pid;
}

/** The live parent pid: it changes (to 1 or a subreaper) when the parent dies. */
export function parentPid(): number {
  return Deno.ppid;
}

/** Writes all of `text` to stderr, synchronously so lines never interleave. */
export function writeStderr(text: string): void {
  writeAllSync(Deno.stderr, text);
}

/** Writes all of `text` to stdout, synchronously. */
export function writeStdout(text: string): void {
  writeAllSync(Deno.stdout, text);
}

/** Whether stderr is a terminal (colour is only used there). */
export function stderrIsTerminal(): boolean {
  return Deno.stderr.isTerminal();
}

const encoder = new TextEncoder();

function writeAllSync(
  stream: { writeSync(p: Uint8Array): number },
  text: string,
): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) {
    const written = stream.writeSync(bytes);
    bytes = bytes.subarray(written);
  }
}

/**
 * Calls `onSignal` with the signal's name on SIGINT or SIGTERM. Returns a function
 * that removes the listeners.
 */
export function onTerminationSignal(
  onSignal: (signal: "SIGINT" | "SIGTERM") => void,
): () => void {
  const listeners = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const listener = () => onSignal(signal);
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });
  return () => {
    for (const [signal, listener] of listeners) {
      Deno.removeSignalListener(signal, listener);
    }
  };
}

/** Runs `callback` every `ms` without keeping the process alive; returns a canceller. */
export function everyUnref(ms: number, callback: () => void): () => void {
  const id = setInterval(callback, ms);
  Deno.unrefTimer(id);
  return () => clearInterval(id);
}

/**
 * Whether this runtime's native HTTP server can send HTTP trailers, which gRPC needs.
 * `Deno.serve` cannot; the engine (`server: "engine"`) can.
 */
export const serverSendsTrailers: boolean = false;

/** The server `serveHttp` runs when not told: the engine, which answers gRPC too. */
export const defaultServer: HttpServerKind = "engine";

/**
 * Serves h2c (prior knowledge) and HTTP/1.1 on one address.
 *
 * With `server: "engine"` (the default) every connection's first bytes choose: the
 * HTTP/2 preface goes to the project's HTTP/2 engine, anything else to `Deno.serve`
 * for HTTP/1.1 on a private listener, the bytes piped both ways. With `"native"`,
 * `Deno.serve` alone answers both (no trailers, so no gRPC; no header timeout).
 *
 * `Deno.serve`'s handler never sees `request.signal`: reading it makes Deno print a
 * one-time warning, so the per-call signal comes from the handler info's `completed`
 * promise.
 */
export function serveHttp(options: ServeHttpOptions): Promise<HttpServer> {
  return (options.server ?? defaultServer) === "engine"
    ? serveWithEngine(options)
    : serveNative(options);
}

/**
 * `options.handler` as a `Deno.serve` handler. Behind the engine it sees only HTTP/1.1,
 * where `refuseGrpc` answers gRPC at once: the router, told the engine sends trailers,
 * would answer it with trailers that Deno.serve drops.
 */
function fetchHandler(options: ServeHttpOptions, refuseGrpc: boolean): Deno.ServeHandler {
  return async (request, info) => {
    if (refuseGrpc && isGrpcRequest(request.headers)) return grpcNeedsHttp2();
    const response = await options.handler(
      new ServeRequest(request, info) as unknown as LeanRequest,
    );
    const whole = (response.body as Partial<WholeBody> | undefined)?.[wholeBody];
    if (whole) {
      const plain = (response.header as Partial<SharedHeaders> | undefined)?.[plainHeaders];
      return new Response(whole as Uint8Array<ArrayBuffer>, {
        status: response.status,
        headers: plain ?? response.header,
      });
    }
    return universalServerResponseToFetch(response);
  };
}

function isGrpcRequest(headers: Headers): boolean {
  return /^application\/grpc(\+|;|$)/i.test(headers.get("content-type") ?? "");
}

function grpcNeedsHttp2(): Response {
  return new Response(null, {
    headers: {
      "content-type": "application/grpc",
      "grpc-status": "12", // UNIMPLEMENTED
      "grpc-message": encodeURIComponent("gRPC needs HTTP/2; this was HTTP/1.1"),
    },
  });
}

function serveOptions(options: ServeHttpOptions): {
  onListen: () => void;
  onError: (error: unknown) => Response;
} {
  return {
    // Deno.serve prints "Listening on …" to stdout unless told otherwise.
    onListen: () => {},
    onError: (error: unknown) => {
      options.onError(error);
      return new Response("internal error\n", { status: 500 });
    },
  };
}

/** `Deno.serve` alone: Connect and gRPC-Web over HTTP/1.1 and h2c. */
async function serveNative(options: ServeHttpOptions): Promise<HttpServer> {
  // options.headerTimeoutMs: Deno.serve has no setting for it (see docs/RELIABILITY.md).
  const { address } = options;
  const where = address.kind === "unix" ? address.path : `${address.hostname}:${address.port}`;
  // The router refuses gRPC itself, with a message that says why.
  const handler = fetchHandler(options, false);
  const common = serveOptions(options);
  try {
    if (address.kind === "unix") {
      // A socket file left by an earlier run would make the bind fail.
      await Deno.remove(address.path).catch(() => {});
      // Bound under a private name, made 0600, then moved into place: a client never
      // finds the socket before its mode is set.
      const staging = `${address.path}~`;
      await Deno.remove(staging).catch(() => {});
      const server = Deno.serve({ ...common, path: staging }, handler);
      try {
        await Deno.chmod(staging, 0o600);
        await Deno.rename(staging, address.path);
      } catch (error) {
        // Left running, the server would hold the process open, listening where no
        // client looks.
        await server.shutdown();
        await Deno.remove(staging).catch(() => {});
        if (error instanceof Deno.errors.NotCapable) throw error;
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(`cannot put the socket in place at ${where}: ${reason}`, { cause: error });
      }
      return {
        address,
        shutdown: () => server.shutdown(),
        finished: server.finished.finally(() => Deno.remove(address.path).catch(() => {})),
      };
    }
    const server = Deno.serve(
      { ...common, hostname: address.hostname, port: address.port },
      handler,
    );
    return {
      address: { kind: "tcp", hostname: server.addr.hostname, port: server.addr.port },
      shutdown: () => server.shutdown(),
      finished: server.finished,
    };
  } catch (error) {
    const flag = address.kind === "unix" ? "--allow-read and --allow-write" : "--allow-net";
    throw explainPermission(error, flag, `listen on ${where}`);
  }
}

/**
 * The engine behind a first-bytes switch. The header timeout runs from accept: until
 * the preface is in for HTTP/2 (the engine then starts its own, for the first request's
 * header block), until the first request's head has passed for HTTP/1.1.
 */
async function serveWithEngine(options: ServeHttpOptions): Promise<HttpServer> {
  const listener = await listen(options.address);
  const engine = createH2Server({
    handler: options.handler,
    onError: options.onError,
    headerTimeoutMs: options.headerTimeoutMs,
  });
  const http1 = new Http1Backend(options, listener.address);
  /** Connections whose first bytes have not decided yet. */
  const undecided = new Set<ByteStream>();
  let stopping = false;

  const route = async (socket: ByteStream): Promise<void> => {
    undecided.add(socket);
    const deadline = setTimeout(() => socket.close(), options.headerTimeoutMs);
    let first: FirstBytes | null = null;
    try {
      first = await readFirstBytes(socket);
    } catch {
      // Reset before it said anything.
    }
    undecided.delete(socket);
    if (first === null || stopping) {
      clearTimeout(deadline);
      socket.close();
    } else if (first.kind === "http2") {
      clearTimeout(deadline);
      void engine.serve(socket, first.bytes);
    } else {
      void http1.tunnel(socket, first.bytes, deadline);
    }
  };
  const accepting = (async () => {
    for (;;) {
      let socket: ByteStream | null;
      try {
        socket = await listener.accept();
      } catch (error) {
        // Out of file descriptors, say: the next accept may well succeed.
        options.onError(error);
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      if (socket === null) return;
      void route(socket);
    }
  })();

  let markFinished = () => {};
  const finished = new Promise<void>((resolve) => (markFinished = resolve));
  let stopped: Promise<void> | undefined;
  return {
    address: listener.address,
    finished,
    shutdown: () =>
      stopped ??= (async () => {
        stopping = true;
        listener.close();
        // Nothing was asked on these yet.
        for (const socket of undecided) socket.close();
        await Promise.all([accepting, engine.shutdown(), http1.shutdown()]);
        markFinished();
      })(),
  };
}

/**
 * Where the engine sends HTTP/1.1: `Deno.serve` on a private listener, started on first
 * use (it costs about 3 ms, which a plugin spoken to only in h2c never pays), each
 * connection piped to it. The listener is loopback TCP beside a TCP bind: a guest runs
 * with `--allow-net --allow-env`, and a unix socket would need a directory to write;
 * measured with curl through the pipe, a unix socket was no faster to speak of. Beside
 * a unix bind it is a unix socket in a fresh 0700 directory next to the bound one,
 * which that bind may write, so that no TCP port opens.
 */
class Http1Backend {
  readonly #options: ServeHttpOptions;
  readonly #bound: BindAddress;
  #server?: Promise<{ server: Deno.HttpServer; target: SocketTarget; dir?: string }>;
  readonly #tunnels = new Set<Tunnel>();
  #stopping = false;

  constructor(options: ServeHttpOptions, bound: BindAddress) {
    this.#options = options;
    this.#bound = bound;
  }

  #start(): Promise<{ server: Deno.HttpServer; target: SocketTarget; dir?: string }> {
    return this.#server ??= (async () => {
      const common = serveOptions(this.#options);
      const handler = fetchHandler(this.#options, true);
      if (this.#bound.kind === "unix") {
        const bound = this.#bound.path;
        let dir: string;
        try {
          dir = await Deno.makeTempDir({
            dir: bound.slice(0, bound.lastIndexOf("/")) || "/",
            prefix: `${bound.slice(bound.lastIndexOf("/") + 1)}.http1-`,
          });
        } catch (error) {
          throw explainPermission(error, "--allow-write", `serve HTTP/1.1 beside ${bound}`);
        }
        const path = `${dir}/http1.sock`;
        const server = Deno.serve({ ...common, path }, handler);
        return { server, target: { path }, dir };
      }
      let server: Deno.HttpServer<Deno.NetAddr>;
      try {
        server = Deno.serve({ ...common, hostname: "127.0.0.1", port: 0 }, handler);
      } catch (error) {
        throw explainPermission(error, "--allow-net", "serve HTTP/1.1 on 127.0.0.1");
      }
      return { server, target: { hostname: "127.0.0.1", port: server.addr.port } };
    })();
  }

  /**
   * Pipes `client` (whose first bytes are `prefix`) to `Deno.serve` and back. `deadline`
   * closes the client unless cleared: it is, once the first request's head has passed.
   */
  async tunnel(
    client: ByteStream,
    prefix: Uint8Array,
    deadline: ReturnType<typeof setTimeout>,
  ): Promise<void> {
    let upstream: ByteStream;
    try {
      upstream = await connectSocket((await this.#start()).target);
    } catch (error) {
      clearTimeout(deadline);
      client.close();
      this.#options.onError(error);
      return;
    }
    let markDone = () => {};
    const tunnel: Tunnel = {
      headDone: false,
      close: () => {
        client.close();
        upstream.close();
      },
      done: new Promise((resolve) => (markDone = resolve)),
    };
    if (this.#stopping) return tunnel.close();
    this.#tunnels.add(tunnel);
    const head = new HeadEnd();
    const passed = (bytes: Uint8Array) => {
      if (!tunnel.headDone && head.ends(bytes)) {
        tunnel.headDone = true;
        clearTimeout(deadline);
      }
    };
    const toServer = async () => {
      passed(prefix);
      await writeAll(upstream, prefix);
      const buffer = new Uint8Array(PIPE_BUFFER_BYTES);
      for (;;) {
        const count = await client.read(buffer);
        if (count === null) break;
        const bytes = buffer.subarray(0, count);
        passed(bytes);
        await writeAll(upstream, bytes);
      }
      // The client is done sending: Deno.serve may still answer. Cut off mid-head (the
      // deadline closed it), there is nothing to answer.
      if (tunnel.headDone) (upstream as DenoStream).closeWrite();
      else tunnel.close();
    };
    const toClient = async () => {
      const buffer = new Uint8Array(PIPE_BUFFER_BYTES);
      for (;;) {
        const count = await upstream.read(buffer);
        if (count === null) break;
        await writeAll(client, buffer.subarray(0, count));
      }
    };
    await Promise.all([
      toServer().catch(tunnel.close),
      // Deno.serve closes a connection it is done with (or shutting down): so do we.
      toClient().catch(() => {}).finally(tunnel.close),
    ]);
    clearTimeout(deadline);
    this.#tunnels.delete(tunnel);
    markDone();
  }

  /** Drains `Deno.serve` (in-flight requests finish) and ends every tunnel. */
  async shutdown(): Promise<void> {
    this.#stopping = true;
    // No request was made on these yet.
    for (const tunnel of this.#tunnels) if (!tunnel.headDone) tunnel.close();
    const started = await this.#server?.catch(() => undefined);
    if (!started) return;
    await started.server.shutdown();
    // Deno.serve has closed its side of every tunnel; each passes on what is left of its
    // answers, then closes its client. One whose client stops reading is cut off.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([...this.#tunnels].map((tunnel) => tunnel.done)),
      new Promise((resolve) => (timer = setTimeout(resolve, TUNNEL_DRAIN_MS))),
    ]);
    clearTimeout(timer);
    for (const tunnel of this.#tunnels) tunnel.close();
    if (started.dir) await Deno.remove(started.dir, { recursive: true }).catch(() => {});
  }
}

/** How long tunnels get to pass on the end of their answers once Deno.serve has stopped. */
const TUNNEL_DRAIN_MS = 5_000;

/** Bytes read at a time through an HTTP/1.1 pipe, in each direction. */
const PIPE_BUFFER_BYTES = 16 * 1024;

/** One client piped to `Deno.serve`. */
interface Tunnel {
  /** Whether the first request's head has passed (the header deadline is off). */
  headDone: boolean;
  /** Closes both ends. */
  close: () => void;
  /** Resolves once both directions have ended. */
  done: Promise<void>;
}

/**
 * Finds the end of the first HTTP/1.1 request head (request line, headers, then an empty
 * line) in bytes given piece by piece. Bare LF line ends count too (RFC 9112, 2.2), and
 * empty lines before the request line are skipped.
 */
class HeadEnd {
  #lineLength = 0;
  #sawLine = false;

  /** Whether the head ends within `bytes`, given after everything given before. */
  ends(bytes: Uint8Array): boolean {
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i];
      if (byte === 10) {
        if (this.#lineLength > 0) this.#sawLine = true;
        else if (this.#sawLine) return true;
        this.#lineLength = 0;
      } else if (byte !== 13) {
        this.#lineLength++;
      }
    }
    return false;
  }
}

async function writeAll(stream: ByteStream, bytes: Uint8Array): Promise<void> {
  while (bytes.length > 0) bytes = bytes.subarray(await stream.write(bytes));
}

/**
 * A universal request over a Deno.serve request. The body stream and the call's signal
 * are made only if the call asks for them: most unary calls need neither, and each
 * costs time on every call. A class, not an object literal with getters: one
 * allocation per call, and objects of one shape.
 */
class ServeRequest {
  readonly httpVersion = "";
  readonly method: string;
  readonly url: string;
  readonly header: Headers;
  readonly #request: Request;
  readonly #info: Deno.ServeHandlerInfo;
  #body?: AsyncIterable<Uint8Array>;
  #signal?: AbortSignal;

  constructor(request: Request, info: Deno.ServeHandlerInfo) {
    this.#request = request;
    this.#info = info;
    this.method = request.method;
    this.url = request.url;
    this.header = request.headers;
  }

  get body(): AsyncIterable<Uint8Array> {
    return (this.#body ??= bytesOf(this.#request.body));
  }

  get signal(): AbortSignal {
    if (!this.#signal) {
      const call = new AbortController();
      this.#info.completed.then(
        () => call.abort(),
        (error) => call.abort(error),
      );
      this.#signal = call.signal;
    }
    return this.#signal;
  }

  [readWholeBody](_limit: number): Promise<Uint8Array> | undefined {
    // Only a declared length (checked against the limit by the caller, and held to by
    // Deno's HTTP stack) makes reading it all at once safe; else connect-es reads it.
    return this.header.has("content-length") ? this.#request.bytes() : undefined;
  }
}

async function* bytesOf(
  body: ReadableStream<Uint8Array> | null,
): AsyncIterable<Uint8Array> {
  if (body) yield* body;
}

/** Turns Deno's permission error into one that names the missing flag. */
function explainPermission(error: unknown, flag: string, what: string): unknown {
  if (error instanceof Deno.errors.NotCapable) {
    // Deno names the flag it wants, and that can differ from the expected one (a unix
    // socket's connect asks for --allow-net in Deno 2.9): its word wins.
    const asked = /run again with the (--allow-[a-z]+) flag/.exec(error.message)?.[1];
    return new Error(
      `permission denied: run Deno with ${asked ?? flag} to ${what} (${error.message})`,
      { cause: error },
    );
  }
  return error;
}

/**
 * Listens on `address`: TCP (with TCP_NODELAY on every connection) or a unix socket,
 * bound under a private staging name, made 0600 and only then moved into place, so that
 * no client ever finds it with a wider mode. A failure names the address (and the flag,
 * when a permission is missing) and leaves nothing listening.
 *
 * @example
 * ```ts
 * import { connectSocket, listen } from "./deno.ts";
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
  if (address.kind === "tcp") {
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({ hostname: address.hostname, port: address.port });
    } catch (error) {
      throw listenError(error, "--allow-net", where);
    }
    return new DenoListener(listener, { ...address, port: listener.addr.port });
  }
  // A socket file left by an earlier run would make the bind fail.
  await Deno.remove(address.path).catch(() => {});
  const staging = `${address.path}~`;
  await Deno.remove(staging).catch(() => {});
  let listener: Deno.UnixListener;
  try {
    listener = Deno.listen({ transport: "unix", path: staging });
  } catch (error) {
    throw listenError(error, "--allow-read and --allow-write", where);
  }
  try {
    await Deno.chmod(staging, 0o600);
    await Deno.rename(staging, address.path);
  } catch (error) {
    // Left open, the listener would hold the process open, listening where no client looks.
    listener.close();
    await Deno.remove(staging).catch(() => {});
    if (error instanceof Deno.errors.NotCapable) {
      throw explainPermission(error, "--allow-read and --allow-write", `listen on ${where}`);
    }
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot put the socket in place at ${where}: ${reason}`, { cause: error });
  }
  return new DenoListener(listener, address);
}

function listenError(error: unknown, flag: string, where: string): unknown {
  if (error instanceof Deno.errors.NotCapable) {
    return explainPermission(error, flag, `listen on ${where}`);
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new Error(`cannot listen on ${where}: ${reason}`, { cause: error });
}

/** A Deno listener as a {@linkcode Listener}. */
class DenoListener implements Listener {
  readonly address: BindAddress;
  readonly #listener: Deno.Listener;
  #closed = false;

  constructor(listener: Deno.Listener, address: BindAddress) {
    this.#listener = listener;
    this.address = address;
  }

  async accept(): Promise<ByteStream | null> {
    if (this.#closed) return null;
    let conn: Deno.Conn;
    try {
      conn = await this.#listener.accept();
    } catch (error) {
      if (this.#closed) return null;
      throw error;
    }
    if (this.#closed) {
      conn.close();
      return null;
    }
    // Nagle would hold a small answer back until the client's ACK of the last one.
    if (this.address.kind === "tcp") (conn as Deno.TcpConn).setNoDelay(true);
    return new DenoStream(conn);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    if (this.address.kind === "unix") {
      try {
        Deno.removeSync(this.address.path);
      } catch {
        // Gone already, or never ours to remove.
      }
    }
  }
}

/**
 * A Deno connection as a {@linkcode ByteStream} whose `close()` may be called more than
 * once and ends a pending read with `null` (Deno's own rejects it).
 */
class DenoStream implements ByteStream {
  readonly #conn: Deno.Conn;
  #closed = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async read(into: Uint8Array): Promise<number | null> {
    if (this.#closed) return null;
    try {
      return await this.#conn.read(into);
    } catch (error) {
      if (this.#closed) return null;
      throw error;
    }
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Error("the connection is closed"));
    return this.#conn.write(bytes);
  }

  /** Ends the sending side: the peer reads the end, and may still answer. */
  closeWrite(): void {
    if (this.#closed) return;
    this.#conn.closeWrite().catch(() => {});
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // The peer's reset can close it first.
    }
  }
}

/**
 * Connects to a TCP address (with TCP_NODELAY) or a unix socket.
 *
 * @example
 * ```ts
 * import { connectSocket } from "./deno.ts";
 * // Nothing listens on port 1.
 * const refused = await connectSocket({ hostname: "127.0.0.1", port: 1 }).then(
 *   () => false,
 *   () => true,
 * );
 * console.assert(refused);
 * ```
 */
export async function connectSocket(target: SocketTarget): Promise<ByteStream> {
  if ("path" in target) {
    try {
      return new DenoStream(await Deno.connect({ transport: "unix", path: target.path }));
    } catch (error) {
      throw explainPermission(error, "--allow-read and --allow-write", `connect to ${target.path}`);
    }
  }
  try {
    const conn = await Deno.connect({ hostname: target.hostname, port: target.port });
    conn.setNoDelay(true);
    return new DenoStream(conn);
  } catch (error) {
    const where = `${target.hostname}:${target.port}`;
    throw explainPermission(error, "--allow-net", `connect to ${where}`);
  }
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Another process can take it
 * before the caller binds it: the race every "find a free port" helper has.
 */
export function allocatePort(): Promise<number> {
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  } catch (error) {
    return Promise.reject(explainPermission(error, "--allow-net", "find a free port"));
  }
  const { port } = listener.addr;
  listener.close();
  return Promise.resolve(port);
}

/**
 * Starts a process in a new process group (and session), stdin closed and
 * stdout/stderr piped, so that signalling the group reaches its children too.
 */
export function spawnChild(options: SpawnChildOptions): Promise<Child> {
  let process: Deno.ChildProcess;
  try {
    process = new Deno.Command(options.exe, {
      args: [...options.args],
      env: options.env,
      clearEnv: true,
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return Promise.reject(
        new Error(`cannot run ${options.exe}: no such file or directory`, { cause: error }),
      );
    }
    return Promise.reject(explainPermission(error, "--allow-run", `run ${options.exe}`));
  }
  return Promise.resolve({
    pid: process.pid,
    stdout: process.stdout,
    stderr: process.stderr,
    exited: process.status.then((s) => ({
      code: s.signal === null ? s.code : null,
      signal: s.signal,
    })),
  });
}

/** Sends `signal` to every process in group `pgid`; false if there was none left. */
export function signalGroup(pgid: number, signal: "SIGTERM" | "SIGKILL"): boolean {
  return signalPid(-pgid, signal);
}

/** Sends `signal` to `pid`; false if there is no such process. */
export function signalPid(pid: number, signal: "SIGTERM" | "SIGKILL"): boolean {
  try {
    Deno.kill(pid, signal);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw explainPermission(error, "--allow-run", `signal process ${pid}`);
  }
}

/**
 * The command line of a live process, its arguments joined by spaces (as `ps` shows
 * them), or undefined if it is gone; throws when it cannot tell. Deno 2.9 lets only
 * `--allow-all` read another process's /proc/<pid>/cmdline, so without it `ps` is
 * asked, which `--allow-run` covers.
 */
export async function processCommandLine(pid: number): Promise<string | undefined> {
  try {
    const raw = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    if (raw === "") return undefined; // a zombie has no command line
    return raw.replace(/\0$/, "").replaceAll("\0", " ");
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    if (
      !(error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied)
    ) throw error;
  }
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("ps", {
      args: ["-ww", "-o", "args=", "-p", String(pid)],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
  } catch (error) {
    throw explainPermission(error, "--allow-run", `ask ps what process ${pid} runs`);
  }
  const text = new TextDecoder().decode(output.stdout).trim();
  // ps exits 1 and prints nothing when there is no such process.
  return output.success && text !== "" ? text : undefined;
}

/** The real path of `path`, or `path` itself if it cannot be resolved. */
export async function realPath(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return path;
  }
}

/** Creates `path` (and parents) with `mode` if missing, and sets its mode. */
export async function makeDirectory(path: string, mode: number): Promise<void> {
  try {
    await Deno.mkdir(path, { recursive: true, mode });
    await Deno.chmod(path, mode);
  } catch (error) {
    throw explainPermission(error, "--allow-write", `create ${path}`);
  }
}

/** Reads a text file, or undefined if it does not exist. */
export async function readTextFile(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw explainPermission(error, "--allow-read", `read ${path}`);
  }
}

/** Writes a text file. */
export async function writeTextFile(path: string, text: string): Promise<void> {
  try {
    await Deno.writeTextFile(path, text);
  } catch (error) {
    throw explainPermission(error, "--allow-write", `write ${path}`);
  }
}

/** Removes a file if it exists. */
export async function removeFile(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw explainPermission(error, "--allow-write", `remove ${path}`);
  }
}

/**
 * Writes a file only its owner can read (mode 0600), replacing any file at `path`:
 * removed first, then created anew, so that an old file's wider mode (or a link put
 * there) is never reused.
 */
export async function writeSecretFile(path: string, text: string): Promise<void> {
  try {
    await removeFile(path);
    await Deno.writeTextFile(path, text, { createNew: true, mode: 0o600 });
  } catch (error) {
    throw explainPermission(error, "--allow-write", `write ${path}`);
  }
}

/** This package's version: deno.json's, the one source the npm build copies too. */
export function packageVersion(): string {
  return denoConfig.version;
}

/** All of stdin as text (for a CLI reading a message from a pipe). */
export async function readStdinText(): Promise<string> {
  return await new Response(Deno.stdin.readable).text();
}

/** Whether the module with this `import.meta` is the program being run. */
export function isMainModule(meta: ImportMeta): boolean {
  // Not Deno.mainModule: under `deno test` that is the module being tested.
  return meta.main === true;
}

/** Whether stdout is a terminal. */
export function stdoutIsTerminal(): boolean {
  return Deno.stdout.isTerminal();
}
