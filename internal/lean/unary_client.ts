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
  type DescMethod,
  type DescMethodUnary,
  fromBinary,
  isMessage,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { appendHeaders, Code, ConnectError, type UnaryResponse } from "@connectrpc/connect";
import { createMethodUrl } from "@connectrpc/connect/protocol";
import {
  codeFromHttpStatus,
  errorFromJsonBytes,
  trailerDemux,
} from "@connectrpc/connect/protocol-connect";
import { validateResponse, validateTrailer } from "@connectrpc/connect/protocol-grpc";
import { encodeUnaryEnvelope, unaryEnvelopeMessage } from "../envelope.ts";
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

function outputOf<O extends DescMessage>(
  method: DescMethodUnary<DescMessage, O>,
  bytes: Uint8Array,
): MessageShape<O> {
  try {
    return fromBinary(method.output, bytes);
  } catch (error) {
    // Worded as connect-es words it.
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConnectError(`parse binary: ${reason}`, Code.Internal);
  }
}

/**
 * Posts one call, with the deadline and the combined signal connect-es would make; a
 * failure to get any answer goes through `onNoAnswer` unless the caller's signal or the
 * deadline ended the call.
 */
async function send(
  options: LeanUnaryOptions,
  call: {
    url: string;
    header: Record<string, string>;
    timeoutHeader: (ms: number) => [string, string];
    body: Uint8Array;
    signal: AbortSignal | undefined;
    timeoutMs: number | undefined;
  },
): Promise<PostAnswer> {
  const { deadline, callSignal } = callSignals(call.signal, call.timeoutMs);
  if (deadline) {
    const [name, value] = call.timeoutHeader(call.timeoutMs!);
    call.header[name] = value;
  }
  if (callSignal?.aborted) throw abortError(call.signal, deadline);
  try {
    return await options.post(call.url, call.header, call.body, callSignal);
  } catch (error) {
    if (callSignal?.aborted) throw abortError(call.signal, deadline);
    throw options.onNoAnswer(error, callSignal);
  }
}

/** Each method's URL under `baseUrl`, made once. */
function methodUrls(baseUrl: string): (method: DescMethod) => string {
  const urls = new WeakMap<DescMethod, string>();
  return (method) => {
    let url = urls.get(method);
    if (url === undefined) {
      url = createMethodUrl(baseUrl, method);
      urls.set(method, url);
    }
    return url;
  };
}

/** Options for {@linkcode leanConnectUnary}. */
export interface LeanUnaryOptions {
  baseUrl: string;
  post: PostBytes;
  /** Sent as `authorization: Bearer <token>`. */
  token?: string;
  /** Turns a failure to get any answer into the error the caller sees. */
  onNoAnswer: (error: unknown, signal: AbortSignal | undefined) => unknown;
  /** Sees every answer's status and content type. */
  onResponse?: (status: number, contentType: string) => void;
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

/** A call's deadline and its combined signal, as connect-es makes them. */
export function callSignals(
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): { deadline?: AbortSignal; callSignal?: AbortSignal } {
  const deadline = timeoutMs !== undefined && timeoutMs > 0
    ? AbortSignal.timeout(timeoutMs)
    : undefined;
  const callSignal = signal && deadline ? AbortSignal.any([signal, deadline]) : signal ?? deadline;
  return { deadline, callSignal };
}

/** The `unary` method of a gRPC transport, lean; the runtime's POST must give trailers. */
export function leanGrpcUnary(options: LeanUnaryOptions): Unary {
  const authorization = options.token === undefined ? undefined : `Bearer ${options.token}`;
  const readMaxBytes = options.readMaxBytes ?? 4 * 1024 * 1024;
  const urlOf = methodUrls(options.baseUrl);
  return async function unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: ConstructorParameters<typeof Headers>[0] | undefined,
    input: MessageInitShape<I>,
  ): Promise<UnaryResponse<I, O>> {
    const answer = await send(options, {
      url: urlOf(method),
      header: requestHeaders(header, authorization, GRPC_HEADERS),
      timeoutHeader: (ms) => ["grpc-timeout", `${ms}m`],
      body: encodeUnaryEnvelope(inputBytes(method, input)),
      signal,
      timeoutMs,
    });
    options.onResponse?.(answer.status, answer.header.get("content-type") ?? "");
    const { headerError } = validateResponse(answer.status, answer.header);
    const encoding = answer.header.get("grpc-encoding");
    if (encoding !== null && encoding.toLowerCase() !== "identity") {
      throw new ConnectError(
        `unsupported response encoding "${encoding}"`,
        Code.Internal,
        answer.header,
      );
    }
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
      message: outputOf(method, bytes),
      trailer,
    };
  };
}

/** The `unary` method of a Connect transport, lean. */
export function leanConnectUnary(options: LeanUnaryOptions): Unary {
  const authorization = options.token === undefined ? undefined : `Bearer ${options.token}`;
  const urlOf = methodUrls(options.baseUrl);
  return async function unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: ConstructorParameters<typeof Headers>[0] | undefined,
    input: MessageInitShape<I>,
  ): Promise<UnaryResponse<I, O>> {
    const answer = await send(options, {
      url: urlOf(method),
      header: requestHeaders(header, authorization, CONNECT_HEADERS),
      timeoutHeader: (ms) => ["connect-timeout-ms", String(ms)],
      body: inputBytes(method, input),
      signal,
      timeoutMs,
    });
    const contentType = answer.header.get("content-type") ?? "";
    options.onResponse?.(answer.status, contentType);
    // Split out the `trailer-` headers; most answers have none, and knowing that from
    // the names alone spares filling the headers.
    const [responseHeader, responseTrailer] =
      answer.headerNames && !hasTrailers(answer.headerNames())
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
      message: outputOf(method, answer.body),
      trailer: responseTrailer,
    };
  };
}

function hasTrailers(names: Iterable<string>): boolean {
  for (const name of names) if (name.startsWith("trailer-")) return true;
  return false;
}

/** The error of a call its caller's signal or its deadline ended, as connect-es words it. */
export function abortError(signal?: AbortSignal, deadline?: AbortSignal): ConnectError {
  if (deadline?.aborted && !signal?.aborted) {
    return new ConnectError("the operation timed out", Code.DeadlineExceeded);
  }
  return ConnectError.from(signal?.reason ?? new Error("aborted"), Code.Canceled);
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
