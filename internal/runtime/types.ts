/**
 * The shapes both runtime adapters (`deno.ts`, `node.ts`) implement: host and guest
 * code depends on these, never on a runtime.
 *
 * @module
 */
import type { UniversalClientFn, UniversalHandlerFn } from "@connectrpc/connect/protocol";
import type { BindAddress } from "../bind.ts";
import type { PostBytes } from "../fast_client.ts";

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
   * milliseconds is closed (slowloris). Deno.serve offers no such setting; it is
   * honoured where the runtime allows.
   */
  headerTimeoutMs: number;
}

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
 * How a child process ended.
 *
 * @example
 * ```ts
 * import type { ProcessExit } from "./types.ts";
 * const killed: ProcessExit = { code: null, signal: "SIGKILL" };
 * ```
 */
export interface ProcessExit {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null when it exited. */
  signal: string | null;
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
