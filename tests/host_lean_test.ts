// The host's lean unary path (internal/lean/unary_client.ts) must give callers exactly what
// connect-es's own transports give. Each call is made through both and the outcomes
// compared: message, headers and trailers, or the error's code, message and metadata.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Client, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createConnectTransport as createFetchTransport } from "@connectrpc/connect-web";
import { serve } from "../guest.ts";
import { Logger, LogLevel } from "../internal/log.ts";
import { createPluginTransport, type WireProtocol } from "../internal/transport.ts";
import { echoImplementation } from "../examples/echo/echo.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { connect, createServer, type Socket } from "node:net";
import { onDeno } from "./_helpers.ts";

type Echo = Client<typeof EchoService>;

/** What a caller can observe of one call. */
async function outcome(call: (options: object) => Promise<unknown>): Promise<unknown> {
  const header: Record<string, string> = {};
  const trailer: Record<string, string> = {};
  const keep = (from: Headers, to: Record<string, string>) =>
    from.forEach((value, key) => {
      // Differ between two answers, or between the two transports' requests.
      if (key !== "date" && key !== "content-length") to[key] = value;
    });
  try {
    const message = await call({
      onHeader: (h: Headers) => keep(h, header),
      onTrailer: (t: Headers) => keep(t, trailer),
    });
    return { message, header, trailer };
  } catch (error) {
    assert.ok(error instanceof ConnectError, String(error));
    const metadata: Record<string, string> = {};
    keep(error.metadata, metadata);
    return { code: error.code, message: error.rawMessage, metadata };
  }
}

const calls: [string, (client: Echo, options: object) => Promise<unknown>][] = [
  ["an answer", (c, o) => c.echo({ message: "there" }, o)],
  ["headers and trailers", (c, o) =>
    c.echo({ message: "with-metadata" }, {
      ...o,
      headers: { "x-echo": "please" },
    })],
  ["an error with its code", (c, o) => c.fail({ code: 9, message: "not now" }, o)],
  ["a deadline that passes", (c, o) =>
    c.echo({ message: "slow", delayMs: 2_000 }, {
      ...o,
      timeoutMs: 50,
    })],
  ["an empty message", (c, o) => c.ping({}, o)],
];

const protocols: WireProtocol[] = onDeno ? ["connect"] : ["connect", "grpc"];

describe("the host's lean unary path gives what connect-es's transports give", () => {
  for (const protocol of protocols) {
    for (const [name, call] of calls) {
      it(`${protocol}: ${name}`, async () => {
        await using server = await serve({
          service: EchoService,
          implementation: echoImplementation("hi"),
          bind: "http://127.0.0.1:0",
          logger: new Logger({ level: LogLevel.Error, write: () => {} }),
        });
        const ours = createPluginTransport(new URL(server.url), protocol);
        const options = { baseUrl: String(server.url), httpVersion: "2" as const };
        // On Deno, fetch: its node:http2 client can abort the process when the server
        // goes away (nghttp2's find_stream_on_goaway_func assertion, seen here).
        const theirs: Transport = protocol === "grpc"
          ? createGrpcTransport(options)
          : onDeno
          ? createFetchTransport({ baseUrl: options.baseUrl, useBinaryFormat: true })
          : createConnectTransport({ ...options, useBinaryFormat: true });
        try {
          const lean = await outcome((o) => call(createClient(EchoService, ours.transport), o));
          const full = await outcome((o) => call(createClient(EchoService, theirs), o));
          assert.deepEqual(lean, full);
        } finally {
          ours.close();
        }
      });
    }
  }
});

describe("the host's connections to a plugin", () => {
  for (const protocol of protocols) {
    it(`${protocol}: one call at a time uses one connection; many in flight use two`, async () => {
      await using server = await serve({
        service: EchoService,
        implementation: echoImplementation("hi"),
        bind: "http://127.0.0.1:0",
        logger: new Logger({ level: LogLevel.Error, write: () => {} }),
      });
      // A TCP relay in front of the guest counts the connections the host opens.
      const target = new URL(server.url);
      const sockets = new Set<Socket>();
      let connections = 0;
      const relay = createServer((inbound) => {
        connections++;
        const upstream = connect(Number(target.port), target.hostname);
        sockets.add(inbound).add(upstream);
        inbound.pipe(upstream).pipe(inbound);
        const end = () => (inbound.destroy(), upstream.destroy());
        inbound.on("error", end).on("close", end);
        upstream.on("error", end).on("close", end);
      });
      await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
      const { port } = relay.address() as { port: number };
      const ours = createPluginTransport(new URL(`http://127.0.0.1:${port}`), protocol);
      try {
        const client = createClient(EchoService, ours.transport);
        for (let i = 0; i < 5; i++) {
          assert.equal((await client.echo({ message: `one ${i}` })).message, `hi one ${i}`);
        }
        assert.equal(connections, 1);
        const answers = await Promise.all(
          Array.from({ length: 64 }, (_, i) => client.echo({ message: `many ${i}` })),
        );
        assert.deepEqual(
          answers.map((a) => a.message),
          Array.from({ length: 64 }, (_, i) => `hi many ${i}`),
        );
        assert.equal(connections, 2);
      } finally {
        ours.close();
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => relay.close(resolve));
      }
    });
  }
});
