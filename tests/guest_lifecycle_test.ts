// How start() stops: a host that dies mid-call, a SIGTERM before listening, and the
// one info line that says why (issue 14, items 9 to 11).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { decodeLogEntry, type LogEntry, LogLevel } from "../internal/log.ts";
import { isGone, onDeno, scriptCommand, tempDir } from "./_helpers.ts";

const fixture = new URL("./fixtures/guest_lifecycle_plugin.ts", import.meta.url);

/** The fixture as README runs a guest: on Deno with exactly `--allow-net --allow-env`. */
function guestCommand(): { exe: string; args: string[] } {
  if (!onDeno) return scriptCommand(fixture);
  return {
    exe: process.execPath,
    args: ["run", "--allow-net", "--allow-env", fileURLToPath(fixture)],
  };
}

/** Every stderr line as a log entry, and a way to wait (bounded) for a given one. */
function watchEntries(stream: Readable) {
  const lines: string[] = [];
  const entries: LogEntry[] = [];
  const waiters = new Set<() => void>();
  let closed = false;
  const reader = createInterface({ input: stream });
  reader.on("line", (line) => {
    lines.push(line);
    const entry = decodeLogEntry(line);
    if (entry) entries.push(entry);
    for (const wake of waiters) wake();
  });
  reader.once("close", () => {
    closed = true;
    for (const wake of waiters) wake();
  });
  const next = (what: string, test: (e: LogEntry) => boolean, ms: number) =>
    new Promise<LogEntry>((resolve, reject) => {
      const check = () => {
        const found = entries.find(test);
        if (!found && !closed) return;
        waiters.delete(check);
        clearTimeout(timer);
        if (found) resolve(found);
        else reject(new Error(`stderr closed before ${what}:\n${lines.join("\n")}`));
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no ${what} within ${ms} ms:\n${lines.join("\n")}`));
      }, ms);
      waiters.add(check);
      check();
    });
  return { lines, entries, next };
}

describe("start() stopping", () => {
  it("a call in flight when the host is SIGKILLed completes within the grace; the guest exits 0", async () => {
    // bash stands in for the host: the guest's parent (`; true` keeps bash from
    // exec'ing it). The guest inherits bash's stderr, so its lines outlive bash.
    using dir = tempDir();
    const wrapper = `${dir.path}/host.sh`;
    writeFileSync(wrapper, `"$RUNTIME" "$@"; true\n`);
    const command = guestCommand();
    const host = spawn("bash", [wrapper, ...command.args], {
      env: {
        ...process.env,
        RUNTIME: command.exe,
        FTL_BIND: "http://127.0.0.1:0",
        LOG_LEVEL: "debug",
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const hostClosed = new Promise((resolve) => host.once("close", resolve));
    const log = watchEntries(host.stderr!);
    let guestPid = 0;
    try {
      const serving = await log.next(
        "serving line",
        (e) => e.message.startsWith("serving on "),
        10_000,
      );
      const url = serving.message.slice("serving on ".length);
      guestPid = Number(
        readFileSync(`/proc/${host.pid}/task/${host.pid}/children`, "utf8").trim(),
      );
      assert.ok(guestPid > 0);
      const client = createClient(EchoService, createConnectTransport({ baseUrl: url }));
      // 2.5 s: well past the 1 s parent poll (which fired again a second later and
      // cut the call short), well within the default 5 s grace.
      const call = client.echo({ message: "still here", delayMs: 2_500 });
      call.catch(() => {});
      await log.next("echo received", (e) => e.message === "echo received", 5_000);
      const killed = Date.now();
      process.kill(host.pid!, "SIGKILL");
      assert.equal((await call).message, "still here");
      const took = Date.now() - killed;
      assert.ok(took < 5_000, `the call took ${took} ms after the host died`);
      const exit = await log.next("exit code", (e) => e.message.startsWith("exit code "), 8_000);
      assert.equal(exit.message, "exit code 0", log.lines.join("\n"));
      const why = log.entries.find((e) => e.message === "stopping: parent process is gone");
      assert.equal(why?.level, LogLevel.Info, log.lines.join("\n"));
      assert.ok(!log.lines.some((l) => /exiting now/.test(l)), log.lines.join("\n"));
    } finally {
      if (!isGone(host.pid!)) process.kill(host.pid!, "SIGKILL");
      if (guestPid && !isGone(guestPid)) process.kill(guestPid, "SIGKILL");
      await hostClosed;
    }
  });

  it("SIGTERM during a slow create() exits 0, saying why in its one info line", async () => {
    const command = guestCommand();
    const guest = spawn(command.exe, command.args, {
      // LOG_LEVEL unset: what a user sees by default.
      env: {
        ...process.env,
        FTL_BIND: "http://127.0.0.1:0",
        LOG_LEVEL: undefined,
        TEST_CREATE_MS: "20000",
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) =>
      guest.once("close", (code) => resolve(code))
    );
    const log = watchEntries(guest.stderr!);
    try {
      await log.next("creating", (e) => e.message === "creating", 10_000);
      const signalled = Date.now();
      // Not guest.kill(): Deno's node:child_process then reports the signal instead
      // of the exit code the child chose.
      process.kill(guest.pid!, "SIGTERM");
      const code = await exited;
      assert.equal(code, 0, log.lines.join("\n"));
      assert.ok(Date.now() - signalled < 2_000, `took ${Date.now() - signalled} ms`);
      const ours = log.entries.filter((e) =>
        e.attributes?.scope === "lifecycle" && e.message !== "creating"
      );
      assert.deepEqual(
        ours.map((e) => [e.level, e.message]),
        [[LogLevel.Info, "stopping: received SIGTERM"]],
        log.lines.join("\n"),
      );
    } finally {
      if (guest.exitCode === null && guest.signalCode === null) guest.kill("SIGKILL");
      await exited;
    }
  });
});
