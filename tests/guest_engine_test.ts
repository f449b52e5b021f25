// A guest serving through the HTTP/2 engine behind the first-bytes switch: gRPC,
// Connect and gRPC-Web on one port, HTTP/1.1 handed to the runtime's own server, the
// header timeout on both paths, graceful shutdown, a unix socket. The Deno guest runs
// with exactly the README's permissions; on Node the Node guest (the engine is its
// default too) is checked, and with `server: "native"` (node:http2) beside it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { createConnectTransport as createFetchTransport } from "@connectrpc/connect-web";
import { EchoRequestSchema, EchoService } from "../gen/echo/v1/echo_pb.ts";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.ts";
import { ReflectionClient } from "../internal/reflection_client.ts";
import {
  denoExecutable,
  onDeno,
  repoRoot,
  type RunningGuest,
  startGuest,
  tempDir,
  waitUntil,
} from "./_helpers.ts";
import { onBun } from "./_bun.ts";

const fixture = join(repoRoot, "tests/fixtures/engine_plugin.ts");

interface GuestKind {
  name: string;
  command: (extraFlags?: string[]) => { exe: string; args: string[] };
  env: Record<string, string>;
  /** What a gRPC request over HTTP/1.1 gets (node:http can send trailers there). */
  http1Grpc: "refused" | "served";
  /** Whether the project's engine answers HTTP/2 (else node:http2). */
  engine: boolean;
  /**
   * Whether later heads on a keep-alive HTTP/1.1 connection have a timeout too: node:http
   * has one; Deno.serve (behind the Deno guest's switch) has no such setting.
   */
  laterHeadTimeout: boolean;
}

const guests: GuestKind[] = [
  {
    name: "the Deno guest on the engine",
    // The README's permissions for a guest, --allow-net narrowed to loopback as it says
    // works (HTTP/1.1 goes through a private loopback port); a unix socket adds read and
    // write.
    command: (extraFlags = []) => ({
      exe: denoExecutable(),
      args: [
        "run",
        extraFlags.length > 0 ? "--allow-net" : "--allow-net=127.0.0.1",
        "--allow-env",
        ...extraFlags,
        fixture,
      ],
    }),
    env: {},
    http1Grpc: "refused",
    engine: true,
    laterHeadTimeout: false,
  },
  ...(onDeno ? [] : [{
    name: "the Node guest on the engine (its default)",
    command: () => ({
      exe: process.execPath,
      args: [join(repoRoot, "npm/tests/fixtures/engine_plugin.js")],
    }),
    env: {},
    http1Grpc: "served" as const,
    engine: true,
    laterHeadTimeout: true,
  }, {
    name: "the Node guest on node:http2 (server: native)",
    command: () => ({
      exe: process.execPath,
      args: [join(repoRoot, "npm/tests/fixtures/engine_plugin.js")],
    }),
    env: { TEST_SERVER: "native" },
    http1Grpc: "served" as const,
    engine: false,
    laterHeadTimeout: true,
  }]),
];

type UnaryOrStream = Parameters<Interceptor>[0];

/** HTTP/2 sessions of a test, aborted before the guest stops (see DESIGN.md on Deno). */
class Sessions {
  readonly #all: Http2SessionManager[] = [];

  /** A gRPC, Connect (h2c) or gRPC-Web (h2c) transport on a session of its own. */
  transport(
    kind: "grpc" | "connect" | "grpc-web",
    url: URL,
    { socketPath, headers }: { socketPath?: string; headers?: Record<string, string> } = {},
  ): Transport {
    const sessions = new Http2SessionManager(
      url,
      undefined,
      socketPath ? { createConnection: () => connect(socketPath) } : undefined,
    );
    this.#all.push(sessions);
    const options = {
      baseUrl: url.href,
      httpVersion: "2" as const,
      sessionManager: sessions,
      interceptors: [
        (next: UnaryOrStream) => (request: Parameters<UnaryOrStream>[0]) => {
          for (const [name, value] of Object.entries(headers ?? {})) {
            request.header.set(name, value);
          }
          return next(request);
        },
      ],
    };
    return kind === "grpc"
      ? createGrpcTransport(options)
      : kind === "connect"
      ? createConnectTransport(options)
      : createGrpcWebTransport(options);
  }

