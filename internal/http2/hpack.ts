/**
 * HPACK (RFC 7541) for the HTTP/2 engine, both roles: a full decoder (static and dynamic
 * tables, Huffman strings, table size updates) and an encoder that sends every field
 * as a static-table index or a literal without indexing, so that we keep no encoder
 * state the peer could make us get wrong (and an encoded block can be cached).
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
 * Huffman-codes a byte string (RFC 7541 section 5.2), padded with ones. Our encoder
 * sends raw literals; this is for tests and peers' blocks built by hand.
 *
 * @example
 * ```ts
 * import { huffmanDecode, huffmanEncode } from "./hpack.ts";
 * console.assert(huffmanDecode(huffmanEncode("no-cache")) === "no-cache");
 * ```
 */
export function huffmanEncode(text: string): Uint8Array {
  const codes = huffmanCodes();
  const out: number[] = [];
  let bits = 0;
  let pending = 0;
  for (let i = 0; i < text.length; i++) {
    const symbol = text.charCodeAt(i) & 0xff;
    const length = HUFFMAN_LENGTHS[symbol];
    for (let bit = length - 1; bit >= 0; bit--) {
      pending = (pending << 1) | (Math.floor(codes[symbol] / 2 ** bit) & 1);
      if (++bits === 8) {
        out.push(pending);
        bits = 0;
        pending = 0;
      }
    }
  }
  if (bits > 0) out.push(((pending << (8 - bits)) | ((1 << (8 - bits)) - 1)) & 0xff);
  return Uint8Array.from(out);
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
 * The tree walked four bits at a time: for node `n` and nibble `v`, entry `16n + v` holds
 * the node reached (bits 0-8), the symbol emitted on the way plus one (bits 9-17; no
 * code is shorter than five bits, so a nibble completes at most one), and bit 18 when
 * the nibble runs into EOS. `ACCEPTS[n]`: whether ending at node `n` is valid padding
 * (fewer than eight bits since the last symbol, all ones).
 */
const [NIBBLES, ACCEPTS] = (() => {
  const nodes = TREE.length / 2;
  const depth = new Int32Array(nodes);
  const ones = new Uint8Array(nodes);
  ones[0] = 1;
  for (let n = 0; n < nodes; n++) {
    for (let bit = 0; bit < 2; bit++) {
      const child = TREE[2 * n + bit];
      if (child > 0) {
        depth[child] = depth[n] + 1;
        ones[child] = ones[n] & bit;
      }
    }
  }
  const table = new Int32Array(nodes * 16);
  for (let n = 0; n < nodes; n++) {
    for (let v = 0; v < 16; v++) {
      let node = n;
      let emitted = 0;
      let eos = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const next = TREE[2 * node + ((v >> bit) & 1)];
        if (next < 0) {
          if (-1 - next === EOS) eos = 1;
          else emitted = -next; // symbol + 1
          node = 0;
        } else {
          node = next;
        }
      }
      table[16 * n + v] = node | (emitted << 9) | (eos << 18);
    }
  }
  const accepts = new Uint8Array(nodes);
  for (let n = 0; n < nodes; n++) accepts[n] = depth[n] <= 7 && ones[n] ? 1 : 0;
  return [table, accepts];
})();

/** Scratch space for Huffman output, grown as needed. */
let huffmanOut = new Uint8Array(256);

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
  // At most one symbol per five bits.
  const most = Math.ceil((bytes.length * 8) / 5);
  if (huffmanOut.length < most) huffmanOut = new Uint8Array(most * 2);
  const out = huffmanOut;
  let length = 0;
  let node = 0;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    let entry = NIBBLES[16 * node + (byte >> 4)];
    if (entry & 0x40000) throw new HpackError("Huffman string contains EOS");
    if (entry & 0x3fe00) out[length++] = (entry >> 9 & 0x1ff) - 1;
    node = entry & 0x1ff;
    entry = NIBBLES[16 * node + (byte & 0xf)];
    if (entry & 0x40000) throw new HpackError("Huffman string contains EOS");
    if (entry & 0x3fe00) out[length++] = (entry >> 9 & 0x1ff) - 1;
    node = entry & 0x1ff;
  }
  if (!ACCEPTS[node]) throw new HpackError("invalid Huffman padding");
  return latin1(out, 0, length);
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
 * A header list past the hard limit given to {@linkcode HpackDecoder.decodeFlat}: decoding
 * stopped there (an HPACK bomb, or just too large), and the connection's table may be
 * out of step, so the connection has to end.
 *
 * @example
 * ```ts
 * import { HeaderListTooLarge, HpackError } from "./hpack.ts";
 * const error = new HeaderListTooLarge(100);
 * console.assert(error instanceof HpackError && error.limit === 100);
 * ```
 */
