/**
 * The shapes both runtime adapters (`deno.ts`, `node.ts`) implement: host and guest
 * code depends on these, never on a runtime. Like everything in `internal/runtime/`, it
 * imports nothing from above the seam.
 *
 * @module
 */
import type { UniversalClientFn, UniversalHandlerFn } from "@connectrpc/connect/protocol";

/**
 * Where a guest listens, parsed from a bind URL (`internal/bind.ts`).
 *
 * @example
 * ```ts
 * import type { BindAddress } from "./types.ts";
 * const address: BindAddress = { kind: "tcp", hostname: "127.0.0.1", port: 0 };
 * ```
 */
export type BindAddress =
  | {
    /** TCP, as FTL's Go code always uses. */
    kind: "tcp";
    /** Host name or IP literal (IPv6 without brackets). */
    hostname: string;
    /** TCP port; 0 asks the system for a free one. */
    port: number;
  }
  | {
    /** A unix domain socket. */
    kind: "unix";
    /** The socket's absolute path. */
    path: string;
  };

/** What `serveHttp` needs. */
export interface ServeHttpOptions {
  /** Where to listen: TCP host and port (0 = any free port), or a unix socket (mode 0600). */
  address: BindAddress;
  /** Answers every request. */
  handler: UniversalHandlerFn;
  /** Called when answering a request failed; the client gets a 500. */
  onError: (error: unknown) => void;
  /**
   * A connection whose first request's headers have not all arrived within this many
   * milliseconds is closed (slowloris). The native Deno.serve server offers no such
   * setting and does not honour it; every other server does.
   */
  headerTimeoutMs: number;
  /**
   * Which server answers: the project's HTTP/2 engine (HTTP/1.1 handed to the runtime's
   * own server), or the runtime's native one. Default: {@linkcode HttpServerKind}.
   */
  server?: HttpServerKind;
}

/**
 * Which HTTP server a guest runs:
 *
 * - `"engine"`: the project's own HTTP/2 engine (`internal/http2/`) answers h2c, which
 *   sends trailers, so gRPC is served; connections that start as HTTP/1.1 go to the
 *   runtime's own HTTP/1.1 server. The default on Deno and Node.
 * - `"native"`: the runtime's server alone: `Deno.serve` on Deno (no trailers: gRPC is
 *   refused UNIMPLEMENTED), node:http2 and node:http on Node.
 *
 * @example
 * ```ts
 * import type { HttpServerKind } from "./types.ts";
 * const kind: HttpServerKind = "engine";
 * ```
 */
export type HttpServerKind = "engine" | "native";

/** Where {@linkcode Listener}s listen and `connectSocket` connects: TCP or a unix socket. */
export type SocketTarget = { hostname: string; port: number } | { path: string };

/**
 * A listening socket that hands out its connections one at a time, as byte streams.
 *
 * @example
 * ```ts
 * import type { Listener } from "./types.ts";
 * // A listener that was closed before anyone connected.
 * const closed: Listener = {
 *   address: { kind: "tcp", hostname: "127.0.0.1", port: 8123 },
 *   accept: () => Promise.resolve(null),
 *   close: () => {},
 * };
 * console.assert((await closed.accept()) === null);
 * ```
 */
export interface Listener {
  /** Where it listens, with the real port when 0 was asked for. */
  readonly address: BindAddress;
  /** The next connection; `null` once the listener is closed. */
  accept(): Promise<ByteStream | null>;
  /**
   * Stops listening: pending and later `accept()` calls give `null`, connections not
   * yet accepted are closed, and a unix socket's file is removed.
   */
  close(): void;
}

/**
 * A server that is handed connections someone else accepted, each with the first bytes
 * already read from it: the HTTP/1.1 backends, node:http2, and the engine behind the
 * first-bytes switch (`internal/server/serve.ts`).
 *
 * @example
 * ```ts
 * import type { ConnectionServer } from "./types.ts";
 * // Refuses every connection.
 * const refusing: ConnectionServer = {
 *   serve: (socket, _first, deadline) => {
 *     clearTimeout(deadline);
 *     socket.close();
 *   },
 *   shutdown: () => Promise.resolve(),
 * };
 * ```
 */
export interface ConnectionServer {
  /**
   * Serves `socket`, whose first bytes (read from it already) were `first`. `deadline`
   * closes the socket unless cleared: the server clears it once the first request's
   * head is in (its own timeouts take over).
   */
  serve(socket: ByteStream, first: Uint8Array, deadline: ReturnType<typeof setTimeout>): void;
  /** Stops: requests in flight finish; resolves once every connection it had is closed. */
  shutdown(): Promise<void>;
}

