// This runtime's host against both guests (so Deno host ↔ Node guest under deno test,
// Node host ↔ Deno guest under node --test), in every protocol the guest serves:
// every code round-trips, deadlines cancel the handler, metadata goes both ways.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Code, type ConnectError } from "@connectrpc/connect";
import { spawn, type WireProtocol } from "../../host.ts";
import { EchoService } from "../../gen/echo/v1/echo_pb.ts";
import { LogLevel } from "../../internal/log.ts";
import {
  echoGuestCommand,
  memoryLogger,
  onDeno,
  type Runtime,
  tempDir,
  waitUntil,
} from "../_helpers.ts";

const host = onDeno ? "deno" : "node";
// Every protocol on both: the Deno guest serves gRPC through the project's HTTP/2 engine.
const protocols: Record<Runtime, WireProtocol[]> = {
  deno: ["connect", "grpc-web", "grpc"],
  node: ["connect", "grpc-web", "grpc"],
};

for (const guestRuntime of ["deno", "node"] as const) {
  for (const protocol of protocols[guestRuntime]) {
    describe(`${host} host → ${guestRuntime} guest over ${protocol}`, () => {
      async function withPlugin(
        use: (
          plugin: Awaited<ReturnType<typeof spawn<typeof EchoService>>>,
          log: ReturnType<typeof memoryLogger>,
        ) => Promise<void>,
      ): Promise<void> {
        using dir = tempDir();
        const log = memoryLogger();
        await using plugin = await spawn({
          name: "echo",
          dir: dir.path,
          ...echoGuestCommand(guestRuntime),
          service: EchoService,
          protocol,
          logger: log.logger,
        });
        assert.equal(plugin.protocol, protocol);
        await use(plugin, log);
      }

      it("round-trips every code with its message", async () => {
        await withPlugin(async (plugin) => {
          for (let code = 1; code <= 16; code++) {
            await assert.rejects(
              plugin.client.fail({ code, message: `code ${code}` }),
              (error: ConnectError) => error.code === code && error.rawMessage === `code ${code}`,
              `code ${Code[code]}`,
            );
          }
        });
      });

      it("times out a slow call with DEADLINE_EXCEEDED and aborts the handler's signal", async () => {
        await withPlugin(async (plugin, { entries }) => {
          await assert.rejects(
            plugin.client.echo({ message: "slow", delayMs: 10_000 }, { timeoutMs: 200 }),
            (error: ConnectError) => error.code === Code.DeadlineExceeded,
          );
          // The guest logs "echo cancelled" when its handler's signal aborts; the host
          // mirrors it.
          const cancelled = () =>
            entries.some((e) => e.message === "echo cancelled" && e.level === LogLevel.Warn);
          assert.ok(await waitUntil(cancelled, 3_000), "the handler was not cancelled");
        });
      });

      it("sends request headers and receives response headers and trailers", async () => {
        await withPlugin(async (plugin) => {
          let header: Headers | undefined;
          let trailer: Headers | undefined;
          const answer = await plugin.client.echo({ message: "m" }, {
            headers: { "x-echo": "both ways" },
            onHeader: (h) => (header = h),
            onTrailer: (t) => (trailer = t),
          });
          assert.equal(answer.message, "m");
          assert.equal(header?.get("x-echo"), "both ways");
          assert.equal(trailer?.get("x-echo-trailer"), "both ways");
        });
      });
    });
  }
}
