/**
 * The HPACK encoder (RFC 7541) of both roles: every field goes as a static-table index
 * or a literal without indexing, so we keep no encoder state the peer could make us get
 * wrong, and an encoded block can be cached and concatenated with others.
 *
 * @module
 */
import type { HeaderField } from "./hpack.ts";
import { STATIC_TABLE } from "./hpack_tables.ts";

/** Each static name's first index. */
const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
});

/** Each static entry with a value, by `name + "\0" + value`: sent as one byte. */
const STATIC_FIELD_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (value !== "") STATIC_FIELD_INDEX.set(`${name}\0${value}`, i + 1);
});

/** Scratch space for the encoder, grown as needed. */
let scratch = new Uint8Array(1024);
let scratchAt = 0;

/**
 * Encodes fields as static-table indexes where the whole field is in the static table,
 * else as literals without indexing (with the static table's name where it has one).
 * Names must already be lower case. Throws a TypeError on a character outside Latin-1
 * or on CR, LF or NUL.
 *
 * @example
 * ```ts
 * import { HpackDecoder } from "./hpack.ts";
 * import { encodeHeaderBlock } from "./hpack_encoder.ts";
 * const block = encodeHeaderBlock([["content-type", "application/proto"]]);
 * const [[name, value]] = new HpackDecoder().decode(block);
 * console.assert(name === "content-type" && value === "application/proto");
 * ```
 */
export function encodeHeaderBlock(fields: Iterable<HeaderField>): Uint8Array {
  scratchAt = 0;
  for (const [name, value] of fields) encodeField(name, value);
  return scratch.slice(0, scratchAt);
}

/**
 * {@linkcode encodeHeaderBlock} for fields given flat: name, value, name, value…
 *
 * @example
 * ```ts
 * import { encodeFlatHeaderBlock } from "./hpack_encoder.ts";
 * // ":status: 200" is static entry 8: one byte.
 * console.assert(encodeFlatHeaderBlock([":status", "200"])[0] === 0x88);
 * ```
 */
export function encodeFlatHeaderBlock(flat: readonly string[]): Uint8Array {
  scratchAt = 0;
  for (let i = 0; i < flat.length; i += 2) encodeField(flat[i], flat[i + 1]);
  return scratch.slice(0, scratchAt);
}

function encodeField(name: string, value: string): void {
  const whole = STATIC_FIELD_INDEX.get(`${name}\0${value}`);
  if (whole !== undefined) {
    room(1);
    scratch[scratchAt++] = 0x80 | whole;
    return;
  }
  const index = STATIC_NAME_INDEX.get(name);
  if (index === undefined) {
    room(1);
    scratch[scratchAt++] = 0;
    writeString(name, name);
  } else {
    writeInteger(index, 4, 0);
  }
  writeString(value, name);
}

function room(bytes: number): void {
  if (scratchAt + bytes <= scratch.length) return;
  const bigger = new Uint8Array(Math.max(scratch.length * 2, scratchAt + bytes));
  bigger.set(scratch.subarray(0, scratchAt));
  scratch = bigger;
}

function writeInteger(value: number, prefix: number, flags: number): void {
  room(6);
  const max = (1 << prefix) - 1;
  if (value < max) {
    scratch[scratchAt++] = flags | value;
    return;
  }
  scratch[scratchAt++] = flags | max;
  value -= max;
  while (value >= 0x80) {
    scratch[scratchAt++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  scratch[scratchAt++] = value;
}

function writeString(text: string, field: string): void {
  writeInteger(text.length, 7, 0);
  room(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff || code === 0 || code === 0x0a || code === 0x0d) {
      throw new TypeError(`header ${field}: character U+${code.toString(16)} is not allowed`);
    }
    scratch[scratchAt++] = code;
  }
}
