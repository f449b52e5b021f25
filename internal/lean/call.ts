/**
 * What both lean client paths (unary_client.ts, stream_client.ts) do around a call as
 * connect-es's transports do it: the options they share, the deadline and the combined
 * signal, the error of a call that was cancelled or timed out, each method's URL, and
 * the check of the answer's compression.
 *
 * @module
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createMethodUrl } from "@connectrpc/connect/protocol";

/** The options both lean client paths take. */
export interface LeanCallOptions {
  baseUrl: string;
  /** Sent as `authorization: Bearer <token>`. */
  token?: string;
  /** Turns a failure to get any answer (or, streaming, to read it) into the caller's error. */
  onNoAnswer: (error: unknown, signal: AbortSignal | undefined) => unknown;
  /** Sees every answer's status and content type. */
  onResponse?: (status: number, contentType: string) => void;
}

/** The `authorization` header value for a token, made once per transport. */
export function authorizationOf(token: string | undefined): string | undefined {
  return token === undefined ? undefined : `Bearer ${token}`;
}

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

/** The error of a call its caller's signal or its deadline ended, as connect-es words it. */
export function abortError(signal?: AbortSignal, deadline?: AbortSignal): ConnectError {
  if (deadline?.aborted && !signal?.aborted) {
    return new ConnectError("the operation timed out", Code.DeadlineExceeded);
  }
  return ConnectError.from(signal?.reason ?? new Error("aborted"), Code.Canceled);
}

/** Each method's URL under `baseUrl`, made once. */
export function methodUrls(baseUrl: string): (method: DescMethod) => string {
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

/** Refuses an answer compressed (header `name`) in anything but identity, as connect-es does. */
export function checkEncoding(header: Headers, name: string): void {
  const encoding = header.get(name);
  if (encoding !== null && encoding.toLowerCase() !== "identity") {
    throw new ConnectError(`unsupported response encoding "${encoding}"`, Code.Internal, header);
  }
}
