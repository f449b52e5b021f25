/**
 * A lean path for the commonest call a plugin gets: a Connect or gRPC unary request in
 * binary, uncompressed, without a timeout (gRPC only where the runtime can send
 * trailers). It does what connect-es's handler does for such a call (request gate
 * before the body is read, read limit, parse, implementation, headers and trailers,
 * errors as Connect JSON with their HTTP status or as gRPC trailers) without its
 * per-call async iterators and stream plumbing. Anything else (JSON, compression,
 * timeouts, GET, gRPC-Web, streaming) goes to connect-es (route.ts decides). It also
 * holds what the streaming answer (stream.ts) shares with it: the lean HandlerContext,
 * cheap header reads, the whole-body read and the shared response headers.
 *
 * @module
 */
import {
  create,
  type DescMethod,
  type DescMethodUnary,
  isMessage,
  toBinary,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type HandlerContext,
} from "@connectrpc/connect";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { readAllBytes } from "@connectrpc/connect/protocol";
import { encodeUnaryEnvelope, unaryEnvelopeMessage } from "./envelope.ts";
import { parseBinary } from "./messages.ts";
import type { LeanAnswerOf, Protocol } from "./route.ts";
import {
  bodyReadSoFar,
  type LeanRequest,
  peekHeader,
  plainHeaders,
  readWholeBody,
  type SharedHeaders,
  type WholeBody,
  wholeBody,
} from "../runtime/lean_contract.ts";

/**
 * One request header of a call, by lower-case name, without making the request's
 * Headers when the call took the lean path.
 */
export function requestHeaderOf(context: HandlerContext, name: string): string | null {
  return context instanceof LeanContext
    ? context.peekRequestHeader(name)
    : context.requestHeader.get(name);
}

/** One request header, by lower-case name, the cheapest way the runtime offers. */
export function headerOf(request: LeanRequest, name: string): string | null {
  // Called as methods: a runtime may implement them on a class.
  return request[peekHeader] ? request[peekHeader](name) : request.header.get(name);
}

/** A class for the same reason as the runtimes' request classes: one shape, one object. */
class Whole {
  readonly [wholeBody]: Uint8Array;

  constructor(bytes: Uint8Array) {
    this[wholeBody] = bytes;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    yield this[wholeBody];
  }
}

function bodyOf(bytes: Uint8Array): WholeBody {
  return new Whole(bytes);
}

const empty = new Uint8Array(0);

/** The lean answer of one unary method, for its route (route.ts). */
export const unaryAnswer: LeanAnswerOf<DescMethodUnary> = (
  method,
  { implementation, options, procedure },
) => {
  return async function answer(request, protocol) {
    const context = new LeanContext(method, request, options.shutdownSignal, protocol);
    try {
      options.gate?.(context);
      let bytes;
      try {
        // readMaxBytes limits a gRPC message, not its envelope's five bytes.
        bytes = await readBody(request, options.readMaxBytes + (protocol === "grpc" ? 5 : 0));
      } catch (error) {
        if (protocol !== "grpc") throw error;
        bytes = readSoFar(error);
      }
      if (protocol === "grpc") {
        const message = unaryEnvelopeMessage(bytes, "input", options.readMaxBytes);
        if (message === undefined) {
          throw new ConnectError(
            "protocol error: missing input message for unary method",
            Code.Unimplemented,
          );
        }
        bytes = message;
      }
      // An empty message parses to the defaults; create() skips the reader.
      const input = bytes.length === 0 ? create(method.input) : parseBinary(method.input, bytes);
      let output = await implementation(input, context);
      if (!isMessage(output, method.output)) output = create(method.output, output as never);
      const body = toBinary(method.output, output as never);
      context.finish();
      if (protocol === "grpc") {
        const trailer = context.trailerIfAny;
        return {
          status: 200,
          header: context.headerToSend,
          body: bodyOf(encodeUnaryEnvelope(body)),
          trailer: trailer ? setTrailerStatus(trailer, undefined) : grpcOk,
        };
      }
      return { status: 200, header: withTrailers(context), body: bodyOf(body) };
    } catch (thrown) {
      const error = options.toConnectError(thrown, context.signalIfAny, procedure);
      context.finish(error);
      if (protocol === "grpc") {
        return {
          status: 200,
          header: context.headerToSend,
          body: bodyOf(empty),
          trailer: setTrailerStatus(context.trailerIfAny ?? new Headers(), error),
        };
      }
      context.responseHeader.set("content-type", "application/json");
      const header = withTrailers(context);
      error.metadata.forEach((value, key) => header.set(key, value));
      return {
        status: codeToHttpStatus(error.code),
        header,
        body: bodyOf(errorToJsonBytes(error, {})),
      };
    }
  };
};

/**
 * A HandlerContext that builds only what a handler touches: most never read their
 * signal, trailers or context values, and connect-es's createHandlerContext (three
 * Headers copies, a deadline, a linked AbortController) was a large part of a call.
 */
