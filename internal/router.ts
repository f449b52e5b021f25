/**
 * The guest's request handler: a connect-es router for the plugin's services plus
 * health and reflection, extra fetch-style handlers, and the answers a Connect-only
 * listener owes gRPC callers. The lean routes are built at once; the router and
 * reflection (with its descriptor modules) only when a request first needs them, since
 * a plugin's start (and its host's Ping) needs neither.
 *
 * @module
 */
import type { DescService } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createConnectRouter,
  type HandlerContext,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import type {
  UniversalHandler,
  UniversalHandlerFn,
  UniversalServerRequest,
  UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
} from "../gen/grpc/health/v1/health_pb.ts";
import { once, rethrowing } from "./iterables.ts";
import type { Logger } from "./log.ts";
import { type LeanRoute, leanRoute } from "./lean/route.ts";
import { requestHeaderOf } from "./lean/unary.ts";

/**
 * A fetch-style handler for a path outside the RPC services.
 *
 * @example
 * ```ts
 * import type { ExtraHandler } from "./router.ts";
 * const metrics: ExtraHandler = () => new Response("up 1\n");
 * ```
 */
export type ExtraHandler = (request: Request) => Response | Promise<Response>;

/** A service descriptor with the object implementing it. */
export type ServiceBinding = readonly [DescService, object];

/** Everything {@linkcode createPluginHandler} serves. */
export interface PluginHandlerOptions {
  /** The plugin's services, main service first. */
  services: readonly ServiceBinding[];
  /** Extra handlers by exact path. */
  handlers?: Record<string, ExtraHandler>;
  /** Where unexpected handler errors are logged. */
  logger: Logger;
  /** Largest request message accepted, in bytes. */
  readMaxBytes: number;
  /** Aborting it cancels every call in flight. */
  shutdownSignal: AbortSignal;
  /**
   * Whether the listener can send HTTP trailers (gRPC needs them): false only for
   * `Deno.serve`, and then gRPC calls are refused UNIMPLEMENTED.
   */
  trailers: boolean;
  /** When set, calls (health excepted) need `authorization: Bearer <token>`. */
  token?: string;
}

/** Builds the handler that serves a plugin's services, health and reflection. */
export function createPluginHandler(options: PluginHandlerOptions): UniversalHandlerFn {
  const descriptors = options.services.map(([desc]) => desc);
  const health = healthService(descriptors);
  // Built once, by the first request that needs it; requests meanwhile share the build.
  let routes: Promise<Map<string, UniversalHandler>> | undefined;
  const connectRoutes = () => routes ??= buildRoutes(options, health);
  const leanRoutes = new Map<string, LeanRoute>();
  const leanOptions = {
    readMaxBytes: options.readMaxBytes,
    shutdownSignal: options.shutdownSignal,
    grpc: options.trailers,
    gate: options.token === undefined ? undefined : tokenGate(options.token),
    toConnectError: errorConverter(options.logger),
  };
  for (const [desc, impl] of [...options.services, [Health, health] as const]) {
    for (const method of desc.methods) {
      const fn = (impl as Record<string, unknown>)[method.localName];
      if (typeof fn !== "function") continue;
      const route = leanRoute(method, fn.bind(impl), leanOptions);
      if (route) leanRoutes.set(`/${desc.typeName}/${method.name}`, route);
    }
  }
  const extra = new Map(Object.entries(options.handlers ?? {}));

  // Not async: a lean call's promise is returned as it is, without an extra wrapper.
  return (request) => {
    const path = pathOf(request.url);
    try {
      return leanRoutes.get(path)?.(request) ?? routeByPath(request, path);
    } catch (error) {
      // A handler's caller expects a promise, never a throw.
      return Promise.reject(error);
    }
  };

  async function routeByPath(
    request: UniversalServerRequest,
    path: string,
  ): Promise<UniversalServerResponse> {
    const rpc = (await connectRoutes()).get(path);
    if (rpc) {
      if (!options.trailers && isGrpc(request.header)) return grpcUnsupported();
      return await rpc(request);
    }
    const handler = extra.get(path);
    if (handler) return await callFetchHandler(handler, request);
    if (isGrpc(request.header)) {
      return trailersOnly(Code.Unimplemented, `no method at ${path}`);
    }
    return {
      status: 404,
      header: new Headers({ "content-type": "text/plain" }),
      body: once(new TextEncoder().encode("not found\n")),
    };
  }
}

/** The connect-es router of every service, health and reflection, by request path. */
async function buildRoutes(
  options: PluginHandlerOptions,
  health: ServiceImpl<typeof Health>,
): Promise<Map<string, UniversalHandler>> {
  const { reflectionServices } = await import("./reflection.ts");
  const router = createConnectRouter({
    grpc: options.trailers,
    readMaxBytes: options.readMaxBytes,
    shutdownSignal: options.shutdownSignal,
    interceptors: [internalErrors(options.logger)],
    requestGate: options.token === undefined ? undefined : tokenGate(options.token),
  });
  for (const [desc, impl] of options.services) {
    router.service(desc, impl as Partial<ServiceImpl<DescService>>);
  }
  router.service(Health, health);
  const described = [...options.services.map(([desc]) => desc), Health];
  for (const [desc, impl] of reflectionServices(described)) {
    router.service(desc, impl);
  }
  return new Map(router.handlers.map((h) => [h.requestPath, h]));
}

