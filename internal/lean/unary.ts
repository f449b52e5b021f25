/**
 * A lean path for the commonest call a plugin gets: a Connect or gRPC unary request in
 * binary, uncompressed, without a timeout (gRPC only where the runtime can send
 * trailers). It does what connect-es's handler does for such a call (request gate
 * before the body is read, read limit, parse, implementation, headers and trailers,
 * errors as Connect JSON with their HTTP status or as gRPC trailers) without its
 * per-call async iterators and stream plumbing. Anything else (JSON, compression,
 * timeouts, GET, gRPC-Web, streaming) goes to connect-es.
 *
 * @module
 */
import {
  create,
  type DescMethod,
  type DescMethodUnary,
  fromBinary,
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
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { readAllBytes } from "@connectrpc/connect/protocol";
import { encodeUnaryEnvelope, unaryEnvelopeMessage } from "../envelope.ts";
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

/**
 * Which lean path a request may take, or `undefined` if connect-es's own handler must
 * answer it (JSON, compression, timeouts, GET, gRPC-Web, or gRPC where the runtime
 * cannot send trailers).
 */
export function leanProtocol(request: LeanRequest, grpc: boolean): Protocol | undefined {
  if (request.method !== "POST") return undefined;
  const type = headerOf(request, "content-type");
  if (type === "application/proto") {
    const encoding = headerOf(request, "content-encoding");
    if (encoding !== null && encoding !== "identity") return undefined;
    if (headerOf(request, "connect-timeout-ms") !== null) return undefined;
    const version = headerOf(request, "connect-protocol-version");
    return version === null || version === "1" ? "connect" : undefined;
  }
  if (grpc && (type === "application/grpc" || type === "application/grpc+proto")) {
    const encoding = headerOf(request, "grpc-encoding");
    if (encoding !== null && encoding !== "identity") return undefined;
    return headerOf(request, "grpc-timeout") !== null ? undefined : "grpc";
  }
  return undefined;
}

const empty = new Uint8Array(0);

/** Builds the lean route of one unary method. */
export function leanUnaryRoute(
  method: DescMethodUnary,
  implementation: (input: unknown, context: HandlerContext) => unknown,
  options: LeanRouteOptions,
): LeanRoute {
  const procedure = `/${method.parent.typeName}/${method.name}`;
  const grpc = options.grpc ?? false;

  async function answer(request: LeanRequest, protocol: Protocol) {
    const context = new LeanContext(method, request, options.shutdownSignal, protocol);
    try {
      options.gate?.(context);
      let bytes;
      try {
        // readMaxBytes limits a gRPC message, not its envelope's five bytes.
        bytes = await readBody(request, options.readMaxBytes + (protocol === "grpc" ? 5 : 0));
      } catch (error) {
        const readSoFar = (error as { [bodyReadSoFar]?: Uint8Array })[bodyReadSoFar];
        // A gRPC body over the limit: the envelope check below says what is wrong with it
        // (a message too large, or more than one), as connect-es's envelope reader would.
        if (protocol !== "grpc" || readSoFar === undefined) throw error;
        bytes = readSoFar;
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
      let input;
      try {
        // An empty message parses to the defaults; create() skips the reader.
        input = bytes.length === 0 ? create(method.input) : fromBinary(method.input, bytes);
      } catch (error) {
        // As connect-es (and grpc-go) answer a message that does not parse.
        const reason = error instanceof Error ? error.message : String(error);
        throw new ConnectError(`parse binary: ${reason}`, Code.Internal);
      }
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
  }

  return (request) => {
    const protocol = leanProtocol(request, grpc);
    return protocol === undefined ? undefined : answer(request, protocol);
  };
}

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
