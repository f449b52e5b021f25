/**
 * The HTTP/2 engine's client behind connect-es's `UniversalClientFn`, so that the
 * Connect, gRPC and gRPC-Web transports run over it on any runtime: the request body
 * is sent as the peer's windows allow (the body's iterator is not pulled while a
 * stream has about 64 KiB queued), the answer's body is read as the caller consumes it
 * (our windows refill only then, so a slow reader holds the server back), HTTP
 * trailers are filled in once the body has ended (gRPC's status), and the call's
 * signal resets the stream (RST_STREAM CANCEL).
 *
 * A stream the server never took (REFUSED_STREAM, above GOAWAY's last stream id) is
 * opened again once, with the body bytes sent so far, as long as they are few (64 KiB).
 *
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type {
  UniversalClientFn,
  UniversalClientRequest,
  UniversalClientResponse,
} from "@connectrpc/connect/protocol";
import type { PluginHttpClient } from "../runtime/types.ts";
import {
  ANSWER_MAX_BYTES,
  type H2Client,
  type H2ClientOptions,
  H2Pool,
  type StreamInit,
} from "./client.ts";
import { streamFailure } from "./client_session.ts";
import { Http2Error } from "./errors.ts";
import type { HeaderBlock } from "./header_block.ts";
import {
  CANCEL,
  ENHANCE_YOUR_CALM,
  errorName,
  HTTP_1_1_REQUIRED,
  INADEQUATE_SECURITY,
  REFUSED_STREAM,
} from "./frames.ts";
import type { H2Stream } from "./stream.ts";

/**
 * On the body of a response from {@linkcode createUniversalClient}: the same body read
 * chunk by chunk without an async iterator, for a lean reader that takes what has
 * already arrived without waiting a turn.
 */
export const rawBody: unique symbol = Symbol("ftl-ts.rawBody");

/**
 * What {@linkcode rawBody} gives.
 *
 * @example
 * ```ts
 * import type { RawBody } from "./client_universal.ts";
 * // Reads everything still to come, taking what has already arrived first.
 * async function drain(body: RawBody): Promise<number> {
 *   let size = 0;
 *   for (let chunk = body.take() ?? await body.read(); chunk; chunk = body.take() ?? await body.read()) {
 *     size += chunk.length;
 *   }
 *   return size;
 * }
 * ```
 */
export interface RawBody {
  /** A chunk that has already arrived (taken), or undefined: then `read()`. */
  take(): Uint8Array | undefined;
  /** The next chunk; null at the end (the trailers are filled in then). Rejects as the body's iterator does. */
  read(): Promise<Uint8Array | null>;
  /** Done with the answer: the stream is reset if it is still open. */
  cancel(): void;
}

/** Request body bytes kept to send again on a new stream, at most. */
const REPLAY_LIMIT = 64 * 1024;

/**
 * Options for {@linkcode openEngineHttpClient}: the client's, with `maxResponseBytes`
 * defaulting to {@linkcode ANSWER_MAX_BYTES}.
 *
 * @example
 * ```ts
 * import type { EngineHttpClientOptions } from "./client_universal.ts";
 * const options: EngineHttpClientOptions = {
 *   authority: "127.0.0.1:8123",
 *   connect: () => Promise.reject(new Error("nothing to connect to here")),
 * };
 * ```
 */
export interface EngineHttpClientOptions extends Omit<H2ClientOptions, "maxResponseBytes"> {
  /** The largest whole answer `post()` takes. Default {@linkcode ANSWER_MAX_BYTES}. */
  maxResponseBytes?: number;
  /** Connections calls are spread over. Default 2. */
  connections?: number;
}

/**
 * A plugin's HTTP client on the engine: `client` for every request connect-es makes
 * (streams, gRPC-Web), `post` for whole-body unary calls, both over the same pool.
 *
 * @example
 * ```ts
 * import { openEngineHttpClient } from "./client_universal.ts";
 * const http = openEngineHttpClient({
 *   authority: "127.0.0.1:8123",
 *   connect: () => Promise.reject(new Error("no plugin in this example")),
 * });
 * const failed = await http
 *   .client({ url: "http://127.0.0.1:8123/x", method: "POST", header: new Headers() })
 *   .catch((error: Error) => error.message);
 * console.assert(failed === "no plugin in this example");
 * http.close();
 * ```
 */
