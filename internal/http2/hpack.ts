/**
 * HPACK (RFC 7541) for the host's HTTP/2 client: a full decoder (static and dynamic
 * tables, Huffman strings, table size updates) and an encoder that sends every field
 * as a literal without indexing, so that the client keeps no encoder state the peer
 * could make it get wrong.
 *
 * Header names and values are byte strings: one character per byte (Latin-1), as
 * `Headers` keeps them.
 *
 * @module
 */

/**
 * A decoding failure: the connection is to be closed with COMPRESSION_ERROR.
 *
 * @example
 * ```ts
 * import { HpackDecoder, HpackError } from "./hpack.ts";
 * try {
 *   new HpackDecoder().decode(new Uint8Array([0x80])); // index 0 names nothing
 * } catch (error) {
 *   console.assert(error instanceof HpackError);
 * }
 * ```
 */
export class HpackError extends Error {
  override name = "HpackError";
}

/** RFC 7541 Appendix A, in order from index 1. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/** Each static name's first index, for the encoder. */
const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
});

/**
 * The Huffman code's bit lengths for symbols 0 to 256 (EOS), from RFC 7541 Appendix B.
 * The code is canonical (codes of one length are consecutive, in symbol order, and
 * each length continues from the last), so the lengths alone define it.
 */
// deno-fmt-ignore
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0-15
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16-31
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // ' ' to '/'
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // '0' to '?'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // '@' to 'O'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 'P' to '_'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // '`' to 'o'
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 'p' to 127
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128-143
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144-159
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160-175
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176-191
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192-207
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208-223
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224-239
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240-255
  30, // EOS
];

const EOS = 256;

/**
 * The canonical codes of {@linkcode HUFFMAN_LENGTHS}, by symbol (256 is EOS).
 *
 * @example
 * ```ts
 * import { huffmanCodes } from "./hpack.ts";
 * console.assert(huffmanCodes()[48] === 0); // '0' is 00000
 * ```
 */
export function huffmanCodes(): number[] {
  const order = HUFFMAN_LENGTHS.map((_, symbol) => symbol)
    .sort((a, b) => HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b);
  const codes = new Array<number>(HUFFMAN_LENGTHS.length);
  let code = 0;
  let length = HUFFMAN_LENGTHS[order[0]];
  for (const symbol of order) {
    code *= 2 ** (HUFFMAN_LENGTHS[symbol] - length);
    length = HUFFMAN_LENGTHS[symbol];
    codes[symbol] = code++;
  }
  return codes;
}

/**
 * The decoding tree, flat: node `n`'s children are at `2n` (bit 0) and `2n + 1` (bit 1);
 * a value of `-1 - symbol` is a leaf, 0 a missing child.
 */
const TREE = (() => {
  const codes = huffmanCodes();
  const tree: number[] = [0, 0];
  for (let symbol = 0; symbol < codes.length; symbol++) {
    let node = 0;
    for (let bit = HUFFMAN_LENGTHS[symbol] - 1; bit >= 0; bit--) {
      const slot = 2 * node + (Math.floor(codes[symbol] / 2 ** bit) & 1);
      if (bit === 0) {
        tree[slot] = -1 - symbol;
      } else {
        if (tree[slot] === 0) {
          tree[slot] = tree.length / 2;
          tree.push(0, 0);
        }
        node = tree[slot];
      }
    }
  }
  return Int32Array.from(tree);
})();

/**
 * Decodes a Huffman-coded string (RFC 7541 section 5.2).
 *
 * @example
 * ```ts
 * import { huffmanDecode } from "./hpack.ts";
 * // RFC 7541 C.4.2
 * const bytes = new Uint8Array([0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf]);
 * console.assert(huffmanDecode(bytes) === "no-cache");
 * ```
 */
export function huffmanDecode(bytes: Uint8Array): string {
  let out = "";
  let node = 0;
  // Bits read since the last symbol, and whether they were all ones: the padding.
  let pending = 0;
  let allOnes = true;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    for (let bit = 7; bit >= 0; bit--) {
      const one = (byte >> bit) & 1;
      const next = TREE[2 * node + one];
      pending++;
      allOnes &&= one === 1;
      if (next < 0) {
        const symbol = -1 - next;
        if (symbol === EOS) throw new HpackError("Huffman string contains EOS");
        out += String.fromCharCode(symbol);
        node = 0;
        pending = 0;
        allOnes = true;
      } else if (next === 0) {
        throw new HpackError("invalid Huffman code");
      } else {
        node = next;
      }
    }
  }
  if (pending > 7 || !allOnes) throw new HpackError("invalid Huffman padding");
  return out;
}

/**
 * A decoded header field: name and value as byte strings.
 *
 * @example
 * ```ts
 * import type { HeaderField } from "./hpack.ts";
 * const field: HeaderField = ["content-type", "application/proto"];
 * console.assert(field[0] === "content-type");
 * ```
 */
export type HeaderField = [name: string, value: string];

/**
 * One connection's HPACK decoder. Header blocks must be decoded in the order they
 * arrive, since they share the dynamic table.
 *
 * @example
 * ```ts
 * import { HpackDecoder } from "./hpack.ts";
 * const decoder = new HpackDecoder();
 * // ":status: 200" from the static table.
 * console.assert(decoder.decode(new Uint8Array([0x88]))[0][1] === "200");
 * ```
 */
export class HpackDecoder {
  #table: HeaderField[] = [];
  #size = 0;
  #maxSize: number;
  readonly #limit: number;

