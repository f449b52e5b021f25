/**
 * RFC 7541's fixed tables, shared by the HPACK decoder and encoder: the static table
 * (Appendix A) and the canonical Huffman code (Appendix B), with a Huffman encoder for
 * tests and for peers' blocks built by hand (our encoder sends raw literals).
 *
 * @module
 */

/** RFC 7541 Appendix A, in order from index 1. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
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

/**
 * The Huffman code's bit lengths for symbols 0 to 256 (EOS), from RFC 7541 Appendix B.
 * The code is canonical (codes of one length are consecutive, in symbol order, and
 * each length continues from the last), so the lengths alone define it.
 */
// deno-fmt-ignore
export const HUFFMAN_LENGTHS: readonly number[] = [
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

/** The Huffman code's end-of-string symbol. */
export const EOS = 256;

/**
 * The canonical codes of {@linkcode HUFFMAN_LENGTHS}, by symbol (256 is EOS).
 *
 * @example
 * ```ts
 * import { huffmanCodes } from "./hpack_tables.ts";
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
 * import { huffmanDecode } from "./hpack.ts";
 * import { huffmanEncode } from "./hpack_tables.ts";
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
