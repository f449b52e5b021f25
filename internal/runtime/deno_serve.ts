/**
 * `Deno.serve` as the guest's server: alone for `server: "native"` (Connect and gRPC-Web
 * over HTTP/1.1 and h2c; no trailers, so no gRPC; no header timeout), and the request
 * and response adapters the HTTP/1.1 backend behind the engine shares with it.
 *
 * `Deno.serve`'s handler never sees `request.signal`: reading it makes Deno print a
 * one-time warning, so the per-call signal comes from the handler info's `completed`
 * promise.
 *
 * @module
 */
import { universalServerResponseToFetch } from "@connectrpc/connect/protocol";
import { type LeanRequest, plainHeadersOf, readWholeBody, wholeBodyOf } from "./lean_contract.ts";
import { explainPermission } from "./deno_permission.ts";
import { addressText, bindUnixSocket, UNIX_FLAGS } from "./deno_socket.ts";
import type { HttpServer, ServeHttpOptions, SwitchedServe } from "./types.ts";

/**
 * `Deno.serve` alone on `options.address`: it tells h2c from HTTP/1.1 itself, so the
 * first-bytes switch (`_switched`) is not needed. `options.headerTimeoutMs` is not
 * honoured: Deno.serve has no setting for it (see docs/RELIABILITY.md).
 *
 * @example
 * ```ts
 * import { serveNative } from "./deno_serve.ts";
 *
 * const server = await serveNative({
 *   address: { kind: "tcp", hostname: "127.0.0.1", port: 0 },
 *   handler: () => Promise.resolve({ status: 204 }),
 *   onError: (error) => console.error(error),
 *   headerTimeoutMs: 10_000,
 * }, () => Promise.reject(new Error("not used on Deno")));
 * await server.shutdown();
 * ```
 */
export async function serveNative(
  options: ServeHttpOptions,
  _switched: SwitchedServe,
): Promise<HttpServer> {
  const { address } = options;
  // The router refuses gRPC itself, with a message that says why.
  const handler = fetchHandler(options, false);
  const common = serveOptions(options);
  try {
    if (address.kind === "unix") {
      const server = await bindUnixSocket(
        address.path,
        (path) => Deno.serve({ ...common, path }, handler),
        (server) => server.shutdown(),
      );
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
    const flag = address.kind === "unix" ? UNIX_FLAGS : "--allow-net";
    throw explainPermission(error, flag, `listen on ${addressText(address)}`);
  }
}

/**
 * `options.handler` as a `Deno.serve` handler. Behind the engine it sees only HTTP/1.1,
 * where `refuseGrpc` answers gRPC at once: the router, told the engine sends trailers,
 * would answer it with trailers that Deno.serve drops.
 */
export function fetchHandler(options: ServeHttpOptions, refuseGrpc: boolean): Deno.ServeHandler {
  return async (request, info) => {
    if (refuseGrpc && isGrpcRequest(request.headers)) return grpcNeedsHttp2();
    const response = await options.handler(
      new ServeRequest(request, info) as unknown as LeanRequest,
    );
    const whole = wholeBodyOf(response.body);
    if (whole) {
      const plain = plainHeadersOf(response.header);
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

/** The `Deno.serve` options every server here shares: silent, errors to `options.onError`. */
export function serveOptions(options: ServeHttpOptions): {
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
