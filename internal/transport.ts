/**
 * Connect transports to a plugin, built from connect-es's protocol implementations on
 * the runtime's HTTP client (the project's HTTP/2 engine, for every call and protocol),
 * so that the host can see every response (to tell a pure gRPC server) and fail calls
 * fast once the plugin is gone.
 *
 * @module
 */
import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import {
  type CommonTransportOptions,
  readAllBytes,
  type UniversalClientFn,
} from "@connectrpc/connect/protocol";
import { createTransport as createConnect } from "@connectrpc/connect/protocol-connect";
import { createTransport as createGrpc } from "@connectrpc/connect/protocol-grpc";
import { createTransport as createGrpcWeb } from "@connectrpc/connect/protocol-grpc-web";
import { leanConnectUnary, leanGrpcUnary, type PostBytes } from "./lean/unary_client.ts";
import { leanServerStream } from "./lean/stream_client.ts";
import type { H2ClientTimeouts } from "./http2/client.ts";
import { openEngineHttpClient } from "./http2/client_universal.ts";
import { once, rethrowing } from "./iterables.ts";
import { connectSocket } from "#runtime";
import type { SocketTarget } from "./runtime/types.ts";

/**
 * The wire protocol a host uses to call a plugin.
 *
 * @example
 * ```ts
 * import type { WireProtocol } from "./transport.ts";
 * const forGoGuests: WireProtocol = "grpc";
 * ```
 */
export type WireProtocol = "connect" | "grpc" | "grpc-web";

/** A transport to one plugin and the means to close its connections. */
export interface PluginTransport {
  /** The Connect transport clients are made on. */
  readonly transport: Transport;
  /** Drops every connection at once; later calls fail UNAVAILABLE. Idempotent. */
  close(): void;
}

/** Largest response message a host accepts, as gRPC's default. */
const READ_MAX_BYTES = 4 * 1024 * 1024;

/**
 * A transport to `baseUrl` speaking `protocol` over h2c. `onResponse` sees the status
 * and content type of every HTTP response.
 */
export function createPluginTransport(
  endpoint: URL,
  protocol: WireProtocol,
  options: {
    onResponse?: (status: number, contentType: string) => void;
    /** Sent as `authorization: Bearer <token>` on every call. */
    token?: string;
    /** The HTTP/2 client's keepalive, wait and idle bounds (defaults: see H2ClientOptions). */
    timeouts?: H2ClientTimeouts;
    /** Who answers, in UNAVAILABLE messages (`plugin at …`). */
    peer?: string;
  } = {},
): PluginTransport {
  const { onResponse } = options;
  // Over a unix socket the URL's host is only a name: requests go to the socket.
  const socketPath = endpoint.protocol === "unix:"
    ? decodeURIComponent(endpoint.pathname)
    : undefined;
  const baseUrl = socketPath ? new URL("http://localhost") : endpoint;
  // Every call, unary or streaming, goes through the engine's client on a socket the
  // runtime opens (TCP_NODELAY on).
  const target: SocketTarget = socketPath ? { path: socketPath } : {
    hostname: baseUrl.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: Number(baseUrl.port || 80),
  };
  const http = openEngineHttpClient({
    ...options.timeouts,
    connect: () => connectSocket(target),
    authority: socketPath ? "localhost" : baseUrl.host,
  });
  let closed = false;
  const unavailable = (detail: string, cause?: unknown) =>
    new ConnectError(
      `${options.peer ?? "plugin"} at ${socketPath ?? baseUrl.host}: ${detail}`,
      Code.Unavailable,
      undefined,
      undefined,
      cause,
    );
  // Refused, reset or closed under us: the plugin is not there to answer. (A stream the
  // plugin reset with CANCEL is not the caller's cancellation: only the caller's own
  // signal makes a call CANCELED.)
  const asUnavailable = (error: unknown, signal?: AbortSignal): unknown => {
    if (signal?.aborted) return error;
    if (error instanceof ConnectError && error.code !== Code.Canceled) return error;
    return unavailable(error instanceof Error ? error.message : String(error), error);
  };
  const httpClient: UniversalClientFn = async (request) => {
    if (closed) throw unavailable("its connection is closed");
    let response;
    try {
      response = await http.client(request);
    } catch (error) {
      throw asUnavailable(error, request.signal);
    }
    onResponse?.(response.status, response.header.get("content-type") ?? "");
    return {
      ...response,
      body: rethrowing(response.body, (error) => asUnavailable(error, request.signal)),
    };
  };
  const transportOptions: CommonTransportOptions = {
    httpClient,
    baseUrl: baseUrl.href,
    useBinaryFormat: true,
    interceptors: options.token === undefined ? [] : [bearer(options.token)],
    acceptCompression: [],
    sendCompression: null,
    compressMinBytes: 1024,
    readMaxBytes: READ_MAX_BYTES,
    writeMaxBytes: 0xffffffff,
  };
  const create = { connect: createConnect, grpc: createGrpc, "grpc-web": createGrpcWeb }[protocol];
  let transport = create(transportOptions);
  const leanGrpc = protocol === "grpc" && http.post !== undefined && http.postTrailers === true;
  if (protocol === "connect" || leanGrpc) {
    const post: PostBytes = http.post ?? (async (url, header, body, signal) => {
      const response = await http.client({
        url,
        method: "POST",
        header: new Headers(header),
        body: once(body),
        signal,
      });
      return {
        status: response.status,
        header: response.header,
        body: await readAllBytes(
          response.body,
          READ_MAX_BYTES,
          response.header.get("content-length"),
        ),
      };
    });
    const unary = (leanGrpc ? leanGrpcUnary : leanConnectUnary)({
      baseUrl: baseUrl.href,
      post: (url, header, body, signal) => {
        if (closed) throw unavailable("its connection is closed");
        return post(url, header, body, signal);
      },
      token: options.token,
      onNoAnswer: asUnavailable,
      onResponse,
      readMaxBytes: READ_MAX_BYTES,
    });
    transport = { stream: transport.stream, unary: unary as Transport["unary"] };
  }
  if ((protocol === "connect" || protocol === "grpc") && http.postTrailers === true) {
    // The engine's client: server streams read its chunks straight (lean/stream_client.ts).
    const stream = leanServerStream({
      protocol,
      baseUrl: baseUrl.href,
      client: (request) => {
        if (closed) throw unavailable("its connection is closed");
        return http.client(request);
      },
      fallback: transport.stream,
      token: options.token,
      onNoAnswer: asUnavailable,
      onResponse,
      readMaxBytes: READ_MAX_BYTES,
    });
    transport = { stream, unary: transport.unary };
  }
  return {
    transport,
    close() {
      if (closed) return;
      closed = true;
      http.close();
    },
  };
}

