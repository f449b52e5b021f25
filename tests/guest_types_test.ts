// Compile-time checks: `deno check` fails if any @ts-expect-error line compiles.
import { it } from "node:test";
import assert from "node:assert/strict";
import type { DescService } from "@bufbuild/protobuf";
import { serve } from "../guest.ts";
import type { PluginImpl } from "../guest.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { Health } from "../gen/grpc/health/v1/health_pb.ts";
import { echoImplementation } from "../examples/echo/echo.ts";

const echo = echoImplementation("");

it("requires the one implementation to implement every additional service", () => {
  const both: PluginImpl<typeof EchoService, [typeof Health]> = {
    ...echo,
    check: () => ({ status: 1 }),
    async *watch() {},
  };
  // @ts-expect-error Health's `watch` is missing.
  const missing: PluginImpl<typeof EchoService, [typeof Health]> = {
    ...echo,
    check: () => ({ status: 1 }),
  };
  assert.ok(both && missing);
});

it("rejects a serve() call whose implementation lacks a method of `services`", () => {
  const call = () =>
    serve({
      service: EchoService,
      services: [Health],
      // @ts-expect-error Health's methods are missing.
      implementation: echo,
      bind: "http://127.0.0.1:0",
    });
  assert.equal(typeof call, "function");
});

it("rejects a main service without Ping", async () => {
  const notPingable: DescService = Health;
  // @ts-expect-error Health has no Ping method.
  const call = () => serve({ service: Health, implementation: {}, bind: "http://127.0.0.1:0" });
  await assert.rejects(
    serve({ service: notPingable as typeof EchoService, implementation: echo, bind: "http://x:1" }),
    /no Ping/,
  );
  assert.equal(typeof call, "function");
});
