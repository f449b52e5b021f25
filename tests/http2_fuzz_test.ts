// A short seeded run of the HTTP/2 fuzzer (scripts/fuzz.ts runs the long one): the
// HPACK decoder on random and mutated blocks, and the engine's server role on random
// and mutated frame sequences over an in-memory socket. A failure names its seed and
// case: `deno task fuzz --seed S --case N` replays it alone.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { HpackDecoder, HpackError } from "../internal/http2/hpack.ts";
import { FuzzFailure, hpackStats, runHpackCase } from "./fixtures/fuzz_hpack.ts";
import { runConnectionCases, serverStats } from "./fixtures/fuzz_server.ts";

const SEED = 20_261_201;

describe("HTTP/2 fuzzing (short, seeded)", () => {
  it("HpackDecoder.decode: only HpackError escapes, no list beyond what the input names, each decode quick", () => {
    const stats = hpackStats();
    for (let i = 0; i < 20_000; i++) runHpackCase(SEED, i, stats);
    assert.equal(stats.cases, 20_000);
    assert.ok(stats.refused > 0 && stats.refused < stats.blocks, "both outcomes are reached");
    // Generous: a shared, noisy machine; the script reports the real figure.
    assert.ok(
      stats.slowestMs < 100,
      `case ${stats.slowestCase} took ${stats.slowestMs.toFixed(1)} ms to decode`,
    );
  });

  it("refuses an integer with 150 zero continuation bytes (found by the fuzzer: seed 20261201, case 92543)", () => {
    // 2 ** shift reached Infinity, the index became NaN, and decode threw a TypeError.
    for (const first of [0xff, 0x7f, 0x0f]) {
      const block = new Uint8Array(152).fill(0x80);
      block[0] = first;
      block[151] = 0;
      assert.throws(() => new HpackDecoder().decode(block), HpackError);
    }
  });

  it("the server role: serve() always resolves, nothing throws or leaks, output stays well-formed", async () => {
    const stats = serverStats();
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on("unhandledRejection", onRejection);
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    const failures: string[] = [];
    try {
      const started = performance.now();
      // A few seconds' worth, whatever the machine: batches of 200 cases, 50 at a time,
      // while under 3 s, at least one batch.
      for (let from = 0; from === 0 || performance.now() - started < 3_000; from += 200) {
        await runConnectionCases(SEED, from, from + 200, 50, stats, (failure) => {
          failures.push(failure instanceof FuzzFailure ? failure.message : String(failure));
          return failures.length < 5;
        });
        heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
        if (failures.length > 0) break;
      }
      // Callbacks of the last cases run before the verdict.
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(failures, []);
      assert.deepEqual(rejections, []);
      assert.ok(stats.handlerCalls > 0, "the handler ran");
      assert.ok(stats.responses > 0, "the server answered");
      assert.ok(Object.keys(stats.goaways).length > 1, JSON.stringify(stats.goaways));
      assert.ok(
        heapPeak - heapBefore < 256 * 1024 * 1024,
        `heap grew ${((heapPeak - heapBefore) / 2 ** 20).toFixed(0)} MiB`,
      );
    } finally {
      process.off("unhandledRejection", onRejection);
    }
  });
});