export class LeanContext implements HandlerContext {
  readonly service: HandlerContext["service"];
  readonly requestMethod = "POST";
  readonly url: string;
  readonly timeoutMs = (): undefined => undefined;
  #request: LeanRequest;
  #shutdown: AbortSignal;
  #controller?: AbortController;
  #detach?: () => void;
  #trailer?: Headers;
  #header?: Headers;
  #values?: ContextValues;

  readonly #defaultHeader: SharedHeaders;

  constructor(
    readonly method: DescMethod,
    request: LeanRequest,
    shutdown: AbortSignal,
    readonly protocolName: Protocol,
    defaultHeaders: SharedHeaders = defaultHeader[protocolName],
  ) {
    this.service = method.parent;
    this.url = request.url;
    this.#request = request;
    this.#shutdown = shutdown;
    this.#defaultHeader = defaultHeaders;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      const controller = new AbortController();
      this.#controller = controller;
      const sources = [this.#request.signal, this.#shutdown];
      const gone = sources.find((s) => s.aborted);
      if (gone) {
        controller.abort(gone.reason);
      } else {
        const onAbort = (event: Event) =>
          controller.abort((event.target as AbortSignal).reason ?? new Error("aborted"));
        for (const s of sources) s.addEventListener("abort", onAbort);
        // The shutdown signal lives as long as the server: drop our listener per call.
        this.#detach = () => sources.forEach((s) => s.removeEventListener("abort", onAbort));
      }
    }
    return this.#controller.signal;
  }

  /** The signal if a handler asked for it, else one that is aborted only by shutdown. */
  get signalIfAny(): AbortSignal {
    return this.#controller?.signal ?? this.#shutdown;
  }

  /** Made only when asked for: the lean path reads what it needs with headerOf. */
  get requestHeader(): Headers {
    return this.#request.header;
  }

  /** One request header without making them all. */
  peekRequestHeader(name: string): string | null {
    return headerOf(this.#request, name);
  }

  get responseHeader(): Headers {
    return (this.#header ??= new Headers(this.#defaultHeader));
  }

  /**
   * The response headers to send. Untouched, they are a shared instance that only the
   * runtime reads: one Headers less per call.
   */
  get headerToSend(): Headers {
    return this.#header ?? this.#defaultHeader;
  }

  get responseTrailer(): Headers {
    return (this.#trailer ??= new Headers());
  }

  get trailerIfAny(): Headers | undefined {
    return this.#trailer;
  }

  get values(): ContextValues {
    return (this.#values ??= this.#request.contextValues ?? createContextValues());
  }

  /** Ends the call: its signal aborts (as connect-es does) and listeners go. */
  finish(reason?: unknown): void {
    this.#detach?.();
    this.#controller?.abort(reason);
  }
}

/** Marks a Headers instance that is never changed as shared (see {@linkcode plainHeaders}). */
export function shared(headers: Headers): SharedHeaders {
  const record: Record<string, string> = {};
  headers.forEach((value, key) => (record[key] = value));
  return Object.assign(headers, { [plainHeaders]: Object.freeze(record) });
}

const defaultHeader: Record<Protocol, SharedHeaders> = {
  connect: shared(new Headers({ "content-type": "application/proto" })),
  grpc: shared(new Headers({ "content-type": "application/grpc+proto" })),
};
const grpcOk: SharedHeaders = shared(setTrailerStatus(new Headers(), undefined));

/** The response headers, with the trailers folded in as Connect unary does. */
function withTrailers(context: LeanContext): Headers {
  if (!context.trailerIfAny) return context.headerToSend;
  const header = context.responseHeader;
  context.trailerIfAny?.forEach((value, key) => header.set(`trailer-${key}`, value));
  return header;
}

/**
 * What a body read that went past its limit had read by then, so that the envelope
 * check says what is wrong with the body (a message too large, or more than one), as
 * connect-es's envelope reader would; any other failure is thrown again.
 */
export function readSoFar(error: unknown): Uint8Array {
  const bytes = (error as { [bodyReadSoFar]?: Uint8Array })[bodyReadSoFar];
  if (bytes === undefined) throw error;
  return bytes;
}

/** The whole request body up to `limit`, the cheapest way the runtime offers. */
export function readBody(request: LeanRequest, limit: number): Promise<Uint8Array> {
  const declared = headerOf(request, "content-length");
  // Most gRPC clients declare no length; a declared one over the limit is refused unread.
  if (declared === null || Number(declared) <= limit) {
    // Called as a method: a runtime may implement it on a class.
    const whole = request[readWholeBody] ? request[readWholeBody](limit) : undefined;
    if (whole) return whole;
  }
  // connect-es's own reader: the read limit (before reading, from content-length) and
  // a body that breaks its declared length.
  return readAllBytes(request.body as AsyncIterable<Uint8Array>, limit, declared);
}
