// LOG_LEVEL as FTL's hosts hand it over: any case, and `default` (issue 14, item 1).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { spawn } from "../host.ts";
import { LogLevel } from "../internal/log.ts";
import {
  denoExecutable,
  echoGuestCommand,
  memoryLogger,
  onDeno,
  repoRoot,
  startGuest,
  tempDir,
} from "./_helpers.ts";
import { decodeLogEntry } from "../internal/log.ts";

/** The echo example as README runs it: on Deno with exactly a guest's permissions. */
function guestCommand(): { exe: string; args: string[] } {
  if (!onDeno) return echoGuestCommand("node");
  return {
    exe: denoExecutable(),
    args: ["run", "--allow-net", "--allow-env", join(repoRoot, "examples/echo/plugin.ts")],
  };
}

describe("LOG_LEVEL in any case, and `default`", () => {
  it("a guest started with LOG_LEVEL=DEBUG serves and logs at debug", async () => {
    await using guest = await startGuest(guestCommand(), { LOG_LEVEL: "DEBUG" });
    const serving = guest.stderrLines.map((l) => decodeLogEntry(l))
      .find((e) => e?.message.startsWith("serving on "));
    assert.equal(serving?.level, LogLevel.Debug);
  });

  it("--log-level takes the same names in any case, and beats LOG_LEVEL", async () => {
    const command = guestCommand();
    await using guest = await startGuest(
      { exe: command.exe, args: [...command.args, "--log-level=Debug"] },
      { LOG_LEVEL: "error" },
    );
    const serving = guest.stderrLines.map((l) => decodeLogEntry(l))
      .find((e) => e?.message.startsWith("serving on "));
    assert.equal(serving?.level, LogLevel.Debug, "--log-level=Debug, not LOG_LEVEL=error");
  });

  for (
    const [value, logsDebug] of [
      ["DEBUG", true],
      ["Info", false],
      ["TRACE", true],
      ["default", false],
      ["Default", false],
    ] as const
  ) {
    it(`spawn() starts a plugin given LOG_LEVEL=${value}, which logs debug lines: ${logsDebug}`, async () => {
      using dir = tempDir();
      const { logger, entries } = memoryLogger();
      const plugin = await spawn({
        name: "echo",
        dir: dir.path,
        ...guestCommand(),
        service: EchoService,
        // What FTL's host does: its whole environment, LOG_LEVEL as its user wrote it.
        env: { LOG_LEVEL: value },
        logger,
        startTimeout: 10_000,
      });
      try {
        assert.equal((await plugin.client.echo({ message: "hi" })).message, "hi");
      } finally {
        await plugin.stop({ graceMs: 1_000 });
      }
      const own = entries.filter((e) => e.attributes?.scope === "echo");
      assert.ok(own.some((e) => e.message === "echo plugin starting" && e.level === LogLevel.Info));
      assert.equal(
        own.some((e) => e.message.startsWith("serving on ") && e.level === LogLevel.Debug),
        logsDebug,
        JSON.stringify(own),
      );
    });
  }
});
