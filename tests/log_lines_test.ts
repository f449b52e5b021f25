import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RecentLines, streamLogLines, TRUNCATION_MARKER } from "../internal/log_lines.ts";

function streamOf(...chunks: (string | number[])[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) {
        controller.enqueue(
          typeof chunk === "string" ? encoder.encode(chunk) : new Uint8Array(chunk),
        );
      }
      controller.close();
    },
  });
}

async function linesOf(
  stream: ReadableStream<Uint8Array>,
  maxLineBytes?: number,
): Promise<string[]> {
  const lines: string[] = [];
  await streamLogLines(stream, (line) => lines.push(line), { maxLineBytes });
  return lines;
}

describe("streamLogLines", () => {
  it("joins lines split across chunks and flushes a last line without newline", async () => {
    assert.deepEqual(await linesOf(streamOf("a", "b\nc", "d\n\ne")), ["ab", "cd", "", "e"]);
  });

  it("keeps a multi-byte character split across chunks whole", async () => {
    // "é" is 0xc3 0xa9.
    assert.deepEqual(await linesOf(streamOf([0x63, 0x61, 0x66, 0xc3], [0xa9, 0x0a])), ["café"]);
  });

  it("replaces invalid UTF-8 and strips a CR before the newline", async () => {
    assert.deepEqual(await linesOf(streamOf([0x61, 0xff, 0x62, 0x0d, 0x0a])), ["a\ufffdb"]);
  });

  it("cuts a line at the cap, marks it, and goes on with the next", async () => {
    const lines = await linesOf(streamOf("1234", "5678", "9\nnext\n"), 6);
    assert.deepEqual(lines, [`123456${TRUNCATION_MARKER}`, "next"]);
  });

  it("passes a line of exactly the cap unmarked", async () => {
    assert.deepEqual(await linesOf(streamOf("123456\n"), 6), ["123456"]);
  });

  it("stops reading when its signal aborts, delivering what it has", async () => {
    const controller = new AbortController();
    const lines: string[] = [];
    let pull = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(c) {
        if (pull++ === 0) c.enqueue(new TextEncoder().encode("first\nparti"));
        else return new Promise(() => {}); // never more data, never closed
      },
    });
    const done = streamLogLines(endless, (line) => {
      lines.push(line);
      controller.abort();
    }, { signal: controller.signal });
    await done;
    assert.deepEqual(lines, ["first", "parti"]);
  });
});

describe("RecentLines", () => {
  it("keeps the last n lines, oldest first", () => {
    const recent = new RecentLines(2);
    for (const line of ["a", "b", "c"]) recent.push(line);
    assert.deepEqual(recent.lines, ["b", "c"]);
  });
});