/** Adds the plugin's token to every call. */
function bearer(token: string): Interceptor {
  const value = `Bearer ${token}`;
  return (next) => (request) => {
    request.header.set("authorization", value);
    return next(request);
  };
}

/**
 * A plugin's connection: one transport whose protocol may change under it. With
 * `auto` it speaks Connect and watches every answer; once one looks like a pure gRPC
 * server's ({@linkcode looksLikeGrpcServer}), the caller may switch it to gRPC, and
 * clients made on {@linkcode PluginConnection.transport} before the switch go on
 * working: that object's `unary` and `stream` are swapped for the new protocol's, so a
 * call costs what a call on the protocol's own transport does.
 *
 * @example The CLI's way: run once, and once more over gRPC if Connect was wrong
 * ```ts
 * import assert from "node:assert/strict";
 * import { createClient } from "@connectrpc/connect";
 * import { serve } from "../guest.ts";
 * import { EchoService } from "../gen/echo/v1/echo_pb.ts";
 * import { PluginConnection, randomToken } from "./transport.ts";
 *
 * const token = randomToken();
 * await using server = await serve({
 *   service: EchoService,
 *   bind: "http://127.0.0.1:0",
 *   token,
 *   implementation: {
 *     ping: () => ({}),
 *     echo: (req) => ({ message: req.message }),
 *     async *count() {},
 *     fail: () => ({}),
 *   },
 * });
 * const connection = new PluginConnection(server.url, { protocol: "auto", token });
 * try {
 *   const { message } = await connection.run((transport) =>
 *     createClient(EchoService, transport).echo({ message: "hi" })
 *   );
 *   assert.equal(message, "hi");
 *   // Our guests speak Connect: no reason to switch.
 *   assert.equal(connection.protocol, "connect");
 *   assert.equal(connection.switchedFrom, undefined);
 * } finally {
 *   connection.close();
 * }
 * ```
 * @example spawn()'s way: ask after each failed Ping whether to switch
 * ```ts
 * import assert from "node:assert/strict";
 * import { createClient } from "@connectrpc/connect";
 * import { EchoService } from "../gen/echo/v1/echo_pb.ts";
 * import { PluginConnection } from "./transport.ts";
 *
 * const connection = new PluginConnection(new URL("http://127.0.0.1:1"));
 * const client = createClient(EchoService, connection.transport);
 * try {
 *   await client.ping({});
 * } catch (error) {
 *   // Had Connect's answer said the plugin speaks only gRPC, `client` would speak gRPC
 *   // from here on; nothing listens there, so nothing answered at all.
 *   assert.ok(!connection.switchToGrpcIfDetected(), String(error));
 *   assert.equal(connection.protocol, "connect");
 * } finally {
 *   connection.close();
 * }
 * ```
 */
