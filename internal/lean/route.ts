/**
 * The guest's lean route of one method: which lean path a request may take (binary
 * Connect or gRPC, uncompressed, without a timeout; gRPC only where the runtime can send
 * trailers), decided from its headers before anything is read, and the answer of the
 * method's kind (unary.ts, stream.ts). Anything else goes to connect-es.
 *
 * @module
 */
import type { DescMethod, DescMethodServerStreaming, DescMethodUnary } from "@bufbuild/protobuf";
import type { ConnectError, HandlerContext } from "@connectrpc/connect";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import type { LeanRequest } from "../runtime/lean_contract.ts";
import { headerOf, unaryAnswer } from "./unary.ts";
import { serverStreamAnswer } from "./stream.ts";

/** What a lean route needs besides the method and its implementation. */
export interface LeanRouteOptions {
  readMaxBytes: number;
  shutdownSignal: AbortSignal;
  /** Whether gRPC may take the lean path too (the runtime can send trailers). */
  grpc?: boolean;
  /** Runs before the body is read, as connect-es's requestGate does. */
  gate?: (context: HandlerContext) => void;
  /** Turns anything a handler throws into the ConnectError the caller gets. */
  toConnectError: (error: unknown, signal: AbortSignal, procedure: string) => ConnectError;
}

/**
 * A route's answer to an eligible request, or `undefined` (decided before anything is
 * read) to let connect-es answer. Not an async function: a route returns the call's
 * own promise, without the extra turns an async wrapper costs.
 */
export type LeanRoute = (request: LeanRequest) => Promise<UniversalServerResponse> | undefined;

/** The protocols the lean paths answer. */
export type Protocol = "connect" | "grpc";

/** A method's answer to a request that takes the lean path in `protocol`. */
export type LeanAnswer = (
  request: LeanRequest,
  protocol: Protocol,
) => Promise<UniversalServerResponse>;

/** What a method's lean answer is made of besides the method. */
export interface LeanAnswerParts {
  implementation: (input: unknown, context: HandlerContext) => unknown;
  options: LeanRouteOptions;
  /** `/service/Method`, as errors name the call. */
  procedure: string;
}

/** Makes the lean answer of a method (of kind `M`) for its route. */
export type LeanAnswerOf<M extends DescMethod> = (method: M, parts: LeanAnswerParts) => LeanAnswer;

/**
 * Builds the lean route of one method, or gives `undefined` for a kind of method that
 * connect-es alone answers (client and bidi streams).
 */
export function leanRoute(
  method: DescMethod,
  implementation: (input: unknown, context: HandlerContext) => unknown,
  options: LeanRouteOptions,
): LeanRoute | undefined {
  const parts = { implementation, options, procedure: `/${method.parent.typeName}/${method.name}` };
  const grpc = options.grpc ?? false;
  // One closure per kind, each calling its own check: a route is on every call's path.
  // (methodKind does not narrow DescMethod, hence the casts.)
  if (method.methodKind === "unary") {
    const answer = unaryAnswer(method as DescMethodUnary, parts);
    return (request) => {
      const protocol = unaryProtocol(request, grpc);
      return protocol === undefined ? undefined : answer(request, protocol);
    };
  }
  if (method.methodKind === "server_streaming") {
    const answer = serverStreamAnswer(method as DescMethodServerStreaming, parts);
    return (request) => {
      const protocol = streamProtocol(request, grpc);
      return protocol === undefined ? undefined : answer(request, protocol);
    };
  }
  return undefined;
}

/**
 * Which lean path a unary request may take, or `undefined` if connect-es's own handler
 * must answer it (JSON, compression, timeouts, GET, gRPC-Web, or gRPC where the runtime
 * cannot send trailers).
 */
function unaryProtocol(request: LeanRequest, grpc: boolean): Protocol | undefined {
  if (request.method !== "POST") return undefined;
  const type = headerOf(request, "content-type");
  if (type === "application/proto") {
    if (!plain(request, "content-encoding", "connect-timeout-ms")) return undefined;
    const version = headerOf(request, "connect-protocol-version");
    return version === null || version === "1" ? "connect" : undefined;
  }
  return grpc && isGrpcProto(type) && plain(request, "grpc-encoding", "grpc-timeout")
    ? "grpc"
    : undefined;
}

/** Which lean path a streaming request may take, or `undefined` for connect-es. */
function streamProtocol(request: LeanRequest, grpc: boolean): Protocol | undefined {
  if (request.method !== "POST") return undefined;
  const type = headerOf(request, "content-type");
  if (type === "application/connect+proto") {
    return plain(request, "connect-content-encoding", "connect-timeout-ms") ? "connect" : undefined;
  }
  return grpc && isGrpcProto(type) && plain(request, "grpc-encoding", "grpc-timeout")
    ? "grpc"
    : undefined;
}

/** Whether gRPC's binary content type. */
function isGrpcProto(type: string | null): boolean {
  return type === "application/grpc" || type === "application/grpc+proto";
}

/** Whether a request is uncompressed (header `encoding`) and has no timeout (`timeout`). */
function plain(request: LeanRequest, encoding: string, timeout: string): boolean {
  const value = headerOf(request, encoding);
  return (value === null || value === "identity") && headerOf(request, timeout) === null;
}
