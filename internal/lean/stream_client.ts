/**
 * A lean client path for server-streaming calls in binary Connect or gRPC: the request
 * goes as one whole body, and the answer's envelopes are cut straight out of the
 * HTTP/2 engine's chunks and parsed, every message that has already arrived handed out
 * without waiting a turn. It does what connect-es's transports do for such a call
 * (headers, timeout header and deadline, the caller's signal, read limit, Connect's
 * EndStreamResponse or gRPC's status in the trailers, their errors worded the same)
 * without their chains of async iterators, one per step and message. Client and bidi
 * streams keep connect-es's transports.
 *
 * @module
 */
import {
  create,
  type DescMessage,
  type DescMethodServerStreaming,
  type DescMethodStreaming,
  fromBinary,
  isMessage,
  type MessageInitShape,
  type MessageShape,
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
import { createMethodUrl } from "@connectrpc/connect/protocol";
import {
  endStreamFlag,
  endStreamFromJson,
  parseContentType as parseConnectType,
  requestHeader as connectRequestHeader,
} from "@connectrpc/connect/protocol-connect";
import {
  requestHeader as grpcRequestHeader,
  validateResponse as validateGrpcResponse,
  validateTrailer,
} from "@connectrpc/connect/protocol-grpc";
import { codeFromHttpStatus } from "@connectrpc/connect/protocol-connect";
import { encodeUnaryEnvelope } from "../envelope.ts";
import { abortError, callSignals } from "./unary_client.ts";
import { type RawBody, rawBody } from "../http2/client_universal.ts";

/** Options for {@linkcode leanServerStream}. */
export interface LeanStreamOptions {
  protocol: "connect" | "grpc";
  baseUrl: string;
  /** The engine's universal client: its answers' bodies carry {@linkcode rawBody}. */
  client: UniversalClientFn;
  /** Every other streaming call (client and bidi streams). */
  fallback: Transport["stream"];
  /** Sent as `authorization: Bearer <token>`. */
  token?: string;
  /** Turns a failure to get any answer, or to read it, into the error the caller sees. */
  onNoAnswer: (error: unknown, signal: AbortSignal | undefined) => unknown;
  /** Sees every answer's status and content type. */
  onResponse?: (status: number, contentType: string) => void;
  /** Largest message accepted, in bytes. */
  readMaxBytes: number;
}

/** The `stream` method of a transport, lean for server-streaming calls. */
export function leanServerStream(options: LeanStreamOptions): Transport["stream"] {
  const authorization = options.token === undefined ? undefined : `Bearer ${options.token}`;
  const urls = new WeakMap<DescMethodStreaming, string>();
  const urlOf = (method: DescMethodStreaming) => {
    let url = urls.get(method);
    if (url === undefined) urls.set(method, url = createMethodUrl(options.baseUrl, method));
    return url;
  };
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

function checkEncoding(header: Headers, name: string): void {
  const encoding = header.get(name);
  if (encoding !== null && encoding.toLowerCase() !== "identity") {
    throw new ConnectError(`unsupported response encoding "${encoding}"`, Code.Internal, header);
  }
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
  if (envelopes.length === 1) return envelopes[0];
  const body = new Uint8Array(envelopes.reduce((n, e) => n + e.length, 0));
  let at = 0;
  for (const envelope of envelopes) {
    body.set(envelope, at);
    at += envelope.length;
  }
  return body;
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/** One envelope: its flags and its payload. */
interface Envelope {
  flags: number;
  data: Uint8Array;
}

/**
 * Cuts envelopes out of a raw body: `next()` gives one that is already complete at
 * once, and reads only when none is.
 */
class EnvelopeReader {
  #raw: RawBody;
  #readMaxBytes: number;
  #failed: (error: unknown) => ConnectError;
  #buffer: Uint8Array = new Uint8Array(0);
  #at = 0;
  #ended = false;

  constructor(raw: RawBody, readMaxBytes: number, failed: (error: unknown) => ConnectError) {
    this.#raw = raw;
    this.#readMaxBytes = readMaxBytes;
    this.#failed = failed;
  }

  /** An envelope already here, `null` at the end of the body, or `undefined`: wait. */
  take(): Envelope | null | undefined {
    for (;;) {
      const envelope = this.#cut();
      if (envelope !== undefined) return envelope;
      if (this.#ended) {
        if (this.#at < this.#buffer.length) {
          throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
        }
        return null;
      }
      const chunk = this.#raw.take();
      if (chunk === undefined) return undefined;
      this.#append(chunk);
    }
  }

  /** The next envelope, or null at the end of the body. */
  async next(): Promise<Envelope | null> {
    for (;;) {
      const envelope = this.take();
      if (envelope !== undefined) return envelope;
      let chunk;
      try {
        chunk = await this.#raw.read();
      } catch (error) {
        throw this.#failed(error);
      }
      if (chunk === null) this.#ended = true;
      else this.#append(chunk);
    }
  }

  /** Stops reading: the stream goes. */
  cancel(): void {
    this.#raw.cancel();
  }

  #append(chunk: Uint8Array): void {
    const left = this.#buffer.length - this.#at;
    if (left === 0) {
      this.#buffer = chunk;
    } else {
      const joined = new Uint8Array(left + chunk.length);
      joined.set(this.#buffer.subarray(this.#at));
      joined.set(chunk, left);
      this.#buffer = joined;
    }
    this.#at = 0;
  }

  #cut(): Envelope | undefined {
    const buffer = this.#buffer;
    const at = this.#at;
    if (buffer.length - at < 5) return undefined;
    const length =
      ((buffer[at + 1] << 24) | (buffer[at + 2] << 16) | (buffer[at + 3] << 8) | buffer[at + 4]) >>>
      0;
    if (length > this.#readMaxBytes) {
      throw new ConnectError(
        `message size ${length} is larger than configured readMaxBytes ${this.#readMaxBytes}`,
        Code.ResourceExhausted,
      );
    }
    if (buffer.length - at - 5 < length) return undefined;
    this.#at = at + 5 + length;
    return { flags: buffer[at], data: buffer.subarray(at + 5, at + 5 + length) };
  }
}

function parseOutput<O extends DescMessage>(
  method: DescMethodServerStreaming<DescMessage, O>,
  envelope: Envelope,
): MessageShape<O> {
  if (envelope.flags & 0b1) {
    throw new ConnectError(
      "received compressed envelope, but do not know how to decompress",
      Code.Internal,
    );
  }
  try {
    return fromBinary(method.output, envelope.data);
  } catch (error) {
    // Worded as connect-es words it.
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConnectError(`parse binary: ${reason}`, Code.Internal);
  }
}

/**
 * The messages of an answer as an async iterable whose `next()` settles at once for a
 * message that has already arrived. `step` turns an envelope into a message, or
 * undefined to skip it; `end` runs at the end of the body.
 */
function messagesOf<T>(
  reader: EnvelopeReader,
  step: (envelope: Envelope) => T | undefined,
  end: () => void,
  fail: (error: unknown) => ConnectError,
  signal: AbortSignal | undefined,
): AsyncIterable<T> {
  let done = false;
  const finish = (error: unknown): Promise<IteratorResult<T>> => {
    done = true;
    reader.cancel();
    return Promise.reject(fail(error));
  };
  const slow = async (): Promise<IteratorResult<T>> => {
    for (;;) {
      const envelope = await reader.next();
      if (envelope === null) {
        done = true;
        end();
        return { value: undefined, done: true };
      }
      const value = step(envelope);
      if (value !== undefined) return { value, done: false };
    }
  };
  const iterator: AsyncIterator<T> = {
    next(): Promise<IteratorResult<T>> {
      if (done) return Promise.resolve({ value: undefined, done: true });
      // As connect-es: once the caller's signal or the deadline fired, the call fails.
      if (signal?.aborted) return finish(undefined);
      try {
        for (;;) {
          const envelope = reader.take();
          if (envelope === undefined) return slow().catch(finish);
          if (envelope === null) {
            done = true;
            end();
            return Promise.resolve({ value: undefined, done: true });
          }
          const value = step(envelope);
          if (value !== undefined) return Promise.resolve({ value, done: false });
        }
      } catch (error) {
        return finish(error);
      }
    },
    return(): Promise<IteratorResult<T>> {
      if (!done) {
        done = true;
        reader.cancel();
      }
      return Promise.resolve({ value: undefined, done: true });
    },
  };
  return { [Symbol.asyncIterator]: () => iterator };
}

function grpcMessages<O extends DescMessage>(
  reader: EnvelopeReader,
  method: DescMethodServerStreaming<DescMessage, O>,
  header: Headers,
  trailer: Headers,
  foundStatus: boolean,
  fail: (error: unknown) => ConnectError,
  signal: AbortSignal | undefined,
): AsyncIterable<MessageShape<O>> {
  return messagesOf(
    reader,
    (envelope) => parseOutput(method, envelope),
    () => {
      if (!foundStatus) validateTrailer(trailer, header);
    },
    fail,
    signal,
  );
}

function connectMessages<O extends DescMessage>(
  reader: EnvelopeReader,
  method: DescMethodServerStreaming<DescMessage, O>,
  header: Headers,
  trailer: Headers,
  fail: (error: unknown) => ConnectError,
  signal: AbortSignal | undefined,
): AsyncIterable<MessageShape<O>> {
  let ended = false;
  return messagesOf(
    reader,
    (envelope) => {
      if ((envelope.flags & endStreamFlag) === endStreamFlag) {
        if (ended) {
          throw new ConnectError(
            "protocol error: received extra EndStreamResponse",
            Code.InvalidArgument,
          );
        }
        ended = true;
        let end;
        try {
          end = endStreamFromJson(envelope.data);
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          throw new ConnectError(
            `failed to parse EndStreamResponse: ${reason}`,
            Code.InvalidArgument,
          );
        }
        if (end.error) {
          const error = end.error;
          header.forEach((value, key) => error.metadata.append(key, value));
          throw error;
        }
        end.metadata.forEach((value, key) => trailer.set(key, value));
        return undefined;
      }
      if (ended) {
        throw new ConnectError(
          "protocol error: received extra message after EndStreamResponse",
          Code.InvalidArgument,
        );
      }
      return parseOutput(method, envelope);
    },
    () => {
      if (!ended) {
        throw new ConnectError("protocol error: missing EndStreamResponse", Code.InvalidArgument);
      }
    },
    fail,
    signal,
  );
}
