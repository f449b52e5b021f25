/**
 * The guest's request handler: a connect-es router for the plugin's services plus
 * health and reflection, extra fetch-style handlers, and the answers a Connect-only
 * listener owes gRPC callers.
 *
 * @module
 */
import type { DescService } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createConnectRouter,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import {
  type UniversalHandler,
  universalServerResponseToFetch,
} from "@connectrpc/connect/protocol";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
} from "../gen/grpc/health/v1/health_pb.ts";
import type { Logger } from "./log.ts";
import { reflectionServices } from "./reflection.ts";

/** A fetch-style handler for a path outside the RPC services. */
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
  /** Whether the listener can send HTTP trailers (gRPC needs them). */
  trailers: boolean;
}

/** A handler for the runtime's HTTP server. */
export type PluginHandler = (
  request: Request,
  signal: AbortSignal,
) => Promise<Response>;

/** Builds the handler that serves a plugin's services, health and reflection. */
export function createPluginHandler(options: PluginHandlerOptions): PluginHandler {
  const descriptors = options.services.map(([desc]) => desc);
  const router = createConnectRouter({
    grpc: options.trailers,
    readMaxBytes: options.readMaxBytes,
    shutdownSignal: options.shutdownSignal,
    interceptors: [internalErrors(options.logger)],
  });
  for (const [desc, impl] of options.services) {
    router.service(desc, impl as Partial<ServiceImpl<DescService>>);
  }
  router.service(Health, healthService(descriptors));
  for (const [desc, impl] of reflectionServices([...descriptors, Health])) {
    router.service(desc, impl);
  }
  const routes = new Map<string, UniversalHandler>(
    router.handlers.map((h) => [h.requestPath, h]),
  );
  const extra = new Map(Object.entries(options.handlers ?? {}));

  return async (request, signal) => {
    const path = new URL(request.url).pathname;
    const rpc = routes.get(path);
    if (rpc) {
      if (!options.trailers && isGrpc(request)) return grpcUnsupported();
      const response = await rpc({
        httpVersion: "",
        method: request.method,
        url: request.url,
        header: request.headers,
        body: bytesOf(request.body),
        signal,
      });
      return universalServerResponseToFetch(response);
    }
    const handler = extra.get(path);
    if (handler) return await handler(request);
    if (isGrpc(request)) {
      return trailersOnly(Code.Unimplemented, `no method at ${path}`);
    }
    return new Response("not found\n", { status: 404 });
  };
}

function isGrpc(request: Request): boolean {
  const type = request.headers.get("content-type") ?? "";
  return /^application\/grpc(\+|;|$)/i.test(type);
}

/**
 * Deno.serve cannot send HTTP trailers, which every gRPC response needs, but a
 * trailers-only response (status in the headers) still reaches a gRPC client.
 */
function grpcUnsupported(): Response {
  return trailersOnly(
    Code.Unimplemented,
    "this plugin speaks Connect and gRPC-Web, not gRPC: its Deno listener cannot send HTTP trailers",
  );
}

function trailersOnly(code: Code, message: string): Response {
  return new Response(null, {
    status: 200,
    headers: {
      "content-type": "application/grpc",
      "grpc-status": String(code),
      "grpc-message": encodeURIComponent(message),
    },
  });
}

async function* bytesOf(
  body: ReadableStream<Uint8Array> | null,
): AsyncIterable<Uint8Array> {
  if (body) yield* body;
}

/**
 * A handler's ConnectError keeps its code; anything else thrown is a bug in the
 * plugin: it becomes INTERNAL and is logged once with its stack.
 */
function internalErrors(logger: Logger): Interceptor {
  const convert = (error: unknown, signal: AbortSignal, procedure: string) => {
    if (error instanceof ConnectError) return error;
    // A handler that gave up because its call was cancelled or timed out.
    if (signal.aborted) return ConnectError.from(signal.reason);
    logger.error(`${procedure} failed`, error, {
      stack: error instanceof Error ? error.stack ?? "" : "",
    });
    const message = error instanceof Error ? error.message : String(error);
    return new ConnectError(message, Code.Internal, undefined, undefined, error);
  };
  return (next) => async (request) => {
    const procedure = `/${request.service.typeName}/${request.method.name}`;
    try {
      const response = await next(request);
      if (!response.stream) return response;
      const messages = response.message;
      return {
        ...response,
        message: (async function* () {
          try {
            yield* messages;
          } catch (error) {
            throw convert(error, request.signal, procedure);
          }
        })(),
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
