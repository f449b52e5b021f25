import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { Code, type ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { spawn } from "../host.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.ts";
import { echoGuestCommand, memoryLogger, startGuest, tempDir } from "./_helpers.ts";

/** Inodes of the TCP sockets in LISTEN state on this machine. */
function listeningTcpInodes(): Set<string> {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").trim().split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] === "0A") inodes.add(fields[9]); // 0A: LISTEN
    }
  }
  return inodes;
}

/** Whether process `pid` holds a listening TCP socket. */
function listensOnTcp(pid: number): boolean {
  const listening = listeningTcpInodes();
  return readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      return inode !== undefined && listening.has(inode);
    } catch {
      return false;
    }
  });
}

function tokenOf(pid: number): string | undefined {
  return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")
    .find((v) => v.startsWith("FTL_PLUGIN_TOKEN="))?.slice("FTL_PLUGIN_TOKEN=".length);
}

for (const runtime of ["deno", "node"] as const) {
  describe(`bind: "unix" with the ${runtime} guest`, () => {
    it("serves on <dir>/.ftl/<name>.sock (0600) and opens no TCP port", async () => {
      using dir = tempDir();
      const { logger } = memoryLogger();
      await using plugin = await spawn({
        name: "echo",
        dir: dir.path,
        ...echoGuestCommand(runtime),
        service: EchoService,
        bind: "unix",
        logger,
      });
      const socket = `${dir.path}/.ftl/echo.sock`;
      assert.equal(plugin.endpoint.href, `unix://${socket}`);
      assert.equal(statSync(socket).mode & 0o777, 0o600);
      assert.equal((await plugin.client.echo({ message: "over unix" })).message, "over unix");
      assert.ok(!listensOnTcp(plugin.pid), "the guest listens on TCP");
      await plugin.stop();
      assert.throws(() => statSync(socket), /ENOENT/, "the socket file was left behind");
    });
  });
}

describe("the per-plugin token", () => {
  it("is required by a guest that was given one, health excepted", async () => {
    await using guest = await startGuest(echoGuestCommand("deno"), {
      FTL_PLUGIN_TOKEN: "s3cret-token",
    });
    const client = (headers?: Record<string, string>) =>
      createClient(
        EchoService,
        createConnectTransport({
          baseUrl: guest.url.href,
          interceptors: [(next) => (req) => {
            for (const [k, v] of Object.entries(headers ?? {})) req.header.set(k, v);
            return next(req);
          }],
        }),
      );
    for (
      const headers of [undefined, { authorization: "Bearer not-the-token" }, {
        authorization: "s3cret-token",
      }]
    ) {
      await assert.rejects(
        client(headers).echo({ message: "x" }),
        (e: ConnectError) =>
          e.code === Code.Unauthenticated && !e.rawMessage.includes("s3cret") &&
          !e.rawMessage.includes("not-the-token"),
        JSON.stringify(headers),
      );
    }
    const ok = await client({ authorization: "Bearer s3cret-token" }).echo({ message: "x" });
    assert.equal(ok.message, "x");
    const health = createClient(Health, createConnectTransport({ baseUrl: guest.url.href }));
    assert.equal((await health.check({})).status, HealthCheckResponse_ServingStatus.SERVING);
    assert.ok(!guest.stderrLines.some((l) => l.includes("s3cret-token")), "the token was logged");
  });

  for (const runtime of ["deno", "node"] as const) {
    it(`is made by the host, sent on every call and never logged (${runtime} guest)`, async () => {
      using dir = tempDir();
      const { logger, entries } = memoryLogger();
      await using plugin = await spawn({
        name: "echo",
        dir: dir.path,
        ...echoGuestCommand(runtime),
        service: EchoService,
        logger,
      });
      const token = tokenOf(plugin.pid);
      assert.ok(token && token.length >= 40, "FTL_PLUGIN_TOKEN holds a long random token");
      assert.equal((await plugin.client.echo({ message: "authorised" })).message, "authorised");
      // A call without the token, straight to the plugin, is refused.
      const anonymous = createClient(
        EchoService,
        createConnectTransport({ baseUrl: plugin.endpoint.href }),
      );
      await assert.rejects(
        anonymous.echo({ message: "x" }),
        (e: ConnectError) => e.code === Code.Unauthenticated,
      );
      await plugin.stop();
      assert.ok(!JSON.stringify(entries).includes(token), "the token reached a log line");
    });
  }

  it("is not given with auth: false, and calls need none", async () => {
    using dir = tempDir();
    const { logger } = memoryLogger();
    await using plugin = await spawn({
      name: "echo",
      dir: dir.path,
      ...echoGuestCommand("deno"),
      service: EchoService,
      auth: false,
      logger,
    });
    assert.equal(tokenOf(plugin.pid), undefined);
    const anonymous = createClient(
      EchoService,
      createConnectTransport({ baseUrl: plugin.endpoint.href }),
    );
    assert.equal((await anonymous.echo({ message: "open" })).message, "open");
  });
});
