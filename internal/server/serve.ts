/**
 * The guest's HTTP server, put together from runtime-neutral parts above the seam:
 * listen, read each connection's first bytes, hand the HTTP/2 preface to the engine
 * (`createH2Server`) and HTTP/1.1 to the runtime's HTTP/1.1 backend, close a connection
 * that ends before it says which, and shut all of it down gracefully. `server: "native"`
 * asks the runtime for its own server instead (`Deno.serve`; node:http2, which is put
 * behind this same switch).
 *
 * @module
 */
import { createH2Server } from "../http2/server_universal.ts";
import { type FirstBytes, readFirstBytes } from "../http2/preface.ts";
import { createHttp1Server, listen, serveNative } from "#runtime";
import type {
  ByteStream,
  ConnectionServer,
  HttpServer,
  HttpServerKind,
  ServeHttpOptions,
} from "../runtime/types.ts";

/** The server {@linkcode serveHttp} runs when not told: the engine, which answers gRPC too. */
export const defaultServer: HttpServerKind = "engine";

/**
 * Serves h2c (prior knowledge) and HTTP/1.1 on one address, with the server
 * `options.server` names (default {@linkcode defaultServer}).
 *
 * @example
 * ```ts
 * import { serveHttp } from "./serve.ts";
 *
 * const server = await serveHttp({
 *   address: { kind: "tcp", hostname: "127.0.0.1", port: 0 },
 *   handler: () => Promise.resolve({ status: 204 }),
 *   onError: (error) => console.error(error),
 *   headerTimeoutMs: 10_000,
 * });
 * if (server.address.kind !== "tcp") throw new Error("a TCP address");
 * const response = await fetch(`http://127.0.0.1:${server.address.port}/`);
 * console.assert(response.status === 204);
 * await server.shutdown();
 * ```
 */
export function serveHttp(options: ServeHttpOptions): Promise<HttpServer> {
  return (options.server ?? defaultServer) === "engine"
    ? serveSwitched(options, engineServer(options))
    : serveNative(options, serveSwitched);
}

/** The engine as a {@linkcode ConnectionServer}: its own header timeout takes over at once. */
function engineServer(options: ServeHttpOptions): ConnectionServer {
  const engine = createH2Server({
    handler: options.handler,
    onError: options.onError,
    headerTimeoutMs: options.headerTimeoutMs,
  });
  return {
    serve(socket, first, deadline) {
      clearTimeout(deadline);
      void engine.serve(socket, first);
    },
    shutdown: () => engine.shutdown(),
  };
}

/**
 * `http2` behind a first-bytes switch, HTTP/1.1 going to the runtime's backend. The
 * header timeout runs from accept: until the preface is in for HTTP/2 (the server then
 * starts its own, for the first request's header block), until the first request's head
 * has passed for HTTP/1.1.
 */
async function serveSwitched(
  options: ServeHttpOptions,
  http2: ConnectionServer,
): Promise<HttpServer> {
  // `http2` holds nothing yet that a failure here would leave behind.
  const listener = await listen(options.address);
  const http1 = createHttp1Server(options, listener.address);
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
      http2.serve(socket, first.bytes, deadline);
    } else {
      http1.serve(socket, first.bytes, deadline);
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
        await Promise.all([accepting, http2.shutdown(), http1.shutdown()]);
        markFinished();
      })(),
  };
}

/**
 * Whether `promise` settles within `ms`; never leaves a timer behind. A server's
 * wind-down (its calls draining, its shutdown) is waited for this way, bounded: a call
 * that ignores cancellation must not hold a stop forever.
 *
 * @param promise What to wait for; its rejection counts as settling.
 * @param ms How long to wait.
 * @returns True if it settled in time.
 * @example
 * ```ts
 * import { settledWithin } from "./serve.ts";
 * console.assert(await settledWithin(Promise.resolve(), 10));
 * console.assert(!(await settledWithin(new Promise(() => {}), 10)));
 * ```
 */
export async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
