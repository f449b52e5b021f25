/**
 * The HPACK decoder (RFC 7541) of one connection, both roles: static and dynamic tables,
 * Huffman strings, table size updates, and the limits that stop a header list (or an
 * HPACK bomb) from growing past what we take. The encoder is `hpack_encoder.ts`, the
 * fixed tables `hpack_tables.ts`.
 *
 * Header names and values are byte strings: one character per byte (Latin-1), as
 * `Headers` keeps them.
 *
 * @module
 */
import { EOS, HUFFMAN_LENGTHS, huffmanCodes, STATIC_TABLE } from "./hpack_tables.ts";

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
  /** Always "HpackError". */
  override name = "HpackError";
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
  /** Always "HeaderListTooLarge". */
  override name = "HeaderListTooLarge";
  /** The limit it passed. */
  readonly limit: number;
  /** `limit`: the hard limit the list passed. */
  constructor(limit: number) {
    super(`header list larger than ${limit} bytes`);
    this.limit = limit;
  }
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

/** The static table by column, for the decoder's indexed lookups. */
const STATIC_NAMES = STATIC_TABLE.map(([name]) => name);
const STATIC_VALUES = STATIC_TABLE.map(([, value]) => value);

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

/**
 * Bytes `start` to `end` as a byte string (one character per byte).
 *
 * @example
 * ```ts
 * import { latin1 } from "./hpack.ts";
 * console.assert(latin1(new Uint8Array([0x68, 0x32, 0xe9]), 0, 3) === "h2\u00e9");
 * ```
 */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= 4096) {
    // deno-lint-ignore no-explicit-any
    return String.fromCharCode.apply(null, bytes.subarray(start, end) as any);
  }
  let out = "";
  for (let at = start; at < end; at += 4096) out += latin1(bytes, at, Math.min(end, at + 4096));
  return out;
}
