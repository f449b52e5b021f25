/**
 * The two async iterables that connect-es's universal bodies and streams keep asking of
 * both sides: a body of one chunk, and a stream whose errors come out converted.
 *
 * @module
 */

/**
 * A body of one chunk.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { once } from "./iterables.ts";
 * const chunks = [];
 * for await (const chunk of once(new Uint8Array([1]))) chunks.push(chunk);
 * assert.deepEqual(chunks, [new Uint8Array([1])]);
 * ```
 */
export async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/**
 * The items of `items`; what it throws comes out as `convert` makes it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rethrowing } from "./iterables.ts";
 * async function* failing() {
 *   yield 1;
 *   throw new Error("gone");
 * }
 * const seen: number[] = [];
 * await assert.rejects(async () => {
 *   for await (const n of rethrowing(failing(), (e) => new Error(`wrapped: ${e}`))) seen.push(n);
 * }, /wrapped: Error: gone/);
 * assert.deepEqual(seen, [1]);
 * ```
 */
export async function* rethrowing<T>(
  items: AsyncIterable<T>,
  convert: (error: unknown) => unknown,
): AsyncGenerator<T> {
  try {
    yield* items;
  } catch (error) {
    throw convert(error);
  }
}