  abort(): void {
    for (const sessions of this.#all.splice(0)) sessions.abort();
  }
}

/** One HTTP/2 request with node:http2's client; the answer's status, headers and body. */
async function h2Request(
  url: URL,
  headers: http2.OutgoingHttpHeaders,
  body?: string,
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; text: string }> {
  const session = http2.connect(url);
  try {
    const stream = session.request(headers);
    stream.end(body);
    const head = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      stream.once("response", resolve);
      stream.once("error", reject);
      stream.once("close", () => reject(new Error("the stream closed without an answer")));
    });
    let text = "";
    stream.setEncoding("utf8");
    for await (const chunk of stream) text += chunk;
    return { status: Number(head[":status"]), headers: head, text };
  } finally {
    session.destroy();
  }
}

/** Resolves with how long after `since` the socket closed; rejects after `ms`. */
function closedWithin(socket: Socket, since: number, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(Date.now() - since);
    });
  });
}

async function openSocket(url: URL, first: string): Promise<Socket> {
  const socket = connect(Number(url.port), url.hostname);
  socket.on("error", () => {});
  socket.on("data", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.write(first);
  return socket;
}

for (const kind of guests) {
  describe(kind.name, () => {
    let guest: RunningGuest;
    const sessions = new Sessions();
    before(async () => {
      guest = await startGuest(kind.command(), { ...kind.env, FTL_PLUGIN_TOKEN: "s3cret" });
    });
    after(async () => {
      sessions.abort();
      await guest?.[Symbol.asyncDispose]();
    });
    const auth = { authorization: "Bearer s3cret" };

    it("answers gRPC unary and server-streaming calls", async () => {
      const client = createClient(EchoService, sessions.transport("grpc", guest.url));
      const headers = new Headers(auth);
      const answer = await client.echo({ message: "over grpc" }, {
        headers: { ...auth, "x-echo": "meta" },
        onHeader: (h) => headers.set("seen", h.get("x-echo") ?? ""),
        onTrailer: (t) => headers.set("trailer", t.get("x-echo-trailer") ?? ""),
      });
      assert.equal(answer.message, "over grpc");
      assert.equal(headers.get("seen"), "meta");
      assert.equal(headers.get("trailer"), "meta");
      const numbers: number[] = [];
      for await (const { number } of client.count({ count: 5 }, { headers: auth })) {
        numbers.push(number);
      }
      assert.deepEqual(numbers, [1, 2, 3, 4, 5]);
      await assert.rejects(
        client.fail({ code: Code.NotFound, message: "nope" }, { headers: auth }),
        (error: ConnectError) => error.code === Code.NotFound && error.rawMessage === "nope",
      );
    });

    it("answers Connect and gRPC-Web over h2c", async () => {
      for (const protocol of ["connect", "grpc-web"] as const) {
        const client = createClient(EchoService, sessions.transport(protocol, guest.url));
        const answer = await client.echo({ message: protocol }, { headers: auth });
        assert.equal(answer.message, protocol);
        const numbers: number[] = [];
        for await (const { number } of client.count({ count: 3 }, { headers: auth })) {
          numbers.push(number);
        }
        assert.deepEqual(numbers, [1, 2, 3], protocol);
      }
    });

    it("answers Connect and gRPC-Web over HTTP/1.1", async () => {
      const json = await fetch(new URL("/echo.v1.EchoService/Echo", guest.url), {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ message: "http/1.1" }),
      });
      assert.equal(json.status, 200);
      assert.deepEqual(await json.json(), { message: "http/1.1" });
      const connect = createClient(
        EchoService,
        createFetchTransport({ baseUrl: guest.url.href, useBinaryFormat: true }),
      );
      const numbers: number[] = [];
      for await (const { number } of connect.count({ count: 3 }, { headers: auth })) {
        numbers.push(number);
      }
      assert.deepEqual(numbers, [1, 2, 3]);
      const grpcWeb = createClient(
        EchoService,
        createGrpcWebTransport({ baseUrl: guest.url.href, httpVersion: "1.1" }),
      );
      assert.equal((await grpcWeb.echo({ message: "web" }, { headers: auth })).message, "web");
      if (kind.http1Grpc === "refused") {
        // gRPC needs HTTP/2 (its trailers): over HTTP/1.1 it is refused with a clear status.
        const grpc = await fetch(new URL("/echo.v1.EchoService/Echo", guest.url), {
          method: "POST",
          headers: { ...auth, "content-type": "application/grpc" },
          body: new Uint8Array(5),
        });
        assert.equal(grpc.headers.get("grpc-status"), String(Code.Unimplemented));
        assert.match(decodeURIComponent(grpc.headers.get("grpc-message") ?? ""), /HTTP\/2/);
        await grpc.body?.cancel();
      }
    });

    it("serves an extra handler over HTTP/1.1 and HTTP/2", async () => {
      const viaH1 = await fetch(new URL("/hello", guest.url), { method: "POST", body: "h1" });
      assert.equal(viaH1.status, 200);
      assert.equal(viaH1.headers.get("x-handler"), "hello");
      assert.equal(await viaH1.text(), "hello POST h1");
      const viaH2 = await h2Request(guest.url, { ":method": "POST", ":path": "/hello" }, "h2");
      assert.equal(viaH2.status, 200);
      assert.equal(viaH2.headers["x-handler"], "hello");
      assert.equal(viaH2.text, "hello POST h2");
      const missing = await h2Request(guest.url, { ":method": "GET", ":path": "/nothing" });
      assert.equal(missing.status, 404);
    });

    it("answers reflection and health", async () => {
      const reflection = new ReflectionClient(sessions.transport("grpc", guest.url));
      // Reflection is behind the token like any other service.
      await assert.rejects(
        reflection.listServices(),
        (error: ConnectError) => ConnectError.from(error).code === Code.Unauthenticated,
      );
      const withToken = sessions.transport("grpc", guest.url, { headers: auth });
      const services = await new ReflectionClient(withToken).listServices();
      for (
        const name of [
          "echo.v1.EchoService",
          "grpc.health.v1.Health",
          "grpc.reflection.v1.ServerReflection",
        ]
      ) assert.ok(services.includes(name), `${name} in ${services}`);
      // Health needs no token, over gRPC and over HTTP/1.1.
      const health = createClient(Health, sessions.transport("grpc", guest.url));
      const status = await health.check({ service: "echo.v1.EchoService" });
      assert.equal(status.status, HealthCheckResponse_ServingStatus.SERVING);
      const viaH1 = createClient(Health, createFetchTransport({ baseUrl: guest.url.href }));
      assert.equal(
        (await viaH1.check({ service: "" })).status,
        HealthCheckResponse_ServingStatus.SERVING,
      );
    });

    it("refuses calls without the token, over HTTP/2 and HTTP/1.1", async () => {
      const grpc = createClient(EchoService, sessions.transport("grpc", guest.url));
      await assert.rejects(
        grpc.echo({ message: "x" }),
        (error: ConnectError) => error.code === Code.Unauthenticated,
      );
      await assert.rejects(
        grpc.echo({ message: "x" }, { headers: { authorization: "Bearer wrong" } }),
        (error: ConnectError) => error.code === Code.Unauthenticated,
      );
      const h1 = await fetch(new URL("/echo.v1.EchoService/Echo", guest.url), {
        method: "POST",
        headers: { "content-type": "application/proto" },
        body: toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "x" })),
      });
      assert.equal(h1.status, 401);
      assert.equal(((await h1.json()) as { code: string }).code, "unauthenticated");
    });

    it("sends an HTTP/1 request line to HTTP/1.1 even when its first byte came alone", async () => {
      const socket = await openSocket(guest.url, "P");
      try {
        let answer = "";
        socket.setEncoding("utf8").on("data", (text: string) => (answer += text));
        // Apart, so that the first bytes the server reads are "P" alone (which the
        // preface starts with too).
        await new Promise((resolve) => setTimeout(resolve, 100));
        socket.write("OST /hello HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nh1");
        assert.ok(await waitUntil(() => answer.includes("hello POST h1"), 5_000), answer);
        assert.match(answer, /^HTTP\/1\.1 200/);
      } finally {
        socket.destroy();
      }
    });

    it("answers a first line that is neither the preface nor HTTP/1 as HTTP/2 does", async () => {
      const socket = connect(Number(guest.url.port), guest.url.hostname);
      socket.on("error", () => {});
      const chunks: Buffer[] = [];
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      const closed = new Promise((resolve) => socket.once("close", resolve));
      try {
        await new Promise((resolve) => socket.once("connect", resolve));
        socket.write("INVALID CONNECTION PREFACE\r\n\r\n");
        await closed;
        const bytes = Buffer.concat(chunks);
        // Not an HTTP/1.1 400: HTTP/2 frames, the last a GOAWAY with PROTOCOL_ERROR.
        assert.doesNotMatch(bytes.toString("latin1"), /^HTTP\/1/);
        const goaways: number[] = [];
        for (let at = 0; at + 9 <= bytes.length;) {
          const length = bytes.readUIntBE(at, 3);
          if (bytes[at + 3] === 0x7 && at + 17 <= bytes.length) {
            goaways.push(bytes.readUInt32BE(at + 13));
          }
          at += 9 + length;
        }
        // node:http2 says INTERNAL_ERROR; RFC 9113 (3.4) asks for PROTOCOL_ERROR (Bun's says both).
        const expected = kind.engine ? [0x1] : onBun ? [0x1, 0x2] : [0x2];
        assert.deepEqual(goaways, expected, `GOAWAY codes in ${bytes.toString("hex")}`);
      } finally {
        socket.destroy();
      }
    });
  });

  describe(`${kind.name}'s header timeout`, () => {
    it("closes a half preface and a half HTTP/1.1 head after the timeout, serving others meanwhile", async () => {
      await using guest = await startGuest(kind.command(), {
        ...kind.env,
        TEST_HEADER_TIMEOUT_MS: "1000",
      });
      const sessions = new Sessions();
      const sockets: Socket[] = [];
      try {
        const since = Date.now();
        const halfPreface = await openSocket(guest.url, "PRI * HTTP/2.0\r\n");
        const halfHead = await openSocket(guest.url, "POST / HTTP/1.1\r\n");
        sockets.push(halfPreface, halfHead);
        const closes = [
          closedWithin(halfPreface, since, 10_000),
          closedWithin(halfHead, since, 10_000),
        ];
        // A keep-alive HTTP/1.1 connection whose first request is whole stays open.
        const keptAlive = await openSocket(
          guest.url,
          "GET /hello HTTP/1.1\r\nhost: x\r\n\r\n",
        );
        sockets.push(keptAlive);
        let answers = "";
        keptAlive.setEncoding("utf8").on("data", (text: string) => (answers += text));
        assert.ok(await waitUntil(() => answers.includes("hello GET"), 5_000), answers);
        // Others are served meanwhile, on both paths.
        const grpc = createClient(EchoService, sessions.transport("grpc", guest.url));
        assert.equal((await grpc.echo({ message: "still here" })).message, "still here");
        const h1 = await fetch(new URL("/hello", guest.url));
        assert.equal(await h1.text(), "hello GET ");
        const [preface, head] = await Promise.all(closes);
        assert.ok(preface >= 900, `half preface closed after ${preface} ms`);
        assert.ok(head >= 900, `half head closed after ${head} ms`);
        // Well past the timeout, the whole-headed connection still answers.
        await new Promise((resolve) => setTimeout(resolve, 1_200 - (Date.now() - since)));
        assert.equal(keptAlive.destroyed, false, "the kept-alive connection was closed");
        answers = "";
        keptAlive.write("GET /hello HTTP/1.1\r\nhost: x\r\n\r\n");
        assert.ok(await waitUntil(() => answers.includes("hello GET"), 5_000), answers);
      } finally {
        for (const socket of sockets) socket.destroy();
        sessions.abort();
      }
    });

    it("closes a keep-alive HTTP/1.1 connection whose second head stalls", {
      skip: !kind.laterHeadTimeout && "Deno.serve has no header timeout",
    }, async () => {
      await using guest = await startGuest(kind.command(), {
        ...kind.env,
        TEST_HEADER_TIMEOUT_MS: "1000",
      });
      const socket = await openSocket(guest.url, "GET /hello HTTP/1.1\r\nhost: x\r\n\r\n");
      try {
        let answers = "";
        socket.setEncoding("utf8").on("data", (text: string) => (answers += text));
        assert.ok(await waitUntil(() => answers.includes("hello GET"), 5_000), answers);
        const since = Date.now();
        // A byte at a time, well within any idle timeout, never the whole head.
        const drip = setInterval(() => socket.write("x"), 200);
        try {
          socket.write("GET /hello HTTP/1.1\r\nhost: x\r\nx-slow: ");
          const after = await closedWithin(socket, since, 10_000);
          assert.ok(after >= 900, `closed after ${after} ms`);
        } finally {
          clearInterval(drip);
        }
      } finally {
        socket.destroy();
      }
    });
  });

  describe(`${kind.name}'s shutdown`, () => {
    it("lets streaming calls in flight (HTTP/2 and HTTP/1.1) finish on SIGTERM, then exits 0", async () => {
      await using guest = await startGuest(kind.command(), { ...kind.env, TEST_GRACE_MS: "10000" });
      const sessions = new Sessions();
      try {
        const grpc = createClient(EchoService, sessions.transport("grpc", guest.url));
        const h1 = createClient(
          EchoService,
          createFetchTransport({ baseUrl: guest.url.href, useBinaryFormat: true }),
        );
        const seen = { grpc: [] as number[], h1: [] as number[] };
        const read = async (client: typeof grpc, into: number[]) => {
          for await (const { number } of client.count({ count: 5, intervalMs: 200 })) {
            into.push(number);
          }
        };
        const calls = [read(grpc, seen.grpc), read(h1, seen.h1)];
        // Observed at once: if an assertion below fails, the calls' rejection on abort must
        // not be what the runner reports.
        for (const call of calls) call.catch(() => {});
        assert.ok(await waitUntil(() => seen.grpc.length > 0 && seen.h1.length > 0, 5_000));
        // Not child.kill(): Deno's node:child_process then reports the signal, not the code.
        process.kill(guest.child.pid!, "SIGTERM");
        // The port closes at once: a new connection is refused while the calls go on.
        assert.ok(
          await waitUntil(() => guest.stderrLines.some((l) => l.includes("stopping")), 5_000),
        );
        // The "stopping" line comes just before the listener closes: a connection made in
        // between is accepted, so try until one is refused (while the calls still run).
        const tryConnect = () =>
          new Promise<boolean>((resolve) => {
            const socket = connect(Number(guest.url.port), guest.url.hostname);
            socket.once("error", () => resolve(true));
            socket.once("connect", () => (socket.destroy(), resolve(false)));
          });
        let refused = false;
        for (const until = Date.now() + 2_000; !refused && Date.now() < until;) {
          refused = await tryConnect();
        }
        assert.ok(refused, "new connections were still accepted 2 s after SIGTERM");
        assert.ok(seen.grpc.length < 5 && seen.h1.length < 5, "the calls ended before the port");
        await Promise.all(calls);
        assert.deepEqual(seen, { grpc: [1, 2, 3, 4, 5], h1: [1, 2, 3, 4, 5] });
        const { code } = await guest.exited;
        assert.equal(code, 0, guest.stderrLines.join("\n"));
      } finally {
        sessions.abort();
      }
    });
  });

  describe(`${kind.name} on a unix socket`, () => {
    it("answers gRPC and HTTP/1.1 over it and leaves nothing behind", async () => {
      using dir = tempDir();
      const path = join(dir.path, "engine.sock");
      await using guest = await startGuest(
        kind.command(["--allow-read", "--allow-write"]),
        { ...kind.env, FTL_BIND: `unix://${path}` },
      );
      const sessions = new Sessions();
      try {
        const grpc = createClient(
          EchoService,
          sessions.transport("grpc", new URL("http://localhost"), { socketPath: path }),
        );
        assert.equal((await grpc.echo({ message: "unix" })).message, "unix");
        const text = await new Promise<string>((resolve, reject) => {
          const request = http.request(
            { socketPath: path, path: "/hello", method: "POST", headers: { host: "localhost" } },
            (response) => {
              let body = "";
              response.setEncoding("utf8").on("data", (s: string) => (body += s));
              response.once("end", () => resolve(body));
            },
          );
          request.once("error", reject);
          request.end("over unix");
        });
        assert.equal(text, "hello POST over unix");
        sessions.abort();
        // Not child.kill(): Deno's node:child_process then reports the signal, not the code.
        process.kill(guest.child.pid!, "SIGTERM");
        const exit = await guest.exited;
        assert.equal(exit.code, 0, `${JSON.stringify(exit)} ${guest.stderrLines.join("\n")}`);
        assert.deepEqual(readdirSync(dir.path), [], "left behind");
        assert.equal(existsSync(path), false);
      } finally {
        sessions.abort();
      }
    });
  });
}
