// The first-bytes switch both guests put in front of the engine: which bytes go to
// HTTP/2, which to HTTP/1.1, and when it has to wait for more.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  classifyFirstBytes,
  FIRST_BYTES_LIMIT,
  readFirstBytes,
} from "../internal/http2/preface.ts";
import type { ByteStream } from "../internal/runtime/types.ts";

const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const bytes = (text: string) => new TextEncoder().encode(text);

/** A byte stream that hands out `chunks` one read at a time, then ends. */
function chunked(chunks: string[]): ByteStream & { reads: number } {
  const queue = chunks.map(bytes);
  const stream = {
    reads: 0,
    read(into: Uint8Array): Promise<number | null> {
      stream.reads++;
      const next = queue.shift();
      if (next === undefined) return Promise.resolve(null);
      into.set(next.subarray(0, into.length));
      if (next.length > into.length) queue.unshift(next.subarray(into.length));
      return Promise.resolve(Math.min(next.length, into.length));
    },
    write: (written: Uint8Array) => Promise.resolve(written.length),
    close: () => {},
  };
  return stream;
}

describe("classifyFirstBytes", () => {
  it("takes the whole preface as HTTP/2 and waits on any part of it", () => {
    assert.equal(classifyFirstBytes(bytes(PREFACE)), "http2");
    assert.equal(classifyFirstBytes(bytes(PREFACE + "\0\0\0\x04")), "http2");
    for (let n = 0; n < PREFACE.length; n++) {
      assert.equal(classifyFirstBytes(bytes(PREFACE.slice(0, n))), undefined, `${n} bytes`);
    }
  });

  it("sends HTTP/1 request lines to HTTP/1.1, once their line is whole", () => {
    for (
      const line of [
        "GET / HTTP/1.1\r\n",
        "POST /echo.v1.EchoService/Echo HTTP/1.1\r\n",
        "GET / HTTP/1.0\n",
        "PRI / HTTP/1.1\r\n",
        "OPTIONS * HTTP/1.1\r\n",
      ]
    ) assert.equal(classifyFirstBytes(bytes(line + "host: x\r\n\r\n")), "http1", line);
    assert.equal(classifyFirstBytes(bytes("P")), undefined);
    assert.equal(classifyFirstBytes(bytes("POST / HTTP/1.1")), undefined);
  });

  it("sends any other first line to HTTP/2, which refuses it", () => {
    for (
      const line of [
        "INVALID CONNECTION PREFACE\r\n",
        "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
        "GET / HTTP/2.0\r\n",
        "\x16\x03\x01\x02\x00\x01\n",
        "\n",
      ]
    ) assert.equal(classifyFirstBytes(bytes(line)), "http2", JSON.stringify(line));
  });

  it("gives a long line without an end to HTTP/1.1, which refuses it, at the limit", () => {
    const long = "GET /" + "a".repeat(FIRST_BYTES_LIMIT);
    assert.equal(classifyFirstBytes(bytes(long.slice(0, FIRST_BYTES_LIMIT - 1))), undefined);
    assert.equal(classifyFirstBytes(bytes(long)), "http1");
  });
});

describe("readFirstBytes", () => {
  it("reads until it can tell, and keeps every byte read", async () => {
    const stream = chunked(["P", "RI * HTTP/2.0\r\n", "\r\nSM\r\n\r\n\0\0"]);
    const first = await readFirstBytes(stream);
    assert.equal(first?.kind, "http2");
    assert.equal(new TextDecoder().decode(first?.bytes), PREFACE + "\0\0");
    assert.equal(stream.reads, 3);
    const h1 = await readFirstBytes(chunked(["P", "OST / HTTP/1.1\r\nhost: x\r\n\r\n"]));
    assert.equal(h1?.kind, "http1");
  });

  it("reads no more than the limit, and gives null for a connection that ends first", async () => {
    const first = await readFirstBytes(chunked(["x".repeat(3 * FIRST_BYTES_LIMIT)]));
    assert.equal(first?.kind, "http1");
    assert.equal(first?.bytes.length, FIRST_BYTES_LIMIT);
    assert.equal(await readFirstBytes(chunked(["PRI * HTTP"])), null);
  });
});
