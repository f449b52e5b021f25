/**
 * What the HTTP/2 engine fails with: {@linkcode Http2Error} for a stream or a whole
 * connection, {@linkcode BodyTooLarge} for a body read past its limit.
 *
 * @module
 */
import { errorName } from "./frames.ts";

/**
 * An HTTP/2 failure: of a stream (it was reset) or of the whole connection.
 *
 * @example
 * ```ts
 * import { Http2Error } from "./errors.ts";
 * const refused = new Http2Error("refused", 7, { remote: true, unprocessed: true });
 * console.assert(refused.codeName === "REFUSED_STREAM" && refused.unprocessed);
 * ```
 */
export class Http2Error extends Error {
  /** Always "Http2Error". */
  override name = "Http2Error";
  /** The RFC 9113 error code. */
  readonly code: number;
  /** Whether the peer sent it (RST_STREAM or GOAWAY), rather than we. */
  readonly remote: boolean;
  /** The peer never processed the stream: sending it again is safe. */
  readonly unprocessed: boolean;
  /** Whether the whole connection failed, not just one stream. */
  readonly connection: boolean;

  /** `options` default to a local stream error; `cause` is kept as the error's cause. */
  constructor(
    message: string,
    code: number,
    options: { remote?: boolean; unprocessed?: boolean; connection?: boolean; cause?: unknown } =
      {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.remote = options.remote ?? false;
    this.unprocessed = options.unprocessed ?? false;
    this.connection = options.connection ?? false;
  }

  /** The code's RFC 9113 name. */
  get codeName(): string {
    return errorName(this.code);
  }
}

/**
 * What `H2Stream.readAll` rejects with past its limit, holding what was read.
 *
 * @example
 * ```ts
 * import { BodyTooLarge } from "./errors.ts";
 * const error = new BodyTooLarge(4, new Uint8Array(5));
 * console.assert(error.readSoFar.length === 5);
 * ```
 */
export class BodyTooLarge extends Error {
  /** Always "BodyTooLarge". */
  override name = "BodyTooLarge";
  /** The limit passed. */
  readonly limit: number;
  /** The bytes read by then. */
  readonly readSoFar: Uint8Array;
  /** `readSoFar`: the bytes read when the limit was passed. */
  constructor(limit: number, readSoFar: Uint8Array) {
    super(`body larger than ${limit} bytes`);
    this.limit = limit;
    this.readSoFar = readSoFar;
  }
}

/**
 * A thrown value's message, for an error of our own that names its cause.
 *
 * @example
 * ```ts
 * import { messageOf } from "./errors.ts";
 * console.assert(messageOf(new Error("reset")) === "reset" && messageOf(42) === "42");
 * ```
 */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
