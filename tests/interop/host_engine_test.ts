// This runtime's host (Deno under deno test, Node under node --test) calls, through the
// HTTP/2 engine's client, a Deno guest (served by the engine), a Node guest (node:http2)
// and a @grpc/grpc-js plugin: unary, server, client and bidi streaming, over Connect,
// gRPC and gRPC-Web wherever the peer speaks them. A plugin that stops (SIGSTOP) fails
// calls without a deadline UNAVAILABLE (keepalive PINGs). And a gRPC plugin that shuts
// down on its own (GOAWAY while a stream is open) never takes the host down: 100 of 100.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { spawn, type WireProtocol } from "../../host.ts";
import { createPluginTransport } from "../../internal/transport.ts";
import { EchoService } from "../../gen/echo/v1/echo_pb.ts";
import { InteropService } from "../fixtures/interop_service.ts";
import {
  denoExecutable,
  memoryLogger,
  onDeno,
  repoRoot,
  startGuest,
  tempDir,
} from "../_helpers.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const host = onDeno ? "deno" : "node";
const node = onDeno ? "node" : process.execPath;

/** A compiled fixture of the npm build, which the Node guest and grpc-js plugin run from. */
function compiled(name: string): string {
  const path = join(repoRoot, `npm/tests/fixtures/${name}.js`);
  if (!existsSync(path)) throw new Error(`${path} is missing: run deno task build:npm`);
  return path;
}

const peers: {
  name: string;
  protocols: WireProtocol[];
  command: () => { exe: string; args: string[] };
}[] = [
  {
    name: "the Deno guest",
    protocols: ["connect", "grpc", "grpc-web"],
    command: () => ({
      exe: denoExecutable(),
      args: [
        "run",
        "--allow-net",
        "--allow-env",
        join(repoRoot, "tests/fixtures/interop_guest.ts"),
      ],
    }),
  },
  {
    name: "the Node guest",
    protocols: ["connect", "grpc", "grpc-web"],
    command: () => ({ exe: node, args: [compiled("interop_guest")] }),
  },
  {
    // On Node: grpc-js as gRPC plugins run it in production.
    name: "a grpc-js plugin",
    protocols: ["grpc"],
    command: () => ({ exe: node, args: [compiled("grpc_interop_plugin")] }),
  },
];

async function* sumRequests(): AsyncIterable<{ count: number }> {
  for (let i = 1; i <= 10; i++) yield { count: i };
}

for (const peer of peers) {
  for (const protocol of peer.protocols) {
    describe(`${host} host → ${peer.name} over ${protocol}`, () => {
      it("makes unary, server-streaming, client-streaming and bidi calls", async () => {
        using dir = tempDir();
        const { logger } = memoryLogger();
        await using plugin = await spawn({
          name: "interop",
          dir: dir.path,
          ...peer.command(),
          service: EchoService,
          extraClients: { interop: InteropService },
          protocol,
          logger,
        });
        assert.equal(plugin.protocol, protocol);
        const echo = plugin.client;
        const interop: Client<typeof InteropService> = plugin.clients.interop;

        const answer = await echo.echo({ message: "hi" });
        assert.match(answer.message, /hi$/);

        // Enough messages to need our window to be given back along the way.
        const numbers: number[] = [];
        for await (const m of echo.count({ count: 2_000 })) numbers.push(m.number);
        assert.equal(numbers.length, 2_000);
        assert.deepEqual(numbers.slice(0, 3), [1, 2, 3]);
        assert.equal(numbers.at(-1), 2_000);

        assert.equal((await interop.sum(sumRequests())).number, 55);

        // Bidi, in lockstep: each message is sent only once the answer to the last came.
        let answered: () => void = () => {};
        const said: string[] = [];
        const requests = (async function* () {
          for (const word of ["a", "b", "c"]) {
            const next = new Promise<void>((resolve) => (answered = resolve));
            yield { message: word };
            await next;
          }
        })();
        for await (const m of interop.chat(requests)) {
          said.push(m.message);
          answered();
        }
        assert.deepEqual(said, ["chat a", "chat b", "chat c"]);

        // Many calls at once still land, spread over the host's connections.
        const many = await Promise.all(
          Array.from({ length: 50 }, (_, i) => echo.echo({ message: `m${i}` })),
        );
        assert.ok(many.every((m, i) => m.message.endsWith(`m${i}`)));
      });
    });
  }
}

describe(`${host} host and a plugin that stops answering (SIGSTOP)`, () => {
  for (const protocol of ["connect", "grpc"] as const) {
    it(`fails calls without a deadline UNAVAILABLE over ${protocol}, unary and streaming`, async () => {
      await using guest = await startGuest({
        exe: denoExecutable(),
        args: [
          "run",
          "--allow-net",
          "--allow-env",
          join(repoRoot, "tests/fixtures/interop_guest.ts"),
        ],
      });
      const { transport, close } = createPluginTransport(guest.url, protocol, {
        timeouts: { keepaliveIntervalMs: 100, keepaliveTimeoutMs: 300, waitTimeoutMs: 1_000 },
      });
      try {
        const echo = createClient(EchoService, transport);
        assert.equal((await echo.echo({ message: "awake" })).message, "awake");
        // A stream that was flowing when the plugin stopped.
        const counting = (async () => {
          for await (const _ of echo.count({ count: 1_000, intervalMs: 20 }));
        })().then(() => undefined, (error: unknown) => error);
        await sleep(100);
        process.kill(guest.child.pid!, "SIGSTOP");
        try {
          const started = Date.now();
          const unary = await echo.echo({ message: "asleep" }).catch((e) => e);
          const took = Date.now() - started;
          assert.ok(unary instanceof ConnectError, String(unary));
          assert.equal(unary.code, Code.Unavailable, unary.message);
          assert.ok(took < 5_000, `took ${took} ms`);
          const stream = await counting;
          assert.ok(stream instanceof ConnectError, String(stream));
          assert.equal(stream.code, Code.Unavailable, stream.message);
        } finally {
          process.kill(guest.child.pid!, "SIGCONT");
        }
      } finally {
        close();
      }
    });
  }
});

describe(`${host} host and a gRPC plugin that shuts down on its own`, () => {
  it("survives it 100 times of 100, GOAWAY arriving while a stream is open", async () => {
    const runs = 100;
    const atOnce = 4;
    let survived = 0;
    const run = async () => {
      using dir = tempDir();
      const { logger } = memoryLogger();
      const plugin = await spawn({
        name: "goaway",
        dir: dir.path,
        exe: node,
        args: [compiled("grpc_interop_plugin")],
        service: EchoService,
        protocol: "grpc",
        env: { TEST_EXIT_DURING_COUNT: "1" },
        logger,
      });
      try {
        // The plugin starts shutting down (GOAWAY) as this stream opens; it still ends.
        const numbers: number[] = [];
        for await (const m of plugin.client.count({ count: 3, intervalMs: 5 })) {
          numbers.push(m.number);
        }
        assert.deepEqual(numbers, [1, 2, 3]);
        assert.deepEqual(await plugin.exited, { code: 0, signal: null });
        survived++;
      } finally {
        await plugin.stop({ graceMs: 1_000 });
      }
    };
    for (let started = 0; started < runs; started += atOnce) {
      await Promise.all(Array.from({ length: Math.min(atOnce, runs - started) }, run));
    }
    assert.equal(survived, runs);
  });
});
