/**
 * What a server and the lean paths (`internal/lean/`) agree on, so that a call's body and
 * headers can cross between them without streams: a server hands the lean path a whole
 * request body and cheap header reads, the lean path hands back a whole response body
 * and headers shared between calls. Every server implements it (the engine's adapter,
 * `Deno.serve`, node:http2, node:http); it lives in the seam so that the runtimes' servers
 * need nothing from above it.
 *
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { UniversalServerRequest } from "@connectrpc/connect/protocol";

/**
 * On a universal response body: the whole body as bytes, so that a runtime can send it
 * without streaming it through an async iterator.
 *
 * @example
 * ```ts
 * import { wholeBody, type WholeBody } from "./lean_contract.ts";
 * const bytes = new Uint8Array([1, 2]);
 * const body: WholeBody = {
 *   [wholeBody]: bytes,
 *   async *[Symbol.asyncIterator]() {
 *     yield bytes;
 *   },
 * };
 * console.assert(body[wholeBody] === bytes);
 * ```
 */
export const wholeBody: unique symbol = Symbol("ftl-ts.wholeBody");

/**
 * On a universal request: reads the whole body at once, up to a limit, where the runtime
 * can (else it gives `undefined`). Past the limit it rejects as connect-es's readAllBytes
 * does, with what it had read under {@linkcode bodyReadSoFar}.
 */
export const readWholeBody: unique symbol = Symbol("ftl-ts.readWholeBody");

/** On the error of a whole-body read that went past its limit: the bytes read by then. */
export const bodyReadSoFar: unique symbol = Symbol("ftl-ts.bodyReadSoFar");

/**
 * The error a runtime's whole-body read rejects with past `limit` bytes.
 *
 * @example
 * ```ts
 * import { bodyOverLimit, bodyReadSoFar } from "./lean_contract.ts";
 * const error = bodyOverLimit(4, new Uint8Array(5));
 * console.assert((error as { [bodyReadSoFar]?: Uint8Array })[bodyReadSoFar]?.length === 5);
 * ```
 */
export function bodyOverLimit(limit: number, readSoFar: Uint8Array): ConnectError {
  // Worded as connect-es's readAllBytes words it when no length was declared.
  const error = new ConnectError(
    `message size is larger than configured readMaxBytes ${limit}`,
    Code.ResourceExhausted,
  );
  return Object.assign(error, { [bodyReadSoFar]: readSoFar });
}

/**
 * On a universal request: reads one header (lower-case name) without making the
 * request's Headers, where the runtime keeps them in a cheaper form.
 */
export const peekHeader: unique symbol = Symbol("ftl-ts.peekHeader");

/** A universal request that may carry {@linkcode readWholeBody} and {@linkcode peekHeader}. */
export type LeanRequest = UniversalServerRequest & {
  [readWholeBody]?: (limit: number) => Promise<Uint8Array> | undefined;
  [peekHeader]?: (name: string) => string | null;
};

/** A body iterable that also holds its bytes under {@linkcode wholeBody}. */
export type WholeBody = AsyncIterable<Uint8Array> & { [wholeBody]: Uint8Array };

/**
 * On a Headers instance the lean paths share between calls (and never change): the same
 * headers as a frozen plain record, which a runtime can send without iterating them.
 */
export const plainHeaders: unique symbol = Symbol("ftl-ts.plainHeaders");

/** A Headers carrying {@linkcode plainHeaders}. */
export type SharedHeaders = Headers & { readonly [plainHeaders]: Readonly<Record<string, string>> };

/**
 * The bytes a response body carries under {@linkcode wholeBody}, if it does.
 *
 * @example
 * ```ts
 * import { wholeBodyOf } from "./lean_contract.ts";
 * console.assert(wholeBodyOf(undefined) === undefined);
 * ```
 */
export function wholeBodyOf(body: AsyncIterable<Uint8Array> | undefined): Uint8Array | undefined {
  return (body as Partial<WholeBody> | undefined)?.[wholeBody];
}

/**
 * The frozen record a shared Headers carries under {@linkcode plainHeaders}, if it is one.
 *
 * @example
 * ```ts
 * import { plainHeadersOf } from "./lean_contract.ts";
 * console.assert(plainHeadersOf(new Headers()) === undefined);
 * ```
 */
export function plainHeadersOf(
  header: Headers | undefined,
): Readonly<Record<string, string>> | undefined {
  return (header as Partial<SharedHeaders> | undefined)?.[plainHeaders];
}
