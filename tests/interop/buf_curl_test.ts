// buf curl (connect-go's client; over gRPC, Go's HTTP/2 client) against both guests, in
// every protocol: the Deno guest serves gRPC through the project's HTTP/2 engine.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { echoGuestCommand, runToEnd, spawnBuf, startGuest } from "../_helpers.ts";

const protocols = ["connect", "grpcweb", "grpc"];

async function bufCurl(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await runToEnd(
    spawnBuf("curl", "--http2-prior-knowledge", ...args),
  );
  assert.equal(code, 0, stderr);
  return stdout;
}

for (const runtime of ["deno", "node"] as const) {
  describe(`buf curl → the ${runtime} guest`, () => {
    for (const protocol of protocols) {
      it(`calls Echo and streams Count over ${protocol}`, async () => {
        await using guest = await startGuest(echoGuestCommand(runtime));
        const echo = await bufCurl(
          "--protocol",
          protocol,
          "--data",
          '{"message":"hi"}',
          new URL("/echo.v1.EchoService/Echo", guest.url).href,
        );
        assert.deepEqual(JSON.parse(echo), { message: "hi" });
        const count = await bufCurl(
          "--protocol",
          protocol,
          "--data",
          '{"count":3}',
          new URL("/echo.v1.EchoService/Count", guest.url).href,
        );
        // One JSON object per streamed message.
        const numbers = [...count.matchAll(/"number":\s*(\d+)/g)].map((m) => Number(m[1]));
        assert.deepEqual(numbers, [1, 2, 3]);
      });
    }

    it("lists the methods through reflection", async () => {
      await using guest = await startGuest(echoGuestCommand(runtime));
      const methods = (await bufCurl("--list-methods", guest.url.href)).trim().split("\n");
      assert.ok(methods.includes("echo.v1.EchoService/Echo"), methods.join(", "));
      assert.ok(methods.includes("grpc.health.v1.Health/Check"), methods.join(", "));
      const overGrpc = await bufCurl("--protocol", "grpc", "--list-methods", guest.url.href);
      assert.match(overGrpc, /echo\.v1\.EchoService\/Count/);
    });
  });
}
