/**
 * The HTTP/2 engine's server role: accepted connections, each a server-role
 * {@linkcode Connection}, with their timeouts and limits, graceful shutdown (GOAWAY
 * NO_ERROR, in-flight streams finish) and an immediate close. What a stream is
 * answered with is the caller's (`onStream`); `server_universal.ts` answers it with a
 * connect-es handler.
 *
 * @module
 */
import type { ByteStream } from "../runtime/types.ts";
import { Connection, type ConnectionOptions } from "./connection.ts";
import { Http2Error } from "./errors.ts";
import { NO_ERROR } from "./frames.ts";
import type { H2Stream } from "./stream.ts";

/**
 * Limits and settings of every connection a server takes; see
 * {@linkcode ConnectionOptions} for each.
 *
 * @example
 * ```ts
 * import type { ServerLimits } from "./server.ts";
 * const limits: ServerLimits = { headerTimeoutMs: 10_000, maxConcurrentStreams: 100 };
 * ```
 */
export type ServerLimits = Omit<
  ConnectionOptions,
  "role" | "prefix" | "onStream" | "onGoAway" | "onCapacity"
>;

/**
 * What an {@linkcode H2ConnectionServer} needs.
 *
 * @example
 * ```ts
 * import type { H2ConnectionServerOptions } from "./server.ts";
 * const options: H2ConnectionServerOptions = {
 *   headerTimeoutMs: 10_000,
 *   onStream: (stream) => stream.sendHeaders([":status", "204"], true),
 * };
 * ```
 */
export interface H2ConnectionServerOptions extends ServerLimits {
  /**
   * Answers a stream the peer opened (its head is valid). A promise keeps the
   * connection's `serve()` pending until it settles; it should not reject.
   */
  onStream: (stream: H2Stream) => Promise<void> | void;
}

/**
 * Serves HTTP/2 connections handed to it, and stops them all.
 *
 * @example
 * ```ts
 * import { H2ConnectionServer } from "./server.ts";
 * const server = new H2ConnectionServer({
 *   headerTimeoutMs: 1_000,
 *   onStream: (stream) => stream.sendHeaders([":status", "204"], true),
 * });
 * console.assert(server.connections === 0);
 * await server.shutdown();
 * ```
 */
export class H2ConnectionServer {
  readonly #options: H2ConnectionServerOptions;
  readonly #live = new Map<Connection, Promise<void>>();
  #stopping = false;

  /** A server with no connection yet: `serve()` hands it each one. */
  constructor(options: H2ConnectionServerOptions) {
    this.#options = options;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#live.size;
  }

  /**
   * Serves one accepted connection; `prefix` holds bytes the caller already read from
   * it. Resolves once it is closed and its stream handlers have finished; never rejects.
   */
  serve(socket: ByteStream, prefix: Uint8Array): Promise<void> {
    let running = 0;
    let idle: (() => void) | undefined;
    const onStream = this.#options.onStream;
    const finished = () => {
      if (--running === 0 && idle) idle();
    };
    const connection = new Connection(socket, {
      ...this.#options,
      idleTimeoutMs: this.#options.idleTimeoutMs ?? 300_000,
      role: "server",
      prefix,
      onStream: (stream) => {
        const result = onStream(stream);
        if (result instanceof Promise) {
          running++;
          result.then(finished, finished);
        }
      },
    });
    if (this.#stopping) connection.goAway(NO_ERROR, "shutting down");
    const done = connection.closed
      .then(() => running === 0 ? undefined : new Promise<void>((resolve) => (idle = resolve)))
      .finally(() => this.#live.delete(connection));
    this.#live.set(connection, done);
    return done;
  }

  /**
   * Graceful: GOAWAY (NO_ERROR) on every connection, new streams refused, streams in
   * flight finish, each connection closes once idle. Resolves when all are closed.
   */
  async shutdown(): Promise<void> {
    this.#stopping = true;
    for (const connection of this.#live.keys()) connection.goAway(NO_ERROR, "shutting down");
    await Promise.all(this.#live.values());
  }

  /** Closes every connection now; stream handlers see their signal abort. */
  close(): void {
    this.#stopping = true;
    for (const connection of this.#live.keys()) {
      connection.close(new Http2Error("the server closed", NO_ERROR, { connection: true }));
    }
  }
}
