// The lean server-streaming paths (internal/lean/stream.ts on the guest,
// internal/lean/stream_client.ts on the host) must give callers exactly what
// connect-es gives. Each call is made through our host and connect-es's transports, to
// the guest's lean path and (a timeout sends a call there) to connect-es's handler,
// and the outcomes compared.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createConnectTransport as createFetchTransport } from "@connectrpc/connect-web";
import { serve } from "../guest.ts";
import { Logger, LogLevel } from "../internal/log.ts";
import { createPluginTransport, type WireProtocol } from "../internal/transport.ts";
import { echoImplementation } from "../examples/echo/echo.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { onDeno } from "./_helpers.ts";

/** Count, with what a test needs: headers, trailers and failures by `count`. */
function implementation(): ReturnType<typeof echoImplementation> {
  return {
    ...echoImplementation("hi"),
    async *count(request, context) {
      context.responseHeader.set("x-head", "h");
      context.responseTrailer.set("x-tail", "t");
      if (request.count === 90) throw new ConnectError("before any", Code.FailedPrecondition);
      for (let number = 1; number <= request.count % 100; number++) {
        yield { number };
        if (request.count >= 200 && number === 2) throw new Error("a bug");
        if (request.count >= 100 && number === 2) {
          throw new ConnectError("mid-stream", Code.Aborted, { "x-error": "e" });
        }
      }
    },
  };
}

/** What a caller can observe of one streamed call. */
async function outcome(
  transport: Transport,
  count: number,
  options: { timeoutMs?: number } = {},
): Promise<unknown> {
  const header: Record<string, string> = {};
  const trailer: Record<string, string> = {};
  const keep = (from: Headers, to: Record<string, string>) =>
    from.forEach((value, key) => {
      // Differ between answers, or between HTTP/1.1 (Deno's fetch) and HTTP/2.
      if (key !== "date" && key !== "content-length" && key !== "transfer-encoding") {
        to[key] = value;
      }
    });
  const numbers: number[] = [];
  try {
    const client = createClient(EchoService, transport);
    for await (
      const message of client.count({ count }, {
        ...options,
        onHeader: (h) => keep(h, header),
        onTrailer: (t) => keep(t, trailer),
      })
    ) {
      numbers.push(message.number);
    }
    return { numbers, header, trailer };
  } catch (error) {
    assert.ok(error instanceof ConnectError, String(error));
    const metadata: Record<string, string> = {};
    keep(error.metadata, metadata);
    return { numbers, code: error.code, message: error.rawMessage, metadata };
  }
}

const counts: [string, number][] = [
  ["messages", 5],
  ["no message", 0],
  ["an error before the first message", 90],
  ["an error mid-stream", 105],
  ["a handler's bug mid-stream", 205],
  ["many messages", 3000],
];

const protocols: WireProtocol[] = ["connect", "grpc"];

describe("the lean server-streaming paths give what connect-es gives", () => {
  for (const protocol of protocols) {
    for (const [name, count] of counts) {
      it(`${protocol}: ${name}`, async () => {
        await using server = await serve({
          service: EchoService,
          implementation: implementation(),
          bind: "http://127.0.0.1:0",
          logger: new Logger({ level: LogLevel.Error, write: () => {} }),
        });
        const ours = createPluginTransport(new URL(server.url), protocol);
        try {
          // Our host to the guest's lean path, and (a timeout) to connect-es's handler.
          const lean = await outcome(ours.transport, count);
          const full = await outcome(ours.transport, count, { timeoutMs: 60_000 });
          assert.deepEqual(lean, full);
          // On Deno, connect-node's gRPC client runs on Deno's node:http2, which can
          // crash the process (nghttp2 assertions, seen here): gRPC is compared on Node.
          if (onDeno && protocol === "grpc") return;
          const options = { baseUrl: String(server.url), httpVersion: "2" as const };
          const theirs: Transport = protocol === "grpc"
            ? createGrpcTransport(options)
            : onDeno
            ? createFetchTransport({ baseUrl: options.baseUrl, useBinaryFormat: true })
            : createConnectTransport({ ...options, useBinaryFormat: true });
          assert.deepEqual(await outcome(theirs, count), full);
          assert.deepEqual(await outcome(theirs, count, { timeoutMs: 60_000 }), full);
        } finally {
          ours.close();
        }
      });
    }
    it(`${protocol}: a deadline that passes mid-stream`, async () => {
      await using server = await serve({
        service: EchoService,
        implementation: echoImplementation("hi"),
        bind: "http://127.0.0.1:0",
        logger: new Logger({ level: LogLevel.Error, write: () => {} }),
      });
      const ours = createPluginTransport(new URL(server.url), protocol);
      try {
        const client = createClient(EchoService, ours.transport);
        const numbers: number[] = [];
        await assert.rejects(
          async () => {
            for await (
              const m of client.count({ count: 50, intervalMs: 100 }, { timeoutMs: 250 })
            ) {
              numbers.push(m.number);
            }
          },
          (error: unknown) => error instanceof ConnectError && error.code === Code.DeadlineExceeded,
        );
        assert.ok(numbers.length >= 1 && numbers.length < 50, String(numbers.length));
      } finally {
        ours.close();
      }
    });
    it(`${protocol}: the caller's signal cancels mid-stream`, async () => {
      await using server = await serve({
        service: EchoService,
        implementation: echoImplementation("hi"),
        bind: "http://127.0.0.1:0",
        logger: new Logger({ level: LogLevel.Error, write: () => {} }),
      });
      const ours = createPluginTransport(new URL(server.url), protocol);
      try {
        const client = createClient(EchoService, ours.transport);
        const controller = new AbortController();
        const numbers: number[] = [];
        await assert.rejects(
          async () => {
            for await (
              const m of client.count({ count: 50, intervalMs: 20 }, { signal: controller.signal })
            ) {
              numbers.push(m.number);
              if (m.number === 3) controller.abort();
            }
          },
          (error: unknown) => error instanceof ConnectError && error.code === Code.Canceled,
        );
        assert.deepEqual(numbers, [1, 2, 3]);
      } finally {
        ours.close();
      }
    });
  }
});