  /** `maxTableSize` is our SETTINGS_HEADER_TABLE_SIZE (4096 unless we sent another). */
  constructor(maxTableSize = 4096) {
    this.#maxSize = maxTableSize;
    this.#limit = maxTableSize;
  }

  /**
   * Decodes one whole header block. A list larger than `maxListSize` (names, values
   * and 32 bytes a field, as SETTINGS_MAX_HEADER_LIST_SIZE counts) is refused: small
   * references to a large table entry could otherwise grow a block a thousandfold.
   */
  decode(block: Uint8Array, maxListSize = 1024 * 1024): HeaderField[] {
    const fields: HeaderField[] = [];
    const at = { i: 0 };
    let listSize = 0;
    const push = (field: HeaderField) => {
      listSize += field[0].length + field[1].length + 32;
      if (listSize > maxListSize) {
        throw new HpackError(`header list larger than ${maxListSize} bytes`);
      }
      fields.push(field);
    };
    while (at.i < block.length) {
      const byte = block[at.i];
      if (byte & 0x80) {
        push(this.#entry(readInteger(block, at, 7)));
      } else if (byte & 0x40) {
        const field = this.#literal(block, at, 6);
        this.#insert(field);
        push(field);
      } else if (byte & 0x20) {
        if (fields.length > 0) throw new HpackError("table size update after a field");
        const size = readInteger(block, at, 5);
        if (size > this.#limit) {
          throw new HpackError(`table size update to ${size} exceeds ${this.#limit}`);
        }
        this.#maxSize = size;
        this.#evict(0);
      } else {
        // Literal without indexing (0000) or never indexed (0001): not added.
        push(this.#literal(block, at, 4));
      }
    }
    return fields;
  }

  #entry(index: number): HeaderField {
    if (index === 0) throw new HpackError("index 0");
    if (index <= STATIC_TABLE.length) {
      const [name, value] = STATIC_TABLE[index - 1];
      return [name, value];
    }
    const entry = this.#table[index - STATIC_TABLE.length - 1];
    if (!entry) throw new HpackError(`index ${index} is not in the table`);
    return [entry[0], entry[1]];
  }

  #literal(block: Uint8Array, at: { i: number }, prefix: number): HeaderField {
    const index = readInteger(block, at, prefix);
    const name = index === 0 ? readString(block, at) : this.#entry(index)[0];
    return [name, readString(block, at)];
  }

  #insert(field: HeaderField): void {
    const size = field[0].length + field[1].length + 32;
    if (size > this.#maxSize) {
      // An entry larger than the table empties it and is not added (section 4.4).
      this.#table.length = 0;
      this.#size = 0;
      return;
    }
    this.#evict(size);
    this.#table.unshift(field);
    this.#size += size;
  }

  /** Evicts the oldest entries until `room` more bytes fit. */
  #evict(room: number): void {
    while (this.#size + room > this.#maxSize && this.#table.length > 0) {
      const [name, value] = this.#table.pop()!;
      this.#size -= name.length + value.length + 32;
    }
  }
}

function readInteger(block: Uint8Array, at: { i: number }, prefix: number): number {
  const max = (1 << prefix) - 1;
  let value = block[at.i++] & max;
  if (value < max) return value;
  let shift = 0;
  for (;;) {
    if (at.i >= block.length) throw new HpackError("truncated integer");
    const byte = block[at.i++];
    value += (byte & 0x7f) * 2 ** shift;
    if (value > 0x7fffffff) throw new HpackError("integer too large");
    if ((byte & 0x80) === 0) return value;
    shift += 7;
  }
}

function readString(block: Uint8Array, at: { i: number }): string {
  if (at.i >= block.length) throw new HpackError("truncated string");
  const huffman = (block[at.i] & 0x80) !== 0;
  const length = readInteger(block, at, 7);
  if (at.i + length > block.length) throw new HpackError("truncated string");
  const bytes = block.subarray(at.i, at.i + length);
  at.i += length;
  return huffman ? huffmanDecode(bytes) : latin1(bytes);
}

function latin1(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i]);
  return out;
}

/**
 * Encodes fields as literals without indexing, with the static table's name where it
 * has one. Names must already be lower case. Throws a TypeError on a character
 * outside Latin-1 or on CR, LF or NUL.
 *
 * @example
 * ```ts
 * import { encodeHeaderBlock, HpackDecoder } from "./hpack.ts";
 * const block = encodeHeaderBlock([["content-type", "application/proto"]]);
 * const [[name, value]] = new HpackDecoder().decode(block);
 * console.assert(name === "content-type" && value === "application/proto");
 * ```
 */
export function encodeHeaderBlock(fields: Iterable<HeaderField>): Uint8Array {
  const out: number[] = [];
  for (const [name, value] of fields) {
    const index = STATIC_NAME_INDEX.get(name);
    if (index === undefined) {
      out.push(0);
      writeString(out, name, name);
    } else {
      writeInteger(out, index, 4, 0);
    }
    writeString(out, value, name);
  }
  return Uint8Array.from(out);
}

function writeInteger(out: number[], value: number, prefix: number, flags: number): void {
  const max = (1 << prefix) - 1;
  if (value < max) {
    out.push(flags | value);
    return;
  }
  out.push(flags | max);
  value -= max;
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

function writeString(out: number[], text: string, field: string): void {
  writeInteger(out, text.length, 7, 0);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff || code === 0 || code === 0x0a || code === 0x0d) {
      throw new TypeError(`header ${field}: character U+${code.toString(16)} is not allowed`);
    }
    out.push(code);
  }
}