export function openEngineHttpClient(options: EngineHttpClientOptions): PluginHttpClient {
  const pool = new H2Pool(options.connections ?? 2, {
    ...options,
    maxResponseBytes: options.maxResponseBytes ?? ANSWER_MAX_BYTES,
  });
  return {
    client: createUniversalClient(pool),
    post: (url, header, body, signal) => pool.post(url, header, body, signal),
    postTrailers: true,
    close: () => pool.close(),
  };
}

/**
 * A connect-es `UniversalClientFn` over an {@linkcode H2Pool}.
 *
 * @example
 * ```ts
 * import { H2Pool } from "./client.ts";
 * import { createUniversalClient } from "./client_universal.ts";
 * const pool = new H2Pool(1, {
 *   authority: "127.0.0.1:8123",
 *   maxResponseBytes: 1024,
 *   connect: () => Promise.reject(new Error("no plugin in this example")),
 * });
 * const client = createUniversalClient(pool);
 * const failed = await client({ url: "http://127.0.0.1:8123/x", method: "GET", header: new Headers() })
 *   .catch((error: Error) => error.message);
 * console.assert(failed === "no plugin in this example");
 * pool.close();
 * ```
 */
export function createUniversalClient(pool: H2Pool): UniversalClientFn {
  return (request) => new Call(pool.pick(), pool.pathOf(request.url), request).start();
}

/** One request and its answer. */
class Call {
  readonly #client: H2Client;
  readonly #init: StreamInit;
  readonly #request: UniversalClientRequest;
  #stream!: H2Stream;
  /** Why the call failed on our side (the signal's reason, the request body's error). */
  #failure?: unknown;
  /** Body chunks sent so far, while a retry may need them. */
  #replay?: Uint8Array[] = [];
  #replayBytes = 0;
  /** The request body has ended. */
  #bodyEnded = false;
  /** The answer is done with (read to its end, failed or abandoned). */
  #finished = false;
  #onAbort?: () => void;

