/**
 * A lean client path for the commonest call a host makes: a Connect unary call in
 * binary. It does what connect-es's Connect transport does for such a call (timeout
 * header and deadline, the caller's signal, Connect error JSON with the HTTP status
 * as fallback, `trailer-` headers split out) without its interceptor chain and body
 * streams. Streaming calls keep connect-es's transport.
 *
 * @module
 */
import {
  create,
  type DescMessage,
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

/** Sends one POST with a whole body and reads the whole answer. */
export type PostBytes = (
  url: string,
  header: Headers,
  body: Uint8Array,
  signal: AbortSignal | undefined,
) => Promise<{ status: number; header: Headers; body: Uint8Array }>;

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
}

/** The `unary` method of a Connect transport, lean. */
export function leanConnectUnary(options: LeanUnaryOptions) {
  const authorization = options.token === undefined ? undefined : `Bearer ${options.token}`;
  return async function unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: ConstructorParameters<typeof Headers>[0] | undefined,
    input: MessageInitShape<I>,
  ): Promise<UnaryResponse<I, O>> {
    const requestHeader = new Headers(header);
    requestHeader.set("content-type", "application/proto");
    requestHeader.set("connect-protocol-version", "1");
    if (authorization) requestHeader.set("authorization", authorization);
    let deadline: AbortSignal | undefined;
    if (timeoutMs !== undefined && timeoutMs > 0) {
      requestHeader.set("connect-timeout-ms", String(timeoutMs));
      deadline = AbortSignal.timeout(timeoutMs);
    }
    const callSignal = signal && deadline
      ? AbortSignal.any([signal, deadline])
      : signal ?? deadline;
    if (callSignal?.aborted) throw abortError(signal, deadline);
    const message = isMessage(input, method.input) ? input : create(method.input, input);
    let answer;
    try {
      answer = await options.post(
        createMethodUrl(options.baseUrl, method),
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
    const [responseHeader, responseTrailer] = trailerDemux(answer.header);
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
