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

/** Sends one POST with a whole body and reads the whole answer. */
export type PostBytes = (
  url: string,
  header: Record<string, string>,
  body: Uint8Array,
  signal: AbortSignal | undefined,
) => Promise<PostAnswer>;

/** What a {@linkcode PostBytes} gives back. */
export interface PostAnswer {
  status: number;
  header: Headers;
  body: Uint8Array;
  trailer?: Headers;
  /** The header names, where the runtime has them without filling `header`. */
  headerNames?: () => Iterable<string>;
}

/** The request headers of a call as a plain record with lower-case names. */
function headerRecord(
  header: ConstructorParameters<typeof Headers>[0] | undefined,
): Record<string, string> {
  const record: Record<string, string> = {};
  // Through Headers only when the caller gave some: it validates and lower-cases them.
  if (header !== undefined) new Headers(header).forEach((value, key) => (record[key] = value));
  return record;
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
function callSignals(
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
    const requestHeader = headerRecord(header);
    requestHeader["content-type"] = "application/grpc+proto";
    if (authorization) requestHeader["authorization"] = authorization;
    const { deadline, callSignal } = callSignals(signal, timeoutMs);
    if (deadline) requestHeader["grpc-timeout"] = `${timeoutMs}m`;
    requestHeader["te"] = "trailers";
    if (callSignal?.aborted) throw abortError(signal, deadline);
    const message = isMessage(input, method.input) ? input : create(method.input, input);
    let answer;
    try {
      answer = await options.post(
        urlOf(method),
        requestHeader,
        envelope(toBinary(method.input, message)),
        callSignal,
      );
    } catch (error) {
      if (callSignal?.aborted) throw abortError(signal, deadline);
      throw options.onNoAnswer(error, callSignal);
    }
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
    const bytes = singleMessage(answer.body, readMaxBytes);
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
    let output: MessageShape<O>;
    try {
      output = fromBinary(method.output, bytes);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ConnectError(`parse binary: ${reason}`, Code.Internal);
    }
    return {
      stream: false,
      service: method.parent,
      method,
      header: answer.header,
      message: output,
      trailer,
    };
  };
}

function envelope(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

/** The one message in a unary gRPC answer, or `undefined` if there is none. */
function singleMessage(body: Uint8Array, readMaxBytes: number): Uint8Array | undefined {
  if (body.length === 0) return undefined;
  if (body.length < 5) throw new ConnectError("protocol error: incomplete envelope", Code.Internal);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const length = view.getUint32(1);
  if (length > readMaxBytes) {
    throw new ConnectError(
      `message size ${length} is larger than configured readMaxBytes ${readMaxBytes}`,
      Code.ResourceExhausted,
    );
  }
  if (body[0] & 0b1) {
    throw new ConnectError(
      "received compressed envelope, but do not know how to decompress",
      Code.Internal,
    );
  }
  if (body.length < 5 + length) {
    throw new ConnectError("protocol error: incomplete envelope", Code.Internal);
  }
  if (body.length > 5 + length) {
    throw new ConnectError(
      "protocol error: received extra output message for unary method",
      Code.Unimplemented,
    );
  }
  return body.subarray(5);
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
    const requestHeader = headerRecord(header);
    requestHeader["content-type"] = "application/proto";
    requestHeader["connect-protocol-version"] = "1";
    if (authorization) requestHeader["authorization"] = authorization;
    const { deadline, callSignal } = callSignals(signal, timeoutMs);
    if (deadline) requestHeader["connect-timeout-ms"] = String(timeoutMs);
    if (callSignal?.aborted) throw abortError(signal, deadline);
    const message = isMessage(input, method.input) ? input : create(method.input, input);
    let answer;
    try {
      answer = await options.post(
        urlOf(method),
        requestHeader,
        toBinary(method.input, message),
        callSignal,
      );
    } catch (error) {
      if (callSignal?.aborted) throw abortError(signal, deadline);
      throw options.onNoAnswer(error, callSignal);
    }
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
    let output: MessageShape<O>;
    try {
      output = fromBinary(method.output, answer.body);
    } catch (error) {
      throw new ConnectError(`parse binary: ${String(error)}`, Code.Internal);
    }
    return {
      stream: false,
      service: method.parent,
      method,
      header: responseHeader,
      message: output,
      trailer: responseTrailer,
    };
  };
}

function hasTrailers(names: Iterable<string>): boolean {
  for (const name of names) if (name.startsWith("trailer-")) return true;
  return false;
}

function abortError(signal?: AbortSignal, deadline?: AbortSignal): ConnectError {
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
