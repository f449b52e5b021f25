// The guest builds its connect-es router and reflection on the first request that needs
// them (a lean Ping needs neither), and loads the Node HTTP/1.1 backend on first use:
// requests that arrive together before either exists must all be answered as before.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { serve } from "../guest.ts";
import { Logger } from "../internal/log.ts";
import { ReflectionClient } from "../internal/reflection_client.ts";
import { echoImplementation } from "../examples/echo/echo.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { within } from "./_helpers.ts";

describe("a guest's first non-lean requests", () => {
  it("are answered correctly when they arrive together", async () => {
    const server = await serve({
      service: EchoService,
      implementation: echoImplementation("hi"),
      bind: "http://127.0.0.1:0",
      logger: new Logger({ level: 5, write: () => {} }),
      handlers: { "/up": () => new Response("up\n") },
    });
    // Aborted before the guest stops, or the guest would wait on its idle session.
    const sessions = new Http2SessionManager(server.url.href);
    const transport = createGrpcTransport({ baseUrl: server.url.href, sessionManager: sessions });
    const reflection = new ReflectionClient(transport);
    try {
      await answersAll(server.url, reflection);
    } finally {
      sessions.abort();
      await server.shutdown();
    }
  });
});

async function answersAll(url: URL, reflection: ReflectionClient): Promise<void> {
  // Every request is bounded: one left unanswered fails the test instead of hanging it.
  const signal = AbortSignal.timeout(20_000);
  const json = (message: string) =>
    fetch(new URL("/echo.v1.EchoService/Echo", url), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ message }),
      signal,
    }).then(async (response) => [response.status, await response.json()]);
  const [echoes, services, up, missing] = await within(
    "every answer",
    Promise.all([
      Promise.all(["a", "b", "c", "d"].map(json)),
      reflection.listServices(),
      fetch(new URL("/up", url), { signal }).then((response) => response.text()),
      fetch(new URL("/nothing/here", url), { signal }).then(async (response) => {
        await response.body?.cancel();
        return response.status;
      }),
    ]),
    20_000,
  );
  assert.deepEqual(echoes, [
    [200, { message: "hi a" }],
    [200, { message: "hi b" }],
    [200, { message: "hi c" }],
    [200, { message: "hi d" }],
  ]);
  assert.deepEqual([...services].sort(), [
    "echo.v1.EchoService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
  ]);
  assert.equal(up, "up\n");
  assert.equal(missing, 404);
}