export class PluginConnection {
  /**
   * The transport to make clients on, token included. It stays the same object for the
   * connection's life: a switch to gRPC, a {@linkcode PluginConnection.repoint} or a
   * {@linkcode PluginConnection.suspend} replaces its methods.
   */
  readonly transport: Transport;
  #endpoint: URL;
  readonly #auto: boolean;
  readonly #token: string | undefined;
  #protocol: WireProtocol;
  #current: PluginTransport;
  #detected: string | undefined;
  #switchedFrom: string | undefined;
  #closed = false;

  /**
   * Opens a connection (the first call dials) to `endpoint`.
   *
   * @param endpoint The plugin's URL (`http://host:port` or `unix:///path`).
   * @param options `protocol` (`auto`, the default: Connect, watching for a pure gRPC
   * server), and `token`, sent as `authorization: Bearer <token>` on every call.
   */
  constructor(
    endpoint: URL,
    options: { protocol?: WireProtocol | "auto"; token?: string } = {},
  ) {
    const protocol = options.protocol || "auto";
    this.#endpoint = endpoint;
    this.#auto = protocol === "auto";
    this.#token = options.token;
    this.#protocol = protocol === "auto" ? "connect" : protocol;
    this.#current = this.#open();
    const { unary, stream } = this.#current.transport;
    this.transport = { unary, stream };
  }

  /** Where the plugin serves now: `http://host:port` or `unix:///path`. */
  get endpoint(): URL {
    return this.#endpoint;
  }

  /** The protocol calls go over now. */
  get protocol(): WireProtocol {
    return this.#protocol;
  }

  /**
   * What Connect got that looked like a pure gRPC server (`HTTP 415 application/grpc`,
   * say), while the connection still speaks Connect: a failure then most likely means
   * the wrong protocol rather than the plugin's answer. `undefined` otherwise.
   */
  get detected(): string | undefined {
    return this.#detected;
  }

  /** What Connect got that made the connection switch to gRPC; `undefined` if it did not. */
  get switchedFrom(): string | undefined {
    return this.#switchedFrom;
  }

  /**
   * Switches to gRPC if Connect's answers said the plugin speaks only that
   * ({@linkcode PluginConnection.detected}): the Connect connections are dropped and
   * {@linkcode PluginConnection.transport} speaks gRPC from now on.
   *
   * @returns Whether it switched.
   */
  switchToGrpcIfDetected(): boolean {
    const detected = this.#detected;
    if (detected === undefined || this.#closed || this.#protocol !== "connect") return false;
    this.#current.close();
    this.#protocol = "grpc";
    this.#switchedFrom = detected;
    this.#detected = undefined;
    this.#current = this.#open();
    this.#install(this.#current.transport);
    return true;
  }

  /**
   * Points the connection at `endpoint` (a restarted plugin's), keeping its protocol and
   * token: the old connections are dropped, so calls in flight on them fail UNAVAILABLE,
   * and every client made on {@linkcode PluginConnection.transport} calls the new
   * address from now on. Nothing once closed.
   *
   * @param endpoint The plugin's new URL.
   */
  repoint(endpoint: URL): void {
    if (this.#closed) return;
    this.#current.close();
    this.#endpoint = endpoint;
    this.#current = this.#open();
    this.#install(this.#current.transport);
  }

  /**
   * Drops every connection and fails calls at once with UNAVAILABLE and `reason` until
   * {@linkcode PluginConnection.repoint}: for while a plugin is down. Nothing once closed.
   *
   * @param reason The calls' error message.
   */
  suspend(reason: string): void {
    if (this.#closed) return;
    this.#current.close();
    const down = () => Promise.reject(new ConnectError(reason, Code.Unavailable));
    this.#install({ unary: down, stream: down });
  }

  /**
   * Runs `use` on the transport, and once more over gRPC if it failed after Connect's
   * answers said the plugin speaks only gRPC.
   *
   * @param use What to do with the transport.
   * @param isAnswer Tells failures that are an answer understood (no such method,
   * say), which no protocol would change: they are thrown as they are.
   * @returns What `use` resolved.
   */
  async run<T>(
    use: (transport: Transport) => Promise<T>,
    isAnswer?: (error: unknown) => boolean,
  ): Promise<T> {
    try {
      return await use(this.transport);
    } catch (error) {
      if (isAnswer?.(error) || !this.switchToGrpcIfDetected()) throw error;
      return await use(this.transport);
    }
  }

  /** Drops every connection; later calls fail UNAVAILABLE. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#current.close();
  }

  /** Swaps the stable transport's methods, so that clients made on it follow. */
  #install(methods: Transport): void {
    const stable = this.transport as { -readonly [K in keyof Transport]: Transport[K] };
    stable.unary = methods.unary;
    stable.stream = methods.stream;
  }

  #open(): PluginTransport {
    const protocol = this.#protocol;
    return createPluginTransport(this.#endpoint, protocol, {
      token: this.#token,
      onResponse: this.#auto && protocol === "connect"
        ? (status, contentType) => {
          if (looksLikeGrpcServer(status, contentType)) {
            this.#detected = `HTTP ${status} ${contentType || "without a content type"}`;
          }
        }
        : undefined,
    });
  }
}

