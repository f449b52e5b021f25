/**
 * A lean client path for the commonest call a host makes: a Connect or gRPC unary call
 * in binary. It does what connect-es's transports do for such a call (timeout header
 * and deadline, the caller's signal, Connect error JSON with the HTTP status as
 * fallback and `trailer-` headers split out, or gRPC's envelope and status in the
 * trailers) without their interceptor chains and body streams. Streaming calls keep
 * connect-es's transports.
 *
 * @module
 */
import {
  create,
  type DescMessage,
  type DescMethodUnary,
  isMessage,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { appendHeaders, Code, ConnectError, type UnaryResponse } from "@connectrpc/connect";
import {
  codeFromHttpStatus,
  errorFromJsonBytes,
  trailerDemux,
} from "@connectrpc/connect/protocol-connect";
import { validateResponse, validateTrailer } from "@connectrpc/connect/protocol-grpc";
import { encodeUnaryEnvelope, unaryEnvelopeMessage } from "./envelope.ts";
import {
  abortError,
  authorizationOf,
  callSignals,
  checkEncoding,
  type LeanCallOptions,
  methodUrls,
} from "./call.ts";
import { parseBinary } from "./messages.ts";
import type { PostAnswer, PostBytes } from "../runtime/types.ts";

export type { PostAnswer, PostBytes } from "../runtime/types.ts";

const CONNECT_HEADERS = {
  "content-type": "application/proto",
  "connect-protocol-version": "1",
} as const;
const GRPC_HEADERS = { "content-type": "application/grpc+proto", te: "trailers" } as const;

/**
 * The request headers of a call as a plain record with lower-case names: the caller's,
 * then the protocol's, then the token.
 */
function requestHeaders(
  header: ConstructorParameters<typeof Headers>[0] | undefined,
  authorization: string | undefined,
  protocol: Readonly<Record<string, string>>,
): Record<string, string> {
  const record: Record<string, string> = {};
  // Through Headers only when the caller gave some: it validates and lower-cases them.
  if (header !== undefined) new Headers(header).forEach((value, key) => (record[key] = value));
  Object.assign(record, protocol);
  if (authorization) record["authorization"] = authorization;
  return record;
}

function inputBytes<I extends DescMessage>(
  method: DescMethodUnary<I>,
  input: MessageInitShape<I>,
): Uint8Array {
  return toBinary(
    method.input,
    isMessage(input, method.input) ? input : create(method.input, input),
  );
}

/**
 * Posts one call, with the deadline and the combined signal connect-es would make; a
 * failure to get any answer goes through `onNoAnswer` unless the caller's signal or the
 * deadline ended the call.
 */
async function send(
  options: LeanUnaryOptions,
  grpc: boolean,
  url: string,
  header: Record<string, string>,
  body: Uint8Array,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): Promise<PostAnswer> {
  const { deadline, callSignal } = callSignals(signal, timeoutMs);
  if (deadline) {
    if (grpc) header["grpc-timeout"] = `${timeoutMs}m`;
    else header["connect-timeout-ms"] = String(timeoutMs);
  }
  if (callSignal?.aborted) throw abortError(signal, deadline);
  try {
    return await options.post(url, header, body, callSignal);
  } catch (error) {
    if (callSignal?.aborted) throw abortError(signal, deadline);
    throw options.onNoAnswer(error, callSignal);
  }
}

/** Options for {@linkcode leanConnectUnary} and {@linkcode leanGrpcUnary}. */
export interface LeanUnaryOptions extends LeanCallOptions {
  post: PostBytes;
  /** Largest answer accepted, in bytes (gRPC). */
  readMaxBytes?: number;
}

type Unary = <I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
  header: ConstructorParameters<typeof Headers>[0] | undefined,
  input: MessageInitShape<I>,
) => Promise<UnaryResponse<I, O>>;

/** The `unary` method of a gRPC transport, lean; the runtime's POST must give trailers. */
export function leanGrpcUnary(options: LeanUnaryOptions): Unary {
  return leanUnary(options, true);
}

