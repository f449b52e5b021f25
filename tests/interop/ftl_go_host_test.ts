// A host behaving as FTL's Go plugin.Spawn (gRPC pings every 50 ms, JSON stderr,
// pid file) against both guests: the Node guest on node:http2, and the Deno guest, with
// only the README's guest permissions, on the project's HTTP/2 engine (Deno.serve
// cannot send gRPC's trailers; the engine can).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  denoExecutable,
  echoGuestCommand,
  repoRoot,
  runToEnd,
  scriptCommand,
  tempDir,
} from "../_helpers.ts";

const goStyleHost = scriptCommand(new URL("../fixtures/go_style_host.ts", import.meta.url));

function runGoStyleHost(dir: string, guest: { exe: string; args: string[] }) {
  return runToEnd(
    spawn(goStyleHost.exe, [...goStyleHost.args, dir, guest.exe, ...guest.args], {
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
}

describe("an FTL-Go-style host", () => {
  it("spawns, pings and calls the Node guest over gRPC", async () => {
    using dir = tempDir();
    const guest = echoGuestCommand("node");
    const { code, stdout, stderr } = await runGoStyleHost(dir.path, guest);
    assert.equal(code, 0, stdout + stderr);
    assert.match(stdout, /echo: from the Go-style host/);
    assert.match(stdout, /log level=9 echo: echo plugin starting/, "JSON stderr was streamed");
    assert.match(stdout, /plugin exited with code 0/);
    assert.ok(existsSync(`${dir.path}/.ftl/${guest.exe.split("/").pop()}.pid`), "pid file written");
  });

  it("spawns, pings and calls the Deno guest over gRPC", async () => {
    using dir = tempDir();
    const guest = {
      exe: denoExecutable(),
      args: ["run", "--allow-net", "--allow-env", join(repoRoot, "examples/echo/plugin.ts")],
    };
    const { code, stdout, stderr } = await runGoStyleHost(dir.path, guest);
    assert.equal(code, 0, stdout + stderr);
    assert.match(stdout, /echo: from the Go-style host/);
    assert.match(stdout, /log level=9 echo: echo plugin starting/, "JSON stderr was streamed");
    assert.match(stdout, /plugin exited with code 0/);
    assert.ok(existsSync(`${dir.path}/.ftl/deno.pid`), "pid file written");
  });
});