  constructor(client: H2Client, path: string, request: UniversalClientRequest) {
    this.#client = client;
    this.#request = request;
    this.#init = {
      method: request.method,
      path,
      header: request.header,
      endStream: request.body === undefined,
      signal: request.signal,
    };
  }

  async start(): Promise<UniversalClientResponse> {
    const signal = this.#request.signal;
    let retried = false;
    try {
      this.#stream = await this.#client.request(this.#init);
    } catch (error) {
      // Its connection closed while it waited for a slot: never sent.
      if (!(error instanceof Http2Error && error.unprocessed)) throw connectErrorOf(error);
      retried = true;
      this.#stream = await this.#client.request(this.#init).catch((again) => {
        throw connectErrorOf(again);
      });
    }
    if (signal !== undefined) {
      this.#onAbort = () => {
        this.#failure ??= signal.reason;
        this.#stream.reset(CANCEL);
      };
      signal.addEventListener("abort", this.#onAbort, { once: true });
      if (signal.aborted) this.#onAbort();
    }
    if (this.#request.body !== undefined) this.#pump(this.#request.body);
    let head: HeaderBlock;
    for (;;) {
      try {
        head = await this.#stream.head();
        break;
      } catch (error) {
        if (
          retried || this.#failure !== undefined || this.#replay === undefined ||
          !(error instanceof Http2Error && error.unprocessed)
        ) {
          this.#finish();
          throw this.#error(error);
        }
        retried = true;
        await this.#reopen().catch((reopenError) => {
          this.#finish();
          throw this.#failure ?? reopenError;
        });
      }
    }
    this.#replay = undefined;
    const trailer = new Headers();
    return {
      status: head.status!,
      header: head.toHeaders(),
      body: this.#body(trailer),
      trailer,
    };
  }

  /** A new stream for a request the server never took, with the body sent so far. */
  async #reopen(): Promise<void> {
    const stream = await this.#client.request(this.#init);
    const replay = this.#replay;
    if (this.#failure !== undefined || replay === undefined) {
      stream.reset(CANCEL);
      throw this.#failure ?? new ConnectError("a refused request's body is gone", Code.Unavailable);
    }
    this.#stream = stream;
    for (const chunk of replay) stream.write(chunk);
    if (this.#bodyEnded) stream.end();
  }

  /** Sends the request body as the windows allow. */
  async #pump(body: AsyncIterable<Uint8Array>): Promise<void> {
    const it = body[Symbol.asyncIterator]();
    let done = false;
    try {
      for (;;) {
        const next = await it.next();
        if (next.done) {
          done = true;
          this.#bodyEnded = true;
          this.#stream.end();
          return;
        }
        if (this.#over()) return;
        const chunk = next.value;
        if (this.#replay !== undefined) {
          this.#replay.push(chunk);
          this.#replayBytes += chunk.length;
          if (this.#replayBytes > REPLAY_LIMIT) this.#replay = undefined;
        }
        const stream = this.#stream;
        if (!stream.write(chunk)) await stream.whenWritable();
        if (this.#over()) return;
      }
    } catch (error) {
      done = true;
      // The body could not be made (or sent): the call fails with that.
      this.#failure ??= error;
      this.#stream.reset(CANCEL);
    } finally {
      if (!done) await it.return?.().catch(() => {});
    }
  }

  /** Whether nothing more of the request body is wanted. */
  #over(): boolean {
    if (this.#failure !== undefined || this.#finished) return true;
    // A closed stream may still be opened again (a refused one): keep the body then.
    return this.#stream.isClosed && this.#replay === undefined;
  }

  /** The answer's body, read as the caller consumes it; the trailers filled in at its end. */
  #body(trailer: Headers): AsyncIterable<Uint8Array> & { [rawBody]: RawBody } {
    const read = async (): Promise<Uint8Array | null> => {
      const stream = this.#stream;
      let chunk: Uint8Array | null;
      try {
        chunk = await stream.read();
      } catch (error) {
        this.#finish();
        throw this.#error(error);
      }
      if (chunk !== null) return chunk;
      const trailers = stream.trailers;
      if (trailers !== undefined) {
        const raw = trailers.raw;
        for (let i = trailers.start; i < raw.length; i += 2) trailer.append(raw[i], raw[i + 1]);
      }
      this.#finish();
      return null;
    };
    return {
      [rawBody]: {
        take: () => this.#stream.takeChunk(),
        read,
        cancel: () => this.#finish(),
      },
      [Symbol.asyncIterator]: (): AsyncIterator<Uint8Array> => ({
        next: async (): Promise<IteratorResult<Uint8Array>> => {
          const chunk = await read();
          return chunk === null ? { value: undefined, done: true } : { value: chunk, done: false };
        },
        return: (): Promise<IteratorResult<Uint8Array>> => {
          this.#finish();
          return Promise.resolve({ value: undefined, done: true });
        },
      }),
    };
  }

  /** The call is over: its stream goes too (an answer that ended before our request did). */
  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#replay = undefined;
    if (this.#onAbort !== undefined) {
      this.#request.signal!.removeEventListener("abort", this.#onAbort);
    }
    if (!this.#stream.isClosed) this.#stream.reset(CANCEL);
  }

  /** What the caller sees of a failure. */
  #error(error: unknown): unknown {
    if (this.#failure !== undefined) return this.#failure;
    return connectErrorOf(streamFailure(this.#stream, error));
  }
}

/**
 * An HTTP/2 failure as the ConnectError a caller sees: the connection's (lost, closed,
 * going away) is UNAVAILABLE; a stream reset by the server maps as gRPC maps it
 * (REFUSED_STREAM UNAVAILABLE, CANCEL CANCELED, ENHANCE_YOUR_CALM RESOURCE_EXHAUSTED,
 * INADEQUATE_SECURITY and HTTP_1_1_REQUIRED PERMISSION_DENIED, others INTERNAL).
 */
function connectErrorOf(error: unknown): unknown {
  if (!(error instanceof Http2Error)) return error;
  const code = error.connection || error.unprocessed
    ? Code.Unavailable
    : !error.remote
    ? Code.Internal
    : error.code === REFUSED_STREAM
    ? Code.Unavailable
    : error.code === CANCEL
    ? Code.Canceled
    : error.code === ENHANCE_YOUR_CALM
    ? Code.ResourceExhausted
    : error.code === INADEQUATE_SECURITY || error.code === HTTP_1_1_REQUIRED
    ? Code.PermissionDenied
    : Code.Internal;
  const what = error.connection ? "connection" : `stream (${errorName(error.code)})`;
  return new ConnectError(`http/2 ${what}: ${error.message}`, code, undefined, undefined, error);
}
