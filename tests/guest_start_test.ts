import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { createInterface } from "node:readline";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { decodeLogEntry, type LogEntry } from "../internal/log.ts";
import {
  isGone,
  type RunningGuest,
  runToEnd,
  scriptCommand,
  startGuest,
  tempDir,
  waitUntil,
} from "./_helpers.ts";

const echoPlugin = new URL("../examples/echo/plugin.ts", import.meta.url);
const failingPlugin = new URL("./fixtures/failing_plugin.ts", import.meta.url);

function spawnPlugin(
  script: URL,
  env: Record<string, string | undefined>,
  args: string[] = [],
): ChildProcess {
  const command = scriptCommand(script);
  return spawn(command.exe, [...command.args, ...args], {
    env: { ...process.env, FTL_BIND: undefined, LOG_LEVEL: undefined, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function startPlugin(env: Record<string, string> = {}): Promise<RunningGuest> {
  return startGuest(scriptCommand(echoPlugin), env);
}

describe("start() in a real process", () => {
  it("serves, logs only JSON on stderr, and exits 0 within 1 s of SIGTERM", async () => {
    const plugin = await startPlugin({ ECHO_GREETING: "hey" });
    try {
      const client = createClient(
        EchoService,
        createConnectTransport({ baseUrl: plugin.url.href }),
      );
      assert.equal((await client.echo({ message: "you" })).message, "hey you");
      const signalled = Date.now();
      // Not child.kill(): Deno's node:child_process then reports the signal instead
      // of the exit code the child chose.
      process.kill(plugin.child.pid!, "SIGTERM");
      const { code } = await plugin.exited;
      assert.equal(code, 0);
      assert.ok(Date.now() - signalled < 1_000, `took ${Date.now() - signalled} ms`);
      const entries = plugin.stderrLines.map((line) => decodeLogEntry(line));
      assert.ok(entries.every((e) => e !== undefined), plugin.stderrLines.join("\n"));
      const why = entries.find((e) => e?.message === "stopping: received SIGTERM");
      assert.equal(why?.level, 9, "why it stops is said at info");
      const started = entries.find((e) => e?.message === "echo plugin starting");
      assert.deepEqual(started?.attributes, { greeting: "hey", scope: "echo" });
    } finally {
      plugin.child.kill("SIGKILL");
    }
  });

  it("exits within 2 s once its parent process is gone", async () => {
    // bash is the guest's parent (`; true` keeps bash from exec'ing it); killing bash
    // orphans the guest.
    using dir = tempDir();
    // A script file with the runtime in env: Deno's node:child_process rewrites
    // `bash -c` command lines and argv that start a runtime.
    const wrapper = `${dir.path}/parent.sh`;
    writeFileSync(wrapper, `"$RUNTIME" "$@"; true\n`);
    const parent = spawn(
      "bash",
      [wrapper, ...scriptCommand(echoPlugin).args],
      {
        env: {
          ...process.env,
          RUNTIME: process.execPath,
          FTL_BIND: "http://127.0.0.1:0",
          LOG_LEVEL: "debug",
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const parentClosed = new Promise((resolve) => parent.once("close", resolve));
    const started = Date.now();
    const lines: string[] = [];
    let guestPid = 0;
    try {
      await new Promise<void>((resolve) => {
        createInterface({ input: parent.stderr! }).on("line", (line) => {
          lines.push(`${Date.now() - started} ms: ${line}`);
          if (decodeLogEntry(line)?.message.startsWith("serving on ")) resolve();
        });
      });
      guestPid = Number(
        readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, "utf8").trim(),
      );
      assert.ok(guestPid > 0);
      process.kill(parent.pid!, "SIGKILL");
      lines.push(`${Date.now() - started} ms: killed the parent`);
      const gone = await waitUntil(() => isGone(guestPid), 2_000);
      const status = gone ? "" : readFileSync(`/proc/${guestPid}/status`, "utf8").split("\n")
        .filter((l) => /^(State|PPid|Name)/.test(l)).join(", ");
      assert.ok(gone, `guest still running (${status}):\n${lines.join("\n")}`);
    } finally {
      if (!isGone(parent.pid!)) process.kill(parent.pid!, "SIGKILL");
      if (guestPid && !isGone(guestPid)) process.kill(guestPid, "SIGKILL");
      await parentClosed;
    }
  });

  it("exits 2 naming FTL_BIND when no bind address is given", async () => {
    const { code, stderr, stdout } = await runToEnd(spawnPlugin(echoPlugin, {}));
    assert.equal(code, 2);
    const first = stderr.split("\n")[0];
    assert.match(first, /--bind/);
    assert.match(first, /FTL_BIND/);
    assert.match(stderr, /Usage: echo/);
    assert.equal(stdout, "");
  });

  it("exits 2 with one line for a bad log level", async () => {
    const { code, stderr } = await runToEnd(
      spawnPlugin(echoPlugin, { FTL_BIND: "http://127.0.0.1:0", LOG_LEVEL: "loud" }),
    );
    assert.equal(code, 2);
    assert.match(stderr.split("\n")[0], /LOG_LEVEL.*loud/);
  });

  it("prints help on stdout and exits 0", async () => {
    const { code, stdout } = await runToEnd(spawnPlugin(echoPlugin, {}, ["--help"]));
    assert.equal(code, 0);
    assert.match(stdout, /--greeting/);
    assert.match(stdout, /ECHO_GREETING/);
    assert.match(stdout, /FTL_BIND/);
    assert.match(stdout, /LOG_LEVEL/);
    assert.match(stdout, /trace, debug, info, warn, error or default \(info\), in any case/);
  });

  it("exits 1 with a JSON error line when create() throws", async () => {
    const { code, stderr } = await runToEnd(
      spawnPlugin(failingPlugin, { FTL_BIND: "http://127.0.0.1:0" }),
    );
    assert.equal(code, 1);
    const entries = stderr.trim().split("\n").map((line) => decodeLogEntry(line));
    const failure = entries.find((e): e is LogEntry => e?.level === 17);
    assert.ok(failure, stderr);
    assert.equal(failure.error, "database unreachable");
    assert.equal(failure.attributes?.scope, "failing");
  });
});