/**
 * Rejects a call without the plugin's token before its body is read. Health checks
 * stay open so that probes need no secret.
 */
function tokenGate(token: string): (context: HandlerContext) => void {
  const expected = `Bearer ${token}`;
  return (context) => {
    if (context.service.typeName === Health.typeName) return;
    const given = requestHeaderOf(context, "authorization") ?? "";
    if (!constantTimeEqual(given, expected)) {
      // Never echo what was sent or expected: either may be a secret.
      throw new ConnectError("missing or wrong plugin token", Code.Unauthenticated);
    }
  };
}

/** Compares without an early exit, so timing tells nothing but the length. */
function constantTimeEqual(given: string, expected: string): boolean {
  let difference = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) {
    difference |= (given.charCodeAt(i) || 0) ^ expected.charCodeAt(i);
  }
  return difference === 0;
}

/** The path of a request URL, without building a URL object (this is per call). */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start === -1) return "/";
  const end = url.indexOf("?", start);
  return end === -1 ? url.slice(start) : url.slice(start, end);
}

function isGrpc(header: Headers): boolean {
  return /^application\/grpc(\+|;|$)/i.test(header.get("content-type") ?? "");
}

/** Runs a fetch-style handler on a universal request. */
async function callFetchHandler(
  handler: ExtraHandler,
  request: UniversalServerRequest,
): Promise<UniversalServerResponse> {
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  const body = hasBody && isAsyncIterable(request.body) ? iterableToStream(request.body) : null;
  const response = await handler(
    new Request(request.url, {
      method: request.method,
      headers: request.header,
      body,
      signal: request.signal,
      // Required for a streaming body by the fetch spec (and Node's undici).
      ...(body ? { duplex: "half" } : {}),
    } as RequestInit),
  );
  return {
    status: response.status,
    header: response.headers,
    body: response.body ? streamToIterable(response.body) : undefined,
  };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof value === "object" && value !== null && Symbol.asyncIterator in value;
}

function iterableToStream(iterable: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = iterable[Symbol.asyncIterator]();
  return new ReadableStream({
    async pull(controller) {
      const { done, value } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}

async function* streamToIterable(stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * A listener that cannot send HTTP trailers (`Deno.serve`, the guest's `server:
 * "native"` on Deno) cannot answer gRPC, but a trailers-only response (status in the
 * headers) still reaches a gRPC client.
 */
function grpcUnsupported(): UniversalServerResponse {
  return trailersOnly(
    Code.Unimplemented,
    'this plugin speaks Connect and gRPC-Web, not gRPC: it serves with Deno.serve (server: "native"), which cannot send HTTP trailers',
  );
}

function trailersOnly(code: Code, message: string): UniversalServerResponse {
  return {
    status: 200,
    header: new Headers({
      "content-type": "application/grpc",
      "grpc-status": String(code),
      "grpc-message": encodeURIComponent(message),
    }),
  };
}

/**
 * A handler's ConnectError keeps its code; anything else thrown is a bug in the
 * plugin: it becomes INTERNAL and is logged once with its stack.
 */
function errorConverter(
  logger: Logger,
): (error: unknown, signal: AbortSignal, procedure: string) => ConnectError {
  return (error, signal, procedure) => {
    if (error instanceof ConnectError) return error;
    // A handler that gave up because its call was cancelled or timed out.
    if (signal.aborted) return ConnectError.from(signal.reason);
    logger.error(`${procedure} failed`, error, {
      stack: error instanceof Error ? error.stack ?? "" : "",
    });
    const message = error instanceof Error ? error.message : String(error);
    return new ConnectError(message, Code.Internal, undefined, undefined, error);
  };
}

function internalErrors(logger: Logger): Interceptor {
  const convert = errorConverter(logger);
  return (next) => async (request) => {
    const procedure = `/${request.service.typeName}/${request.method.name}`;
    try {
      const response = await next(request);
      if (!response.stream) return response;
      return {
        ...response,
        message: rethrowing(
          response.message,
          (error) => convert(error, request.signal, procedure),
        ),
      };
    } catch (error) {
      throw convert(error, request.signal, procedure);
    }
  };
}

function healthService(services: readonly DescService[]): ServiceImpl<typeof Health> {
  const known = new Set(["", ...services.map((s) => s.typeName)]);
  const statusOf = (service: string) => {
    if (!known.has(service)) {
      throw new ConnectError(`unknown service ${service}`, Code.NotFound);
    }
    return create(HealthCheckResponseSchema, { status: ServingStatus.SERVING });
  };
  return {
    check: (request) => statusOf(request.service),
    async *watch(request, context) {
      yield statusOf(request.service);
      await new Promise((resolve) => {
        context.signal.addEventListener("abort", resolve, { once: true });
      });
    },
  };
}
