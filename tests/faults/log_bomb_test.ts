// Log bombs into the host: 50 MB in one line, 1 000 000 short lines, binary junk and
// JSON that is not a log entry. The host stays responsive, its memory bounded, and
// nothing is lost but what the line cap cuts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { spawn } from "../../host.ts";
import { EchoService } from "../../gen/echo/v1/echo_pb.ts";
import { Logger } from "../../internal/log.ts";
import { TRUNCATION_MARKER } from "../../internal/log_lines.ts";
import { scriptCommand, tempDir, waitUntil } from "../_helpers.ts";

const testPlugin = scriptCommand(new URL("../fixtures/test_plugin.ts", import.meta.url));

function rssMiB(): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1]) / 1024;
}

describe("a log bomb", () => {
  it("is mirrored whole up to the line cap while the host stays responsive", async () => {
    using dir = tempDir();
    let shortLines = 0;
    let longest = 0;
    let bombDone = false;
    const notEntries: string[] = [];
    const logger = new Logger({
      level: 1,
      write: (line) => {
        const message = JSON.parse(line).message as string;
        if (message.startsWith("short ")) shortLines++;
        else if (message === "bomb done") bombDone = true;
        else if (message.startsWith("{") || message.startsWith("[")) notEntries.push(message);
        longest = Math.max(longest, message.length);
      },
    });
    const rssBefore = rssMiB();
    let maxLag = 0;
    let last = performance.now();
    const lagProbe = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 10);
      last = now;
    }, 10);
    let peakRss = rssBefore;
    const rssProbe = setInterval(() => (peakRss = Math.max(peakRss, rssMiB())), 50);
    try {
      await using plugin = await spawn({
        name: "bomber",
        dir: dir.path,
        ...testPlugin,
        env: { TEST_PRINT: "bomb" },
        service: EchoService,
        logger,
      });
      const started = performance.now();
      assert.ok(
        await waitUntil(() => bombDone && shortLines === 1_000_000, 60_000),
        `${shortLines} lines`,
      );
      const seconds = (performance.now() - started) / 1000;
      assert.equal((await plugin.client.echo({ message: "after" })).message, "after");
      assert.equal(
        longest,
        1024 * 1024 + TRUNCATION_MARKER.length,
        "the 50 MB line is cut at 1 MiB",
      );
      assert.deepEqual(notEntries, ['{"not":"a log entry"}', "[1,2,3]"]);
      assert.ok(maxLag < 1_000, `the host's event loop stalled for ${maxLag.toFixed(0)} ms`);
      assert.ok(peakRss - rssBefore < 256, `host RSS grew ${(peakRss - rssBefore).toFixed(0)} MiB`);
      console.log(
        `log bomb: 1 000 000 lines + 50 MB line + 1 MiB junk mirrored in ${
          seconds.toFixed(1)
        } s; ` +
          `host RSS ${rssBefore.toFixed(0)} → peak ${peakRss.toFixed(0)} MiB; ` +
          `max event-loop lag ${maxLag.toFixed(0)} ms`,
      );
    } finally {
      clearInterval(lagProbe);
      clearInterval(rssProbe);
    }
  });
});
