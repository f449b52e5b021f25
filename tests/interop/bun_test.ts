// Bun guests, under whichever host runs this file: a Deno host under deno test, a Node
// host under node --test, a Bun host under bun test (deno task test:bun runs it all three
// ways). The guest is the npm build's echo plugin run by bun, over every protocol; then
// the paths Bun once broke (HTTP/1.1 with a token, node:http2 as the native server), a
// killed Bun guest, and, under Bun, a Bun host with Deno guests.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn as spawnProcess } from "node:child_process";
import { existsSync } from "node:fs";
import * as http2 from "node:http2";
import process from "node:process";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { PluginExitError, spawn, type WireProtocol } from "../../host.ts";
import { EchoService } from "../../gen/echo/v1/echo_pb.ts";
import {
  abortedWithin,
  echoGuestCommand,
  memoryLogger,
  onDeno,
  readmeGuestPermissions,
  readmeHostPermissions,
  repoRoot,
  runToEnd,
  startGuest,
  tempDir,
} from "../_helpers.ts";
import { bunExecutable, onBun } from "../_bun.ts";

const host = onBun ? "bun" : onDeno ? "deno" : "node";
const bun = bunExecutable();
/** A file as the npm build compiled it. */
const compiled = (path: string) => join(repoRoot, "npm", path);
const echoPlugin = compiled("examples/echo/plugin.js");
const enginePlugin = compiled("tests/fixtures/engine_plugin.js");
const skip = !bun
  ? "no Bun: set BUN_BIN, or run deno task test:bun, which installs one"
  : !existsSync(echoPlugin)
  ? `${echoPlugin} is missing: run deno task build:npm`
  : false;
const protocols: WireProtocol[] = ["connect", "grpc", "grpc-web"];

/** Spawns `exe args` as the echo plugin over `protocol`, uses it, and stops it. */
async function withEcho(
  command: { exe: string; args: string[] },
  protocol: WireProtocol,
  use: (plugin: Awaited<ReturnType<typeof spawn<typeof EchoService>>>) => Promise<void>,
  env: Record<string, string> = {},
): Promise<void> {
  using dir = tempDir();
  await using plugin = await spawn({
    name: "echo",
    dir: dir.path,
    ...command,
    service: EchoService,
    protocol,
    env,
    logger: memoryLogger().logger,
    startTimeout: 20_000,
  });
  await use(plugin);
}

/** Ping, a unary call and a server stream, then a stop that must end in exit code 0. */
async function exercise(plugin: Awaited<ReturnType<typeof spawn<typeof EchoService>>>) {
  await plugin.client.ping({});
  assert.equal((await plugin.client.echo({ message: "hi" })).message, "hi");
  const numbers: number[] = [];
  for await (const { number } of plugin.client.count({ count: 3 })) numbers.push(number);
  assert.deepEqual(numbers, [1, 2, 3]);
  assert.deepEqual(await plugin.stop({ graceMs: 5_000 }), { code: 0, signal: null });
}