/**
 * Serves `options.address` behind the first-bytes switch, h2c going to `http2` and
 * HTTP/1.1 to the runtime's HTTP/1.1 backend: what `internal/server/serve.ts` gives a
 * runtime whose native server cannot tell the two apart by itself (node:http2).
 */
export type SwitchedServe = (
  options: ServeHttpOptions,
  http2: ConnectionServer,
) => Promise<HttpServer>;

/** A listening HTTP server. */
export interface HttpServer {
  /** Where the server listens (with the chosen port when 0 was asked for). */
  readonly address: BindAddress;
  /** Stops accepting and resolves once every in-flight request has finished. */
  shutdown(): Promise<void>;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
}

/**
 * How a process ended. Both null: it ended, but how is not known (a process that is
 * not this one's child, such as an attached plugin, cannot be waited on).
 *
 * @example
 * ```ts
 * import type { ProcessExit } from "./types.ts";
 * const killed: ProcessExit = { code: null, signal: "SIGKILL" };
 * const unknown: ProcessExit = { code: null, signal: null };
 * ```
 */
export interface ProcessExit {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null when it exited. */
  signal: string | null;
}

/** What `processInfo` tells of a live process (not a zombie). */
export interface ProcessInfo {
  /** Its parent's pid. */
  parent: number;
  /** Its process group id. */
  group: number;
  /** When it started, as text that differs between two processes given one pid. */
  started: string;
  /** Its arguments joined by spaces, as `ps` shows them. */
  commandLine: string;
}

/** A child process started by `spawnChild`. */
export interface Child {
  /** Its pid, which is also its process group id. */
  readonly pid: number;
  /** Its stdout. */
  readonly stdout: ReadableStream<Uint8Array>;
  /** Its stderr. */
  readonly stderr: ReadableStream<Uint8Array>;
  /** Resolves once it has exited and been reaped. */
  readonly exited: Promise<ProcessExit>;
}

/** What `spawnChild` starts. */
export interface SpawnChildOptions {
  /** The executable. */
  exe: string;
  /** Its arguments. */
  args: readonly string[];
  /** Its whole environment. */
  env: Record<string, string>;
  /** Its working directory. */
  cwd: string;
}

/** Sends one POST with a whole body and reads the whole answer. */
export type PostBytes = (
  url: string,
  header: Record<string, string>,
  body: Uint8Array,
  signal: AbortSignal | undefined,
) => Promise<PostAnswer>;

/** What a {@linkcode PostBytes} gives back. */
export interface PostAnswer {
  /** The HTTP status. */
  status: number;
  /** The response headers. */
  header: Headers;
  /** The whole response body. */
  body: Uint8Array;
  /** The HTTP trailers, where the answer had any. */
  trailer?: Headers;
  /** The header names, where the runtime has them without filling `header`. */
  headerNames?: () => Iterable<string>;
}

/** An HTTP client for one plugin, and the means to drop its connections. */
export interface PluginHttpClient {
  /** Sends requests; connect's protocol transports are built on it. */
  readonly client: UniversalClientFn;
  /** Drops every connection at once (no GOAWAY dance). */
  close(): void;
  /** A whole-body POST, where the runtime has a faster way than `client`. */
  readonly post?: PostBytes;
  /** Whether `post` gives the answer's HTTP trailers (which gRPC needs). */
  readonly postTrailers?: boolean;
}

/**
 * A connected byte stream, as `Deno.Conn` is one (node:net sockets are adapted by
 * `node_socket.ts`).
 *
 * @example
 * ```ts
 * import type { ByteStream } from "./types.ts";
 * // A stream that has already ended.
 * const ended: ByteStream = {
 *   read: () => Promise.resolve(null),
 *   write: (bytes) => Promise.resolve(bytes.length),
 *   close: () => {},
 * };
 * console.assert((await ended.read(new Uint8Array(1))) === null);
 * ```
 */
export interface ByteStream {
  /** Reads into `into`; `null` at the end of the stream. */
  read(into: Uint8Array): Promise<number | null>;
  /** Writes some of `bytes`; resolves how many. */
  write(bytes: Uint8Array): Promise<number>;
  /** Closes the stream; a pending read ends. */
  close(): void;
}