export class HeaderListTooLarge extends HpackError {
  override name = "HeaderListTooLarge";
  /** The limit it passed. */
  readonly limit: number;
  constructor(limit: number) {
    super(`header list larger than ${limit} bytes`);
    this.limit = limit;
  }
}

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
  /** The dynamic table, oldest entry first: index 62 is the last one. */
  #names: string[] = [];
  #values: string[] = [];
  #size = 0;
  #maxSize: number;
  readonly #limit: number;
  /** Where the block being decoded is read next. */
  #at = 0;

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
    const flat: string[] = [];
    this.decodeFlat(block, flat, maxListSize, maxListSize);
    const fields: HeaderField[] = [];
    for (let i = 0; i < flat.length; i += 2) fields.push([flat[i], flat[i + 1]]);
    return fields;
  }

  /**
   * Decodes one whole header block into `out` as name, value, name, value… and returns
   * the list's size as RFC 9113 section 6.5.2 counts it. Fields stop being added once
   * that size passes `keepLimit` (the block is still decoded, to keep the table in
   * step; the caller sees the size and refuses the list); past `hardLimit` decoding
   * stops with {@linkcode HeaderListTooLarge}. Malformed blocks throw
   * {@linkcode HpackError}.
   */
  decodeFlat(block: Uint8Array, out: string[], keepLimit: number, hardLimit: number): number {
    this.#at = 0;
    let listSize = 0;
    let fields = 0;
    const staticLength = STATIC_TABLE.length;
    while (this.#at < block.length) {
      const byte = block[this.#at];
      let name: string;
      let value: string;
      if (byte & 0x80) {
        const index = this.#integer(block, 7);
        if (index === 0) throw new HpackError("index 0");
        if (index <= staticLength) {
          name = STATIC_NAMES[index - 1];
          value = STATIC_VALUES[index - 1];
        } else {
          const at = this.#names.length - (index - staticLength);
          if (at < 0) throw new HpackError(`index ${index} is not in the table`);
          name = this.#names[at];
          value = this.#values[at];
        }
      } else if (byte & 0x40) {
        name = this.#literalName(block, 6);
        value = this.#string(block);
        this.#insert(name, value);
      } else if (byte & 0x20) {
        if (fields > 0) throw new HpackError("table size update after a field");
        const size = this.#integer(block, 5);
        if (size > this.#limit) {
          throw new HpackError(`table size update to ${size} exceeds ${this.#limit}`);
        }
        this.#maxSize = size;
        this.#evict(0);
        continue;
      } else {
        // Literal without indexing (0000) or never indexed (0001): not added.
        name = this.#literalName(block, 4);
        value = this.#string(block);
      }
      fields++;
      listSize += name.length + value.length + 32;
      if (listSize > hardLimit) throw new HeaderListTooLarge(hardLimit);
      if (listSize <= keepLimit) out.push(name, value);
    }
    return listSize;
  }

  #name(index: number): string {
    if (index === 0) throw new HpackError("index 0");
    if (index <= STATIC_TABLE.length) return STATIC_NAMES[index - 1];
    const at = this.#names.length - (index - STATIC_TABLE.length);
    if (at < 0) throw new HpackError(`index ${index} is not in the table`);
    return this.#names[at];
  }

  #literalName(block: Uint8Array, prefix: number): string {
    const index = this.#integer(block, prefix);
    return index === 0 ? this.#string(block) : this.#name(index);
  }

  #insert(name: string, value: string): void {
    const size = name.length + value.length + 32;
    if (size > this.#maxSize) {
      // An entry larger than the table empties it and is not added (section 4.4).
      this.#names.length = 0;
      this.#values.length = 0;
      this.#size = 0;
      return;
    }
    this.#evict(size);
    this.#names.push(name);
    this.#values.push(value);
    this.#size += size;
  }

  /** Evicts the oldest entries until `room` more bytes fit. */
  #evict(room: number): void {
    let drop = 0;
    while (this.#size + room > this.#maxSize && drop < this.#names.length) {
      this.#size -= this.#names[drop].length + this.#values[drop].length + 32;
      drop++;
    }
    if (drop > 0) {
      this.#names.splice(0, drop);
      this.#values.splice(0, drop);
    }
  }

  #integer(block: Uint8Array, prefix: number): number {
    const max = (1 << prefix) - 1;
    let value = block[this.#at++] & max;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      if (this.#at >= block.length) throw new HpackError("truncated integer");
      const byte = block[this.#at++];
      value += (byte & 0x7f) * 2 ** shift;
      if (value > 0x7fffffff) throw new HpackError("integer too large");
      if ((byte & 0x80) === 0) return value;
      shift += 7;
      // Continuation bytes of zero add nothing: without this, 2 ** shift would reach
      // Infinity and the value NaN (an index that names no entry, yet passes the checks).
      if (shift > 28) throw new HpackError("integer too long");
    }
  }

  #string(block: Uint8Array): string {
    if (this.#at >= block.length) throw new HpackError("truncated string");
    const huffman = (block[this.#at] & 0x80) !== 0;
    const length = this.#integer(block, 7);
    const start = this.#at;
    if (start + length > block.length) throw new HpackError("truncated string");
    this.#at += length;
    return huffman
      ? huffmanDecode(block.subarray(start, start + length))
      : latin1(block, start, start + length);
  }
}

const STATIC_NAMES = STATIC_TABLE.map(([name]) => name);
const STATIC_VALUES = STATIC_TABLE.map(([, value]) => value);

/** Bytes `start` to `end` as a byte string (one character per byte). */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= 4096) {
    // deno-lint-ignore no-explicit-any
    return String.fromCharCode.apply(null, bytes.subarray(start, end) as any);
  }
  let out = "";
  for (let at = start; at < end; at += 4096) out += latin1(bytes, at, Math.min(end, at + 4096));
  return out;
}

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
 * import { encodeHeaderBlock, HpackDecoder } from "./hpack.ts";
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
 * import { encodeFlatHeaderBlock } from "./hpack.ts";
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