describe(`${host} host → Bun guest`, { skip }, () => {
  for (const protocol of protocols) {
    it(`pings, calls unary and server-streaming over ${protocol}, and stops it (exit 0)`, async () => {
      await withEcho({ exe: bun!, args: [echoPlugin] }, protocol, async (plugin) => {
        assert.equal(plugin.protocol, protocol);
        await exercise(plugin);
      });
    });
  }

  it("answers Connect JSON over HTTP/1.1 with the token, and refuses it without", async () => {
    await using guest = await startGuest({ exe: bun!, args: [echoPlugin] }, {
      FTL_PLUGIN_TOKEN: "s3cret",
    });
    const call = (headers: Record<string, string>) =>
      fetch(new URL("/echo.v1.EchoService/Echo", guest.url), {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ message: "over HTTP/1.1" }),
        signal: AbortSignal.timeout(10_000),
      });
    const allowed = await call({ authorization: "Bearer s3cret" });
    assert.equal(allowed.status, 200);
    assert.deepEqual(await allowed.json(), { message: "over HTTP/1.1" });
    const refused = await call({});
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { code?: string }).code, "unauthenticated");
  });

  it("serves gRPC and Connect on node:http2 too (server: native)", async () => {
    for (const protocol of ["grpc", "connect"] as const) {
      await withEcho({ exe: bun!, args: [enginePlugin] }, protocol, exercise, {
        TEST_SERVER: "native",
      });
    }
  });

  // Bun's own client sends streams past the limit, and DATA on the refused ones: each refused
  // stream must get one RST_STREAM, never a second (internal/http2/reset_memory.ts).
  it("answers 10 000 concurrent streams on one connection, refusing those past its limit", async () => {
    await using guest = await startGuest({ exe: bun!, args: [echoPlugin] });
    const session = http2.connect(guest.url.origin);
    session.on("error", () => {});
    let ok = 0;
    let refused = 0;
    // Destroying the session closes every stream: a stuck one fails the count below.
    const timer = setTimeout(() => session.destroy(), 60_000);
    try {
      await Promise.all(Array.from({ length: 10_000 }, () =>
        new Promise<void>((resolve) => {
          const stream = session.request({
            ":method": "POST",
            ":path": "/echo.v1.EchoService/Ping",
            "content-type": "application/proto",
          });
          stream.on("response", (headers) => headers[":status"] === 200 && ok++);
          stream.on("error", () => refused++);
          stream.on("close", resolve);
          stream.resume();
          stream.end();
        })));
    } finally {
      clearTimeout(timer);
      session.destroy();
    }
    assert.equal(ok + refused, 10_000);
    assert.ok(ok >= 1_000, `${ok} answered`);
  });

  it("fails calls UNAVAILABLE and ends the plugin's signal when a Bun guest is killed", async () => {
    await withEcho({ exe: bun!, args: [echoPlugin] }, "grpc", async (plugin) => {
      process.kill(plugin.pid, "SIGKILL");
      await abortedWithin(plugin.signal, 10_000, "the plugin's signal to abort");
      const reason: unknown = plugin.signal.reason;
      assert.ok(reason instanceof PluginExitError);
      assert.match(reason.message, /SIGKILL/);
      await assert.rejects(
        plugin.client.echo({ message: "gone" }, { timeoutMs: 10_000 }),
        (error: unknown) => ConnectError.from(error).code === Code.Unavailable,
      );
    });
  });
});

describe(
  "examples/bun/host.ts",
  { skip: skip || (!onDeno && "a Deno host: runs under deno test") },
  () => {
    it("runs a Bun guest with the README's host permissions over every protocol", async () => {
      const example = join(repoRoot, "examples/bun/host.ts");
      const permissions = readmeHostPermissions;
      const child = spawnProcess(process.execPath, ["run", ...permissions, example, bun!], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      const { code, stdout, stderr } = await runToEnd(child, { timeoutMs: 30_000 });
      assert.equal(code, 0, stderr);
      for (const protocol of protocols) {
        assert.match(
          stdout,
          new RegExp(`over ${protocol}: hello from bun, ${protocol}; count 1 2 3`),
        );
        assert.match(stdout, new RegExp(`over ${protocol}: stopped, exit code 0`));
      }
    });
  },
);

describe("Bun host → Deno guest", {
  skip: !onBun && "runs under bun test (deno task test:bun)",
}, () => {
  for (const protocol of protocols) {
    it(`pings, calls unary and server-streaming over ${protocol}, and stops it (exit 0)`, async () => {
      // The README's guest permissions, and nothing more.
      const { exe, args } = echoGuestCommand("deno");
      const guest = { exe, args: ["run", ...readmeGuestPermissions, args.at(-1)!] };
      await withEcho(guest, protocol, exercise);
    });
  }
});
