/**
 * A lean path for server-streaming calls in binary Connect or gRPC, uncompressed,
 * without a timeout (gRPC only where the runtime can send trailers), as
 * `unary.ts` is for unary ones. It does what connect-es's stream handler does
 * for such a call (request gate before the body is read, read limit, exactly one input
 * message, the answer's headers once the first message is out, errors and trailers as
 * Connect's EndStreamResponse or gRPC's trailers) without its chain of async
 * iterators: each message the implementation yields is serialized into its envelope
 * and handed to the runtime, once per message. Anything else goes to connect-es.
 *
 * @module
 */
import { create, type DescMethodServerStreaming, isMessage, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import { endStreamFlag, endStreamToJson } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { encodeUnaryEnvelope } from "./envelope.ts";
import { once } from "../iterables.ts";
import { parseBinary } from "./messages.ts";
import type { LeanAnswerOf, LeanRouteOptions, Protocol } from "./route.ts";
import { LeanContext, readBody, readSoFar, shared } from "./unary.ts";
import type { SharedHeaders } from "../runtime/lean_contract.ts";

const streamHeader: Record<Protocol, SharedHeaders> = {
  connect: shared(new Headers({ "content-type": "application/connect+proto" })),
  grpc: shared(new Headers({ "content-type": "application/grpc+proto" })),
};

/**
 * The one input message of a server-streaming request body, checked as connect-es's
 * envelope reader and `ensureSingle` check it, in the same order.
 */
function singleInput(body: Uint8Array, readMaxBytes: number, protocol: Protocol): Uint8Array {
  let message: Uint8Array | undefined;
  for (let at = 0; at < body.length;) {
    if (body.length - at < 5) {
      throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
    }
    const flags = body[at];
    const length = ((body[at + 1] << 24) | (body[at + 2] << 16) | (body[at + 3] << 8) |
      body[at + 4]) >>> 0;
    if (length > readMaxBytes) {
      throw new ConnectError(
        `message size ${length} is larger than configured readMaxBytes ${readMaxBytes}`,
        Code.ResourceExhausted,
      );
    }
    if (body.length - at - 5 < length) {
      throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
    }
    const data = body.subarray(at + 5, at + 5 + length);
    at += 5 + length;
    if (flags & 0b1) {
      throw new ConnectError(
        "received compressed envelope, but do not know how to decompress",
        Code.Internal,
      );
    }
    // Connect's reader skips an end-of-stream envelope in a request.
    if (protocol === "connect" && (flags & endStreamFlag) === endStreamFlag) continue;
    if (message !== undefined) {
      throw new ConnectError(
        "protocol error: received extra input message for server-streaming method",
        Code.Unimplemented,
      );
    }
    message = data;
  }
  if (message === undefined) {
    throw new ConnectError(
      "protocol error: missing input message for server-streaming method",
      Code.Unimplemented,
    );
  }
  return message;
}

/** The lean answer of one server-streaming method, for its route (route.ts). */
export const serverStreamAnswer: LeanAnswerOf<DescMethodServerStreaming> = (
  method,
  { implementation, options, procedure },
) => {
  return async function answer(request, protocol) {
    const context = new LeanContext(
      method,
      request,
      options.shutdownSignal,
      protocol,
      streamHeader[protocol],
    );
    // As connect-es: the status is in the trailers from the start (a runtime may take
    // them when it sends the head), an error replaces it.
    if (protocol === "grpc") context.responseTrailer.set("grpc-status", "0");
    let it: AsyncIterator<unknown> | undefined;
    let first: IteratorResult<unknown>;
    try {
      options.gate?.(context);
      let bytes;
      try {
        bytes = await readBody(request, options.readMaxBytes + 5);
      } catch (error) {
        bytes = readSoFar(error);
      }
      bytes = singleInput(bytes, options.readMaxBytes, protocol);
      const input = bytes.length === 0 ? create(method.input) : parseBinary(method.input, bytes);
      const output = implementation(input, context) as AsyncIterable<unknown>;
      it = output[Symbol.asyncIterator]();
      // As connect-es: the answer starts with the first message, so that an
      // implementation can set headers until then.
      first = await it.next();
    } catch (thrown) {
      const error = options.toConnectError(thrown, context.signalIfAny, procedure);
      context.finish(error);
      return errorAnswer(context, protocol, error);
    }
    const body = new LeanStreamBody(method, it, first, context, protocol, options, procedure);
    return {
      status: 200,
      header: context.headerToSend,
      body,
      trailer: protocol === "grpc" ? body.trailer : undefined,
    };
  };
};

/** The answer to a call that failed before its first message. */
function errorAnswer(
  context: LeanContext,
  protocol: Protocol,
  error: ConnectError,
): UniversalServerResponse {
  if (protocol === "grpc") {
    return {
      status: 200,
      header: context.headerToSend,
      body: once(new Uint8Array(0)),
      trailer: setTrailerStatus(context.responseTrailer, error),
    };
  }
  return {
    status: 200,
    header: context.headerToSend,
    body: once(endStream(context, error)),
  };
}

const encoder = new TextEncoder();

/** Connect's EndStreamResponse envelope: the error if any, the trailers as metadata. */
function endStream(context: LeanContext, error: ConnectError | undefined): Uint8Array {
  const metadata = context.trailerIfAny ?? new Headers();
  const json = encoder.encode(JSON.stringify(endStreamToJson(metadata, error, {})));
  const envelope = encodeUnaryEnvelope(json);
  envelope[0] = endStreamFlag;
  return envelope;
}

/**
 * The body of a lean streamed answer: an envelope per message the implementation
 * yields, then (Connect) the EndStreamResponse; gRPC's status goes into `trailer`
 * once the messages have ended.
 */
class LeanStreamBody implements AsyncIterable<Uint8Array>, AsyncIterator<Uint8Array> {
  /** gRPC: the trailers, complete once the body has ended. */
  readonly trailer: Headers | undefined;
  #method: DescMethodServerStreaming;
  #it: AsyncIterator<unknown>;
  #first: IteratorResult<unknown> | undefined;
  #context: LeanContext;
  #protocol: Protocol;
  #options: LeanRouteOptions;
  #procedure: string;
  #done = false;

  constructor(
    method: DescMethodServerStreaming,
    it: AsyncIterator<unknown>,
    first: IteratorResult<unknown>,
    context: LeanContext,
    protocol: Protocol,
    options: LeanRouteOptions,
    procedure: string,
  ) {
    this.#method = method;
    this.#it = it;
    this.#first = first;
    this.#context = context;
    this.#protocol = protocol;
    this.#options = options;
    this.#procedure = procedure;
    this.trailer = protocol === "grpc" ? context.responseTrailer : undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#done) return { value: undefined, done: true };
    let result: IteratorResult<unknown>;
    let bytes: Uint8Array;
    try {
      if (this.#first !== undefined) {
        result = this.#first;
        this.#first = undefined;
      } else {
        result = await this.#it.next();
      }
      if (result.done) return this.#end(undefined);
      bytes = this.#serialize(result.value);
    } catch (thrown) {
      const error = this.#options.toConnectError(
        thrown,
        this.#context.signalIfAny,
        this.#procedure,
      );
      // The implementation's iterator is left as connect-es leaves it after a throw.
      return this.#end(error);
    }
    return { value: encodeUnaryEnvelope(bytes), done: false };
  }

  /** The runtime stopped reading (the client went away): the implementation stops too. */
  async return(): Promise<IteratorResult<Uint8Array>> {
    if (!this.#done) {
      this.#done = true;
      this.#context.finish();
      await this.#it.return?.();
    }
    return { value: undefined, done: true };
  }

  #serialize(value: unknown): Uint8Array {
    const output = this.#method.output;
    const message = isMessage(value, output) ? value : create(output, value as never);
    try {
      return toBinary(output, message);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ConnectError(`serialize binary: ${reason}`, Code.Internal);
    }
  }

  #end(error: ConnectError | undefined): IteratorResult<Uint8Array> {
    this.#done = true;
    this.#context.finish(error);
    if (this.#protocol === "grpc") {
      if (error !== undefined) setTrailerStatus(this.trailer!, error);
      return { value: undefined, done: true };
    }
    // The EndStreamResponse is the last chunk; the next call ends the body.
    return { value: endStream(this.#context, error), done: false };
  }
}