/**
 * A fresh per-plugin token: 32 random bytes, base64url.
 *
 * @returns The token.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { randomToken } from "./transport.ts";
 * assert.match(randomToken(), /^[\w-]{43}$/);
 * ```
 */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/**
 * What to add to an UNAUTHENTICATED failure's message so that a person knows how to
 * give the plugin its token; nothing for other codes.
 *
 * @param code The failure's code.
 * @returns The hint, starting with a space, or `""`.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Code } from "@connectrpc/connect";
 * import { tokenHint } from "./transport.ts";
 * assert.match(tokenHint(Code.Unauthenticated), /--token-file/);
 * assert.equal(tokenHint(Code.NotFound), "");
 * ```
 */
export function tokenHint(code: Code): string {
  return code === Code.Unauthenticated ? TOKEN_HINT : "";
}

const TOKEN_HINT = " (pass its token with --token, --token-file or $FTL_PLUGIN_TOKEN; " +
  "run --token-file F saves it; run --no-auth starts a plugin without one)";

/**
 * `transport`, sending `authorization: Bearer <token>` on every call: for a transport
 * made without the token (the one `spawn({ auth: false })` hands a readiness check).
 *
 * @param transport The transport to wrap.
 * @param token The plugin's token.
 * @returns The wrapping transport.
 * @example
 * ```ts
 * import { createClient } from "@connectrpc/connect";
 * import { EchoService } from "../gen/echo/v1/echo_pb.ts";
 * import { PluginConnection, withToken } from "./transport.ts";
 *
 * const connection = new PluginConnection(new URL("http://127.0.0.1:1"));
 * const client = createClient(EchoService, withToken(connection.transport, "s3cret"));
 * connection.close();
 * ```
 */
export function withToken(transport: Transport, token: string): Transport {
  const header = (init: ConstructorParameters<typeof Headers>[0]) => {
    const headers = new Headers(init);
    headers.set("authorization", `Bearer ${token}`);
    return headers;
  };
  return {
    unary: (method, signal, timeoutMs, init, input, contextValues) =>
      transport.unary(method, signal, timeoutMs, header(init), input, contextValues),
    stream: (method, signal, timeoutMs, init, input, contextValues) =>
      transport.stream(method, signal, timeoutMs, header(init), input, contextValues),
  };
}

/**
 * Whether an answer to a Connect request says the server does not speak Connect, so
 * that gRPC is worth a try. A Connect server answers 200 with `application/proto` (or
 * `application/json`) and an error with a JSON body; pure gRPC servers answer
 * otherwise: @grpc/grpc-js 415, grpcio 200 with `application/grpc`, grpc-js on Deno's
 * node:http2 200 without any content type, grpc-go's `ServeHTTP` 500 `text/plain`
 * (1.33, as Debian ships it), 400 (around 1.52) or 415 (recent releases).
 *
 * A 404 is not taken as a sign: it is how any HTTP server, our guests' included, says
 * there is no such method, and gRPC would not find one either.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { looksLikeGrpcServer } from "./transport.ts";
 * assert.ok(looksLikeGrpcServer(500, "text/plain; charset=utf-8"));
 * assert.ok(!looksLikeGrpcServer(503, "application/json"));
 * assert.ok(!looksLikeGrpcServer(404, "text/plain"));
 * assert.ok(!looksLikeGrpcServer(200, "application/connect+proto"));
 * ```
 */
export function looksLikeGrpcServer(status: number, contentType: string): boolean {
  const mediaType = contentType.split(";")[0].trim().toLowerCase();
  if (/^application\/grpc(\+|$)/.test(mediaType) || status === 415) return true;
  if (status === 404) return false;
  // Connect's streams answer 200 with application/connect+proto (or +json).
  if (status === 200) return !/^application\/(connect\+)?(proto|json)$/.test(mediaType);
  return mediaType !== "application/json";
}
