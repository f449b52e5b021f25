/**
 * A lean client path for server-streaming calls in binary Connect or gRPC: the request
 * goes as one whole body, and the answer's envelopes are cut straight out of the
 * HTTP/2 engine's chunks and parsed, every message that has already arrived handed out
 * without waiting a turn (stream_messages.ts). It does what connect-es's transports do
 * for such a call (headers, timeout header and deadline, the caller's signal, read
 * limit, Connect's EndStreamResponse or gRPC's status in the trailers, their errors
 * worded the same) without their chains of async iterators, one per step and message.
 * Client and bidi streams keep connect-es's transports.
 *
 * @module
 */
import {
  create,
  type DescMessage,
  type DescMethodServerStreaming,
  type DescMethodStreaming,
  isMessage,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type StreamResponse,
  type Transport,
} from "@connectrpc/connect";
import type { UniversalClientFn } from "@connectrpc/connect/protocol";
import {
  codeFromHttpStatus,
  parseContentType as parseConnectType,
  requestHeader as connectRequestHeader,
} from "@connectrpc/connect/protocol-connect";
import {
  requestHeader as grpcRequestHeader,
  validateResponse as validateGrpcResponse,
} from "@connectrpc/connect/protocol-grpc";
import { concatBytes } from "../bytes.ts";
import { encodeUnaryEnvelope } from "./envelope.ts";
import { type RawBody, rawBody } from "../http2/client_universal.ts";
import { once } from "../iterables.ts";
import {
  abortError,
  authorizationOf,
  callSignals,
  checkEncoding,
  type LeanCallOptions,
  methodUrls,
} from "./call.ts";
import { connectMessages, EnvelopeReader, grpcMessages } from "./stream_messages.ts";

/** Options for {@linkcode leanServerStream}. */
export interface LeanStreamOptions extends LeanCallOptions {
  protocol: "connect" | "grpc";
  /** The engine's universal client: its answers' bodies carry {@linkcode rawBody}. */
  client: UniversalClientFn;
  /** Every other streaming call (client and bidi streams). */
  fallback: Transport["stream"];
  /** Largest message accepted, in bytes. */
  readMaxBytes: number;
}

/** The `stream` method of a transport, lean for server-streaming calls. */
export function leanServerStream(options: LeanStreamOptions): Transport["stream"] {
  const authorization = authorizationOf(options.token);
  const urlOf = methodUrls(options.baseUrl);
  return function stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: ConstructorParameters<typeof Headers>[0] | undefined,
    input: AsyncIterable<MessageInitShape<I>>,
    contextValues?: ContextValues,
  ): Promise<StreamResponse<I, O>> {
    if (method.methodKind !== "server_streaming") {
      return options.fallback(method, signal, timeoutMs, header, input, contextValues);
    }
    return serverStream(
      options,
      authorization,
      urlOf(method),
      method,
      signal,
      timeoutMs,
      header,
      input,
    );
  };
}

async function serverStream<I extends DescMessage, O extends DescMessage>(
  options: LeanStreamOptions,
  authorization: string | undefined,
  url: string,
  method: DescMethodServerStreaming<I, O>,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
  header: ConstructorParameters<typeof Headers>[0] | undefined,
  input: AsyncIterable<MessageInitShape<I>>,
): Promise<StreamResponse<I, O>> {
  // As connect-es: a timeout of 0 or less is none.
  const ms = timeoutMs !== undefined && timeoutMs > 0 ? timeoutMs : undefined;
  const { deadline, callSignal } = callSignals(signal, ms);
  const fail = (error: unknown): ConnectError =>
    callSignal?.aborted ? abortError(signal, deadline) : ConnectError.from(error);
  const grpc = options.protocol === "grpc";
  const requestHeader = grpc
    ? grpcRequestHeader(true, ms, header)
    : connectRequestHeader("server_streaming", true, ms, header, true);
  if (authorization !== undefined) requestHeader.set("authorization", authorization);
  let body: Uint8Array;
  let response;
  try {
    body = await requestBody(method, input);
    if (callSignal?.aborted) throw abortError(signal, deadline);
    try {
      response = await options.client({
        url,
        method: "POST",
        header: requestHeader,
        body: once(body),
        signal: callSignal,
      });
    } catch (error) {
      throw options.onNoAnswer(error, callSignal);
    }
  } catch (error) {
    throw fail(error);
  }
  const status = response.status;
  const responseHeader = response.header;
  const contentType = responseHeader.get("content-type") ?? "";
  options.onResponse?.(status, contentType);
  const raw = (response.body as Partial<{ [rawBody]: RawBody }> | undefined)?.[rawBody];
  const trailer = grpc ? response.trailer ?? new Headers() : new Headers();
  let foundStatus = false;
  try {
    if (raw === undefined) throw new ConnectError("the answer has no readable body", Code.Internal);
    if (grpc) {
      const checked = validateGrpcResponse(status, responseHeader);
      foundStatus = checked.foundStatus;
      checkEncoding(responseHeader, "grpc-encoding");
      if (checked.headerError) throw checked.headerError;
    } else {
      if (status !== 200) {
        throw new ConnectError(`HTTP ${status}`, codeFromHttpStatus(status), responseHeader);
      }
      checkEncoding(responseHeader, "connect-content-encoding");
      const type = parseConnectType(contentType);
      if (type?.binary !== true || !type.stream) {
        throw new ConnectError(
          `unsupported content type ${contentType}`,
          type === undefined ? Code.Unknown : Code.Internal,
          responseHeader,
        );
      }
    }
  } catch (error) {
    raw?.cancel();
    throw fail(error);
  }
  const reader = new EnvelopeReader(raw, options.readMaxBytes, (error) => {
    raw.cancel();
    return fail(options.onNoAnswer(error, callSignal));
  });
  const messages = grpc
    ? grpcMessages(reader, method, responseHeader, trailer, foundStatus, fail, callSignal)
    : connectMessages(reader, method, responseHeader, trailer, fail, callSignal);
  return {
    stream: true,
    service: method.parent,
    method,
    header: responseHeader,
    trailer,
    message: messages,
  };
}

async function requestBody<I extends DescMessage>(
  method: DescMethodServerStreaming<I>,
  input: AsyncIterable<MessageInitShape<I>>,
): Promise<Uint8Array> {
  const envelopes: Uint8Array[] = [];
  for await (const message of input) {
    let bytes;
    try {
      bytes = toBinary(
        method.input,
        isMessage(message, method.input) ? message : create(method.input, message),
      );
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ConnectError(`serialize binary: ${reason}`, Code.Internal);
    }
    envelopes.push(encodeUnaryEnvelope(bytes));
  }
  return envelopes.length === 1 ? envelopes[0] : concatBytes(envelopes);
}
