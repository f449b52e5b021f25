import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  HeaderListTooLarge,
  HpackDecoder,
  HpackError,
  huffmanDecode,
} from "../internal/http2/hpack.ts";
import { encodeFlatHeaderBlock, encodeHeaderBlock } from "../internal/http2/hpack_encoder.ts";
import { huffmanCodes, huffmanEncode } from "../internal/http2/hpack_tables.ts";

const hex = (text: string): Uint8Array =>
  Uint8Array.from((text.replace(/\s/g, "").match(/../g) ?? []).map((h) => parseInt(h, 16)));

describe("HPACK", () => {
  it("builds the Huffman code of RFC 7541 Appendix B from its lengths", () => {
    const codes = huffmanCodes();
    // Spot checks against the RFC's table: symbols 0, 10, ' ', '0', '\\', 199, 255, EOS.
    assert.deepEqual(
      [0, 10, 32, 48, 92, 199, 255, 256].map((s) => codes[s].toString(16)),
      ["1ff8", "3ffffffc", "14", "0", "7fff0", "1ffffec", "3ffffee", "3fffffff"],
    );
    assert.equal(huffmanDecode(hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")), "www.example.com");
    assert.equal(huffmanDecode(hex("a8eb 1064 9cbf")), "no-cache");
    assert.equal(huffmanDecode(hex("")), "");
  });

  it("refuses bad Huffman strings: EOS, padding not of ones, padding of 8 bits or more", () => {
    assert.throws(() => huffmanDecode(hex("ffff ffff")), HpackError); // holds EOS
    assert.throws(() => huffmanDecode(hex("1e")), HpackError); // '0' then padding 11110
    assert.throws(() => huffmanDecode(hex("07ff")), HpackError); // 'o' then 8 bits of padding
  });

  it("decodes RFC 7541 C.3 and C.4: requests sharing a dynamic table", () => {
    for (
      const [blocks, huffman] of [
        [[
          "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
          "8286 84be 5808 6e6f 2d63 6163 6865",
          "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ], false],
        [[
          "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
          "8286 84be 5886 a8eb 1064 9cbf",
          "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ], true],
      ] as const
    ) {
      const decoder = new HpackDecoder();
      const first = [[":method", "GET"], [":scheme", "http"], [":path", "/"], [
        ":authority",
        "www.example.com",
      ]];
      assert.deepEqual(decoder.decode(hex(blocks[0])), first, `huffman: ${huffman}`);
      assert.deepEqual(decoder.decode(hex(blocks[1])), [...first, ["cache-control", "no-cache"]]);
      assert.deepEqual(decoder.decode(hex(blocks[2])), [
        [":method", "GET"],
        [":scheme", "https"],
        [":path", "/index.html"],
        [":authority", "www.example.com"],
        ["custom-key", "custom-value"],
      ]);
    }
  });

  it("decodes RFC 7541 C.6: responses that evict from a 256-byte table", () => {
    const decoder = new HpackDecoder(256);
    const date = "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff";
    assert.deepEqual(
      decoder.decode(
        hex(
          `4882 6402 5885 aec3 771a 4b61 96${date} 6e91 9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3`,
        ),
      ),
      [
        [":status", "302"],
        ["cache-control", "private"],
        ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
        ["location", "https://www.example.com"],
      ],
    );
    // ":status: 307" goes in and pushes ":status: 302" out; 65 to 63 are the others.
    assert.deepEqual(decoder.decode(hex("4883 640e ffc1 c0bf")), [
      [":status", "307"],
      ["cache-control", "private"],
      ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
      ["location", "https://www.example.com"],
    ]);
    assert.throws(() => decoder.decode(hex("c2")), /not in the table/);
  });

  it("refuses index 0, truncated fields and a table size over the limit", () => {
    const decoder = new HpackDecoder();
    assert.throws(() => decoder.decode(hex("80")), /index 0/);
    assert.throws(() => decoder.decode(hex("4005 6162")), /truncated/);
    assert.throws(() => decoder.decode(hex("3fe2 1f")), /exceeds 4096/); // 4097
    assert.throws(() => decoder.decode(hex("82 20")), /after a field/);
    assert.throws(() => decoder.decode(hex("ff ff ff ff ff 0f")), /too large/);
    assert.deepEqual(decoder.decode(hex("20 82")), [[":method", "GET"]]); // size 0, then a field
  });

  it("refuses a header list over the limit, however small the block", () => {
    const decoder = new HpackDecoder();
    // One 3 000-byte value into the table, then 400 one-byte references to it: 1.2 MB.
    const value = "v".repeat(3000);
    const first = encodeHeaderBlock([["x", value]]);
    first[0] = 0x40; // the same literal, with incremental indexing
    assert.deepEqual(decoder.decode(first), [["x", value]]);
    assert.throws(
      () => decoder.decode(new Uint8Array(400).fill(0xbe)),
      /header list larger than 1048576 bytes/,
    );
  });

  it("encodes literals the decoder reads back, and refuses CR, LF and wide characters", () => {
    const fields: [string, string][] = [
      [":method", "POST"],
      [":path", "/echo.v1.EchoService/Ping"],
      ["content-type", "application/proto"],
      ["x-long", "v".repeat(300)],
      ["x-latin1", "caf\u00e9"],
    ];
    assert.deepEqual(new HpackDecoder().decode(encodeHeaderBlock(fields)), fields);
    assert.throws(() => encodeHeaderBlock([["x", "a\r\nb"]]), TypeError);
    assert.throws(() => encodeHeaderBlock([["x", "\u2603"]]), TypeError);
  });

  it("decodes every byte through the four-bit Huffman table, and refuses EOS at any offset", () => {
    const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join("");
    assert.equal(huffmanDecode(huffmanEncode(all)), all);
    for (let shift = 0; shift < 8; shift++) {
      const prefix = "0".repeat(shift); // '0' is five bits: EOS lands at every bit offset
      const bytes = huffmanEncode(prefix);
      // EOS (30 ones) after the prefix's bits, then padding.
      const eos = new Uint8Array(bytes.length + 4).fill(0xff);
      eos.set(bytes.subarray(0, Math.floor((shift * 5) / 8)));
      if ((shift * 5) % 8 !== 0) {
        eos[Math.floor((shift * 5) / 8)] = bytes[Math.floor((shift * 5) / 8)];
      }
      assert.throws(() => huffmanDecode(eos), HpackError, `EOS after ${shift} symbols`);
    }
  });

  it("decodes flat: stops keeping fields past the keep limit, stops decoding past the hard one", () => {
    const decoder = new HpackDecoder();
    const block = encodeHeaderBlock([["a", "x".repeat(100)], ["b", "y".repeat(100)]]);
    const kept: string[] = [];
    assert.equal(decoder.decodeFlat(block, kept, 1000, 1000), 2 * (1 + 100 + 32));
    assert.deepEqual(kept, ["a", "x".repeat(100), "b", "y".repeat(100)]);
    const over: string[] = [];
    // Over the keep limit: the size comes back, the fields do not all.
    assert.equal(decoder.decodeFlat(block, over, 200, 1000), 266);
    assert.deepEqual(over, ["a", "x".repeat(100)]);
    assert.throws(() => decoder.decodeFlat(block, [], 100, 200), HeaderListTooLarge);
  });

  it("encodes a whole static field as one byte, and name-only matches by index", () => {
    assert.deepEqual([...encodeFlatHeaderBlock([":status", "200", ":method", "POST"])], [
      0x88,
      0x83,
    ]);
    const block = encodeFlatHeaderBlock([":status", "503", "content-type", "text/plain"]);
    assert.deepEqual(new HpackDecoder().decode(block), [
      [":status", "503"],
      ["content-type", "text/plain"],
    ]);
    assert.equal(block[0], 0x08); // literal without indexing, name :status (8)
  });
});
