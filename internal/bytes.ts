/**
 * Byte helpers shared by the log reader, the lean streaming client and the HTTP/2 engine.
 *
 * @module
 */

/**
 * The parts one after another in a new array; `length` is their total, when the caller
 * already counted it.
 *
 * @example
 * ```ts
 * import { concatBytes } from "./bytes.ts";
 * const joined = concatBytes([new Uint8Array([1, 2]), new Uint8Array([3])]);
 * console.assert(joined.join() === "1,2,3");
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[], length?: number): Uint8Array {
  const out = new Uint8Array(length ?? parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
