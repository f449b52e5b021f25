import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, type ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { serve } from "../guest.ts";
import { type LogEntry, Logger } from "../internal/log.ts";
import { echoImplementation } from "../examples/echo/echo.ts";
import { EchoRequestSchema, EchoService } from "../gen/echo/v1/echo_pb.ts";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.ts";
import { collect, onDeno, runToEnd, spawnBuf } from "./_helpers.ts";

function memoryLogger(): { logger: Logger; lines: LogEntry[] } {
  const lines: LogEntry[] = [];
  const logger = new Logger({
    level: 1,
    write: (line) => lines.push(JSON.parse(line)),
  });
  return { logger, lines };
}

async function startEcho(
  extra: Partial<Parameters<typeof serve>[0]> = {},
): Promise<Awaited<ReturnType<typeof serve>> & { lines: LogEntry[] }> {
  const { logger, lines } = memoryLogger();
  const server = await serve({
    service: EchoService,
    implementation: echoImplementation("hi"),
    bind: "http://127.0.0.1:0",
    logger,
    ...extra,
  });
  return Object.assign(server, { lines });
}

describe("serve()", () => {
  it("rejects bad options and bind addresses with a clear error", async () => {
    const base = { service: EchoService, implementation: echoImplementation("") };
    await assert.rejects(serve({ ...base, bind: "ftp://x:1" }), /must use http:\/\/ or unix:\/\//);
    await assert.rejects(serve({ ...base, bind: "http://127.0.0.1" }), /has no port/);
    await assert.rejects(serve({ ...base, bind: "unix://relative" }), /unix:\/\/\/absolute/);
    await assert.rejects(
      serve({ ...base, bind: "http://127.0.0.1:0", readMaxBytes: 0 }),
      /readMaxBytes must be a number of at least 1/,
    );
  });

  it("answers Connect JSON over HTTP/1.1", async () => {
    await using server = await startEcho();
    const response = await fetch(new URL("/echo.v1.EchoService/Echo", server.url), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ message: "there" }),
    });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { message: "hi there" });
  });

  it("answers Connect binary through a typed client", async () => {
    await using server = await startEcho();
    const client = createClient(
      EchoService,
      createConnectTransport({ baseUrl: server.url.href, useBinaryFormat: true }),
    );
    const answer = await client.echo({ message: "binary" });
    assert.equal(answer.message, "hi binary");
  });

  it("answers gRPC-Web", async () => {
    await using server = await startEcho();
    const client = createClient(
      EchoService,
      createGrpcWebTransport({ baseUrl: server.url.href }),
    );
    assert.equal((await client.echo({ message: "web" })).message, "hi web");
  });

  it("streams from a server-streaming method", async () => {
    await using server = await startEcho();
    const client = createClient(
      EchoService,
      createConnectTransport({ baseUrl: server.url.href }),
    );
    const numbers = await collect(client.count({ count: 5 }), (m) => m.number);
    assert.deepEqual(numbers, [1, 2, 3, 4, 5]);
  });

  it("keeps a ConnectError's code", async () => {
    await using server = await startEcho();
    const client = createClient(
      EchoService,
      createConnectTransport({ baseUrl: server.url.href }),
    );
    await assert.rejects(
      client.fail({ code: Code.FailedPrecondition, message: "not yet" }),
      (error: ConnectError) =>
        error.code === Code.FailedPrecondition && error.rawMessage === "not yet",
    );
  });

  it("turns any other throw into INTERNAL and logs it once with its stack", async () => {
    await using server = await startEcho({
      implementation: {
        ...echoImplementation(""),
        echo: () => {
          throw new RangeError("a bug");
        },
      },
    });
    const client = createClient(
      EchoService,
      createConnectTransport({ baseUrl: server.url.href }),
    );
    await assert.rejects(
      client.echo({ message: "x" }),
      (error: ConnectError) => error.code === Code.Internal,
    );
    const errors = server.lines.filter((l) => l.level === 17);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].error, "a bug");
    assert.match(errors[0].attributes?.stack ?? "", /RangeError: a bug/);
  });

  it("answers gRPC, and with Deno's native server a trailers-only UNIMPLEMENTED naming Connect", async () => {
    await using server = await startEcho();
    await using native = await startEcho({ server: "native" });
    const sessions = new Http2SessionManager(server.url);
    const nativeSessions = new Http2SessionManager(native.url);
    try {
      const client = createClient(
        EchoService,
        createGrpcTransport({ baseUrl: server.url.href, sessionManager: sessions }),
      );
      assert.equal((await client.echo({ message: "grpc" })).message, "hi grpc");
      const nativeClient = createClient(
        EchoService,
        createGrpcTransport({ baseUrl: native.url.href, sessionManager: nativeSessions }),
      );
      if (onDeno) {
        await assert.rejects(
          nativeClient.echo({ message: "grpc" }),
          (error: ConnectError) =>
            error.code === Code.Unimplemented &&
            /speaks Connect and gRPC-Web/.test(error.rawMessage),
        );
      } else {
        assert.equal((await nativeClient.echo({ message: "grpc" })).message, "hi grpc");
      }
    } finally {
      nativeSessions.abort();
      // Deno's node:http2 client can abort the process on a GOAWAY from a server
      // shutting down; close our side first (DESIGN.md).
      sessions.abort();
    }
  });

  it("reports SERVING through grpc.health.v1.Health", async () => {
    await using server = await startEcho();
    const health = createClient(Health, createConnectTransport({ baseUrl: server.url.href }));
    const all = await health.check({ service: "" });
    assert.equal(all.status, HealthCheckResponse_ServingStatus.SERVING);
    const echo = await health.check({ service: "echo.v1.EchoService" });
    assert.equal(echo.status, HealthCheckResponse_ServingStatus.SERVING);
    await assert.rejects(
      health.check({ service: "nope.Service" }),
      (error: ConnectError) => error.code === Code.NotFound,
    );
  });

  it("serves an extra handler beside the services", async () => {
    await using server = await startEcho({
      handlers: { "/metrics": () => new Response("up 1\n") },
    });
    const response = await fetch(new URL("/metrics", server.url));
    assert.equal(await response.text(), "up 1\n");
    const missing = await fetch(new URL("/nothing", server.url));
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  });

  it("lists every service through reflection for buf curl", async () => {
    await using server = await startEcho();
    const { code, stdout, stderr } = await runToEnd(
      spawnBuf("curl", "--list-methods", "--http2-prior-knowledge", server.url.href),
    );
    assert.equal(code, 0, stderr);
    const methods = stdout.trim().split("\n").sort();
    for (
      const method of [
        "echo.v1.EchoService/Count",
        "echo.v1.EchoService/Echo",
        "echo.v1.EchoService/Fail",
        "echo.v1.EchoService/Ping",
        "grpc.health.v1.Health/Check",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      ]
    ) {
      assert.ok(methods.includes(method), `${method} missing from ${methods}`);
    }
  });

  it("calls a method through buf curl with the schema from reflection", async () => {
    await using server = await startEcho();
    const { code, stdout, stderr } = await runToEnd(
      spawnBuf(
        "curl",
        "--http2-prior-knowledge",
        "--data",
        '{"message":"from buf"}',
        new URL("/echo.v1.EchoService/Echo", server.url).href,
      ),
    );
    assert.equal(code, 0, stderr);
    assert.deepEqual(JSON.parse(stdout), { message: "hi from buf" });
  });

  /** An echo whose slow calls say when they have started. */
  function observedEcho(): {
    implementation: ReturnType<typeof echoImplementation>;
    started: Promise<void>;
  } {
    const base = echoImplementation("hi");
    let markStarted = () => {};
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    return {
      started,
      implementation: {
        ...base,
        echo(request, ctx) {
          markStarted();
          return base.echo(request, ctx);
        },
      },
    };
  }

  it("lets a call in flight finish on shutdown and refuses new ones", async () => {
    const { implementation, started } = observedEcho();
    const server = await startEcho({ implementation });
    const client = createClient(
      EchoService,
      createConnectTransport({ baseUrl: server.url.href }),
    );
    const inFlight = client.echo({ message: "slow", delayMs: 300 });
    await started;
    const stopped = server.shutdown({ graceMs: 5_000 });
    assert.equal((await inFlight).message, "hi slow");
    await stopped;
    await assert.rejects(client.echo({ message: "late" }));
  });

  it("cancels calls still running when the grace period ends", async () => {
    const { implementation, started } = observedEcho();
    const server = await startEcho({ implementation });
    const client = createClient(
      EchoService,
      createConnectTransport({ baseUrl: server.url.href }),
    );
    const inFlight = client.echo({ message: "slow", delayMs: 60_000 });
    await started;
    const stopped = server.shutdown({ graceMs: 100 });
    await assert.rejects(
      inFlight,
      (error: ConnectError) => error.code === Code.Unavailable,
    );
    await stopped;
  });

  it("answers Connect binary over h2c to curl", async () => {
    await using server = await startEcho();
    const body = toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "h2" }));
    const child = spawn("curl", [
      "-sS",
      "--http2-prior-knowledge",
      "-o",
      "/dev/null",
      "-w",
      "%{http_version} %{http_code}",
      "-H",
      "content-type: application/proto",
      "--data-binary",
      "@-",
      new URL("/echo.v1.EchoService/Echo", server.url).href,
    ]);
    child.stdin.end(body);
    const { code, stdout, stderr } = await runToEnd(child);
    assert.equal(code, 0, stderr);
    assert.equal(stdout, "2 200");
  });
});