/** The `unary` method of a Connect transport, lean. */
export function leanConnectUnary(options: LeanUnaryOptions): Unary {
  return leanUnary(options, false);
}

function leanUnary(options: LeanUnaryOptions, grpc: boolean): Unary {
  const authorization = authorizationOf(options.token);
  const readMaxBytes = options.readMaxBytes ?? 4 * 1024 * 1024;
  const urlOf = methodUrls(options.baseUrl);
  return async function unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: ConstructorParameters<typeof Headers>[0] | undefined,
    input: MessageInitShape<I>,
  ): Promise<UnaryResponse<I, O>> {
    const url = urlOf(method);
    const headers = requestHeaders(header, authorization, grpc ? GRPC_HEADERS : CONNECT_HEADERS);
    const bytes = inputBytes(method, input);
    const body = grpc ? encodeUnaryEnvelope(bytes) : bytes;
    const answer = await send(options, grpc, url, headers, body, signal, timeoutMs);
    return grpc
      ? grpcResponse(options, readMaxBytes, method, answer)
      : connectResponse(options, method, answer);
  };
}

/** A gRPC answer as connect-es's gRPC transport reads it: envelope, then status. */
function grpcResponse<I extends DescMessage, O extends DescMessage>(
  options: LeanUnaryOptions,
  readMaxBytes: number,
  method: DescMethodUnary<I, O>,
  answer: PostAnswer,
): UnaryResponse<I, O> {
  options.onResponse?.(answer.status, answer.header.get("content-type") ?? "");
  const { headerError } = validateResponse(answer.status, answer.header);
  checkEncoding(answer.header, "grpc-encoding");
  const trailer = answer.trailer ?? new Headers();
  const bytes = unaryEnvelopeMessage(answer.body, "output", readMaxBytes);
  validateTrailer(trailer, answer.header);
  if (bytes === undefined) {
    if (headerError) throw headerError;
    throw new ConnectError(
      "protocol error: missing output message for unary method",
      trailer.has("grpc-status") ? Code.Unimplemented : Code.Unknown,
    );
  }
  if (headerError) {
    throw new ConnectError(
      "protocol error: received output message for unary method with error status",
      Code.Unknown,
    );
  }
  return {
    stream: false,
    service: method.parent,
    method,
    header: answer.header,
    message: parseBinary(method.output, bytes),
    trailer,
  };
}

/** A Connect answer as connect-es's Connect transport reads it. */
function connectResponse<I extends DescMessage, O extends DescMessage>(
  options: LeanUnaryOptions,
  method: DescMethodUnary<I, O>,
  answer: PostAnswer,
): UnaryResponse<I, O> {
  const contentType = answer.header.get("content-type") ?? "";
  options.onResponse?.(answer.status, contentType);
  // Split out the `trailer-` headers; most answers have none, and knowing that from
  // the names alone spares filling the headers.
  const [responseHeader, responseTrailer] = answer.headerNames && !hasTrailers(answer.headerNames())
    ? [answer.header, new Headers()]
    : trailerDemux(answer.header);
  if (answer.status !== 200) {
    const metadata = appendHeaders(responseHeader, responseTrailer);
    throw errorFromAnswer(answer.status, contentType, answer.body, metadata);
  }
  if (contentType !== "application/proto") {
    throw new ConnectError(`unexpected content type ${contentType}`, Code.Internal);
  }
  return {
    stream: false,
    service: method.parent,
    method,
    header: responseHeader,
    message: parseBinary(method.output, answer.body),
    trailer: responseTrailer,
  };
}

function hasTrailers(names: Iterable<string>): boolean {
  for (const name of names) if (name.startsWith("trailer-")) return true;
  return false;
}

function errorFromAnswer(
  status: number,
  contentType: string,
  body: Uint8Array,
  header: Headers,
): ConnectError {
  const fallback = new ConnectError(`HTTP ${status}`, codeFromHttpStatus(status), header);
  if (!contentType.startsWith("application/json")) return fallback;
  try {
    return errorFromJsonBytes(body, header, fallback);
  } catch {
    return fallback;
  }
}
