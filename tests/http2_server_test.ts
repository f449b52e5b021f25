/**
 * The HTTP/2 engine's server role (createH2Server) over real sockets: a node:net
 * listener whose sockets are wrapped with socketStream, and on the other side the
 * host's H2Client, the engine's own client role, or raw frames where the wire itself
 * is the point.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type {
  UniversalHandlerFn,
  UniversalServerRequest,
  UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import { H2Client } from "../internal/http2/client.ts";
import { Connection } from "../internal/http2/connection.ts";
import {
  CANCEL,
  encodeFrame,
  encodeSettings,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FRAME_DATA,
  FRAME_GOAWAY,
  FRAME_HEADERS,
  FRAME_RST_STREAM,
  FRAME_SETTINGS,
  INTERNAL_ERROR,
  PREFACE,
  readUint32,
} from "../internal/http2/frames.ts";
import { HpackDecoder } from "../internal/http2/hpack.ts";
import { encodeHeaderBlock } from "../internal/http2/hpack_encoder.ts";
import {
  createH2Server,
  type H2Server,
  type H2ServerOptions,
} from "../internal/http2/server_universal.ts";
import { socketStream } from "../internal/runtime/node_socket.ts";
import { wholeBody } from "../internal/runtime/lean_contract.ts";
import { createPluginHandler } from "../internal/router.ts";
import { EchoRequestSchema, EchoResponseSchema, EchoService } from "../gen/echo/v1/echo_pb.ts";
import { echoImplementation } from "../examples/echo/echo.ts";
import { memoryLogger } from "./_helpers.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** A server on a loopback port; disposing closes it and every socket. */
interface Fixture extends AsyncDisposable {
  port: number;
  server: H2Server;
  errors: unknown[];
  /** serve() of each accepted connection. */
  served: Promise<void>[];
}

async function startServer(
  handler: UniversalHandlerFn,
  options: Partial<H2ServerOptions> = {},
  tap?: (written: Uint8Array) => void,
): Promise<Fixture> {
  const errors: unknown[] = [];
  const server = createH2Server({
    handler,
    onError: (error) => errors.push(error),
    headerTimeoutMs: 10_000,
    ...options,
  });
  const sockets = new Set<Socket>();
  const served: Promise<void>[] = [];
  const listener: Server = createServer((socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const stream = socketStream(socket);
    if (tap) {
      const write = stream.write.bind(stream);
      stream.write = (bytes) => (tap(bytes.slice()), write(bytes));
    }
    served.push(server.serve(stream, new Uint8Array(0)));
  });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const { port } = listener.address() as { port: number };
  return {
    port,
    server,
    errors,
    served,
    async [Symbol.asyncDispose]() {
      server.close();
      for (const socket of sockets) socket.destroy();
      await Promise.all(served);
      await new Promise((resolve) => listener.close(resolve));
    },
  };
}

/** A node:net connection to `port` as a byte stream. */
async function dial(port: number): Promise<Socket> {
  const socket = connect({ port, host: "127.0.0.1", noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve).once("error", reject);
  });
  return socket;
}

/** The engine's client role on a new connection. */
async function engineClient(
  port: number,
  options: { initialWindowSize?: number; connectionWindowSize?: number } = {},
): Promise<Connection> {
  return new Connection(socketStream(await dial(port)), { role: "client", ...options });
}

const requestHead = (path: string, extra: string[] = []): string[] => [
  ":method",
  "POST",
  ":scheme",
  "http",
  ":authority",
  "127.0.0.1",
  ":path",
  path,
  ...extra,
];

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (data: Uint8Array): string => new TextDecoder().decode(data);

/** A promise and its resolver. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

async function* chunksOf(...parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield part;
}

/**
 * A client that writes raw frames and reads back every frame, for what only the wire
 * shows (GOAWAY's last stream id, a stream the server never answers).
 */
class RawClient {
  readonly frames: { type: number; flags: number; id: number; payload: Uint8Array }[] = [];
  readonly #socket: Socket;
  #buffer = new Uint8Array(0);
  #wake?: () => void;
  closed = false;

  constructor(
    socket: Socket,
    settings: [number, number][] = [],
    onFrame?: (frame: { type: number; id: number; payload: Uint8Array }) => void,
  ) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      const joined = new Uint8Array(this.#buffer.length + chunk.length);
      joined.set(this.#buffer);
      joined.set(chunk, this.#buffer.length);
      let at = 0;
      while (joined.length - at >= 9) {
        const length = (joined[at] << 16) | (joined[at + 1] << 8) | joined[at + 2];
        if (joined.length - at < 9 + length) break;
        const frame = {
          type: joined[at + 3],
          flags: joined[at + 4],
          id: readUint32(joined, at + 5) & 0x7fffffff,
          payload: joined.slice(at + 9, at + 9 + length),
        };
        this.frames.push(frame);
        onFrame?.(frame);
        at += 9 + length;
      }
      this.#buffer = joined.subarray(at);
      this.#wake?.();
    });
    socket.on("close", () => {
      this.closed = true;
      this.#wake?.();
    });
    socket.on("error", () => {});
    socket.write(concat(PREFACE, encodeFrame(FRAME_SETTINGS, 0, 0, encodeSettings(settings))));
  }

  write(frame: Uint8Array): void {
    this.#socket.write(frame);
  }

  /** Opens stream `id` with a POST to `path`, ending it unless told otherwise. */
  request(id: number, path: string, endStream = true): void {
    const block = encodeHeaderBlock(pairs(requestHead(path)));
    this.write(
      encodeFrame(FRAME_HEADERS, FLAG_END_HEADERS | (endStream ? FLAG_END_STREAM : 0), id, block),
    );
  }

  /** Waits until `condition` holds (checked on every read) or the socket closes. */
  async until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (this.closed) throw new Error(`closed before ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.#wake = () => (clearTimeout(timer), resolve());
      });
    }
  }

  async untilClosed(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("the server did not close the connection");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.#wake = () => (clearTimeout(timer), resolve());
      });
    }
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

/** The frames in one write (the server writes whole frames). */
function framesIn(bytes: Uint8Array): { type: number; id: number }[] {
  const frames: { type: number; id: number }[] = [];
  for (let at = 0; at + 9 <= bytes.length;) {
    const length = (bytes[at] << 16) | (bytes[at + 1] << 8) | bytes[at + 2];
    frames.push({ type: bytes[at + 3], id: readUint32(bytes, at + 5) & 0x7fffffff });
    at += 9 + length;
  }
  return frames;
}

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

describe("the HTTP/2 engine's server (createH2Server)", () => {
  it("answers unary gRPC calls with HTTP trailers, and Connect ones, through the plugin handler", async () => {
    const shutdown = new AbortController();
    const handler = createPluginHandler({
      services: [[EchoService, echoImplementation("hi")]],
      logger: memoryLogger().logger,
      readMaxBytes: 4 * MiB,
      shutdownSignal: shutdown.signal,
      trailers: true,
    });
    await using fixture = await startServer(handler);
    const client = new H2Client({
      authority: `127.0.0.1:${fixture.port}`,
      maxResponseBytes: MiB,
      connect: async () => socketStream(await dial(fixture.port)),
    });
    try {
      const message = toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "x" }));
      const envelope = new Uint8Array(5 + message.length);
      new DataView(envelope.buffer).setUint32(1, message.length);
      envelope.set(message, 5);
      const grpc = await client.post(
        "/echo.v1.EchoService/Echo",
        { "content-type": "application/grpc", te: "trailers", "x-echo": "meta" },
        envelope,
        AbortSignal.timeout(5_000),
      );
      assert.equal(grpc.status, 200);
      assert.equal(grpc.trailer?.get("grpc-status"), "0");
      assert.equal(grpc.trailer?.get("x-echo-trailer"), "meta");
      assert.equal(grpc.header.get("x-echo"), "meta");
      assert.equal(fromBinary(EchoResponseSchema, grpc.body.subarray(5)).message, "hi x");

      const connect = await client.post(
        "/echo.v1.EchoService/Echo",
        { "content-type": "application/proto", "connect-protocol-version": "1" },
        message,
        AbortSignal.timeout(5_000),
      );
      assert.equal(connect.status, 200);
      assert.equal(fromBinary(EchoResponseSchema, connect.body).message, "hi x");

      const missing = await client.post(
        "/echo.v1.EchoService/Nope",
        { "content-type": "application/grpc", te: "trailers" },
        envelope,
        AbortSignal.timeout(5_000),
      );
      assert.equal(missing.trailer?.get("grpc-status") ?? missing.header.get("grpc-status"), "12");
    } finally {
      client.close();
      shutdown.abort();
    }
    assert.deepEqual(fixture.errors, []);
  });

  it("sends a small unary answer (HEADERS, DATA, trailers) in one socket write", async () => {
    const shutdown = new AbortController();
    const handler = createPluginHandler({
      services: [[EchoService, echoImplementation("")]],
      logger: memoryLogger().logger,
      readMaxBytes: 4 * MiB,
      shutdownSignal: shutdown.signal,
      trailers: true,
    });
    const writes: Uint8Array[] = [];
    await using fixture = await startServer(handler, {}, (written) => writes.push(written));
    const client = await engineClient(fixture.port);
    try {
      await client.ping(); // SETTINGS both ways are done with
      writes.length = 0;
      const grpc = ["content-type", "application/grpc", "te", "trailers"];
      const stream = client.openStream(requestHead("/echo.v1.EchoService/Ping", grpc), false);
      stream.write(new Uint8Array(5)); // an empty message in its envelope
      stream.end();
      assert.equal((await stream.head()).status, 200);
      assert.equal((await stream.readAll(KiB)).length, 5);
      assert.equal(stream.trailers?.get("grpc-status"), "0");
      const carrying = writes.map((written) => framesIn(written).filter((f) => f.id === stream.id));
      const withFrames = carrying.filter((frames) => frames.length > 0);
      assert.equal(withFrames.length, 1, `the answer took ${withFrames.length} writes`);
      assert.deepEqual(withFrames[0].map((f) => f.type), [
        FRAME_HEADERS,
        FRAME_DATA,
        FRAME_HEADERS,
      ]);
    } finally {
      client.close();
      shutdown.abort();
    }
  });

  it("streams 10 MiB each way through 64 KiB windows, with backpressure both ways", async () => {
    const total = 10 * MiB;
    const chunk = 16 * KiB;
    const gate = deferred();
    let yielded = 0;
    let bodyClosed = false;
    // Echoes the request body, once the test opens the gate.
    const handler: UniversalHandlerFn = (request: UniversalServerRequest) => {
      const body = request.body as AsyncIterable<Uint8Array>;
      return Promise.resolve(
        {
          status: 200,
          header: new Headers({ "content-type": "application/octet-stream" }),
          body: (async function* () {
            try {
              yield new Uint8Array(0);
              await gate.promise;
              for await (const part of body) {
                yielded += part.length;
                yield part;
              }
            } finally {
              bodyClosed = true;
            }
          })(),
          trailer: new Headers({ "x-total": "done" }),
        } satisfies UniversalServerResponse,
      );
    };
    await using fixture = await startServer(handler, {
      initialWindowSize: 65_535,
      connectionWindowSize: 65_535,
    });
    const client = await engineClient(fixture.port, {
      initialWindowSize: 65_535,
      connectionWindowSize: 65_535,
    });
    try {
      const stream = client.openStream(requestHead("/echo"), false);
      const pattern = (at: number) => (at * 7 + 3) & 0xff;
      let accepted = 0;
      let blocked = deferred();
      const writer = (async () => {
        for (let at = 0; at < total; at += chunk) {
          const part = new Uint8Array(chunk).map((_, i) => pattern(at + i));
          accepted += part.length;
          if (!stream.write(part)) {
            blocked.resolve();
            await stream.whenWritable();
          }
        }
        stream.end();
      })();
      const head = await stream.head();
      assert.equal(head.status, 200);

      // The handler reads nothing yet: the client's writes stop at the window plus its
      // own queue, nowhere near 10 MiB.
      await blocked.promise;
      await client.ping();
      await client.ping();
      const acceptedWhileHeld = accepted;
      assert.ok(acceptedWhileHeld <= 256 * KiB, `${acceptedWhileHeld} bytes taken while held`);

      // The handler echoes, but the client does not read its answer: the echo stalls too.
      blocked = deferred();
      gate.resolve();
      await blocked.promise;
      await client.ping();
      await client.ping();
      const echoedWhileUnread = yielded;
      assert.ok(echoedWhileUnread <= 512 * KiB, `${echoedWhileUnread} bytes echoed while unread`);

      // Now read it all: every byte back, in order, then the trailers.
      let received = 0;
      for await (const part of stream) {
        for (let i = 0; i < part.length; i++) {
          if (part[i] !== pattern(received + i)) {
            assert.fail(`byte ${received + i} differs`);
          }
        }
        received += part.length;
      }
      await writer;
      assert.equal(received, total);
      assert.equal(stream.trailers?.get("x-total"), "done");
      assert.ok(bodyClosed);
      console.log(
        `10 MiB each way through 64 KiB windows: ${(acceptedWhileHeld / KiB).toFixed(0)} KiB ` +
          `taken while the handler held, ${
            (echoedWhileUnread / KiB).toFixed(0)
          } KiB echoed while unread`,
      );
    } finally {
      client.close();
    }
  });

  it("gives padding back to the windows: padded DATA well past a 64 KiB window all arrives", async () => {
    const handler: UniversalHandlerFn = async (request) => {
      let length = 0;
      for await (const part of request.body as AsyncIterable<Uint8Array>) length += part.length;
      return { status: 200, body: chunksOf(bytes(String(length))) };
    };
    await using fixture = await startServer(handler, {
      initialWindowSize: 65_535,
      connectionWindowSize: 65_535,
    });
    const raw = new RawClient(await dial(fixture.port));
    try {
      raw.request(1, "/padded", false);
      // Each frame: pad length byte, 100 data bytes, 200 bytes of padding; 301 of window.
      const frameSize = 1 + 100 + 200;
      const frames = 1_000;
      const payload = new Uint8Array(frameSize);
      payload[0] = 200;
      payload.fill(0x61, 1, 101);
      let connection = 65_535;
      let stream = 65_535;
      let seen = 0;
      for (let sent = 0; sent < frames;) {
        for (; seen < raw.frames.length; seen++) {
          const frame = raw.frames[seen];
          if (frame.type !== 0x8) continue;
          if (frame.id === 0) connection += readUint32(frame.payload, 0);
          else if (frame.id === 1) stream += readUint32(frame.payload, 0);
        }
        if (Math.min(connection, stream) < frameSize) {
          const before = raw.frames.length;
          await raw.until(() => raw.frames.length > before, "a WINDOW_UPDATE");
          continue;
        }
        const last = sent === frames - 1;
        raw.write(encodeFrame(FRAME_DATA, 0x8 | (last ? FLAG_END_STREAM : 0), 1, payload));
        connection -= frameSize;
        stream -= frameSize;
        sent++;
      }
      await raw.until(
        () => raw.frames.some((f) => f.id === 1 && f.type === FRAME_DATA),
        "the answer",
      );
      const body = raw.frames.find((f) => f.id === 1 && f.type === FRAME_DATA)!;
      assert.equal(text(body.payload), String(100 * frames));
      assert.ok(!raw.frames.some((f) => f.type === FRAME_GOAWAY || f.type === FRAME_RST_STREAM));
    } finally {
      raw.destroy();
    }
  });

  it("shares a connection window that opens a little at a time between the streams waiting on it", async () => {
    const size = 256 * KiB;
    const handler: UniversalHandlerFn = () =>
      Promise.resolve({
        status: 200,
        body: {
          [wholeBody]: new Uint8Array(size),
          [Symbol.asyncIterator]: () => chunksOf()[Symbol.asyncIterator](),
        } as never,
      });
    await using fixture = await startServer(handler);
    const order: number[] = [];
    // Stream windows of 1 MiB, the connection's left at 64 KiB and given back per frame.
    const raw: RawClient = new RawClient(await dial(fixture.port), [[0x4, MiB]], (frame) => {
      if (frame.type !== FRAME_DATA || frame.payload.length === 0) return;
      order.push(frame.id);
      raw.write(
        encodeFrame(
          0x8,
          0,
          0,
          Uint8Array.of(0, 0, frame.payload.length >> 8, frame.payload.length & 0xff),
        ),
      );
    });
    try {
      raw.request(1, "/one");
      raw.request(3, "/two");
      await raw.until(
        () =>
          [1, 3].every((id) => raw.frames.some((f) => f.id === id && f.flags & FLAG_END_STREAM)),
        "both answers",
      );
      // Stream 3 got data well before stream 1 had all of its answer.
      const lastOfOne = order.lastIndexOf(1);
      const firstOfThree = order.indexOf(3);
      assert.ok(
        firstOfThree < lastOfOne / 2,
        `stream 3 waited: ${firstOfThree} of ${order.length}`,
      );
    } finally {
      raw.destroy();
    }
  });

  it("shuts down gracefully: GOAWAY with the last stream, the in-flight one finishes, new ones are refused", async () => {
    const started = deferred();
    const release = deferred();
    let calls = 0;
    const handler: UniversalHandlerFn = async () => {
      calls++;
      started.resolve();
      await release.promise;
      return { status: 200, body: chunksOf(bytes("finished\n")) };
    };
    await using fixture = await startServer(handler);
    const client = new RawClient(await dial(fixture.port));
    try {
      client.request(1, "/slow");
      await started.promise;
      const stopped = fixture.server.shutdown();
      await client.until(() => client.frames.some((f) => f.type === FRAME_GOAWAY), "GOAWAY");
      const goaway = client.frames.find((f) => f.type === FRAME_GOAWAY)!;
      assert.equal(readUint32(goaway.payload, 0), 1, "GOAWAY's last stream id");
      assert.equal(readUint32(goaway.payload, 4), 0, "GOAWAY's code (NO_ERROR)");
      // A stream opened after the GOAWAY is ignored (RFC 9113 section 6.8).
      client.request(3, "/slow");
      release.resolve();
      await client.until(
        () => client.frames.some((f) => f.id === 1 && f.flags & FLAG_END_STREAM),
        "the in-flight answer",
      );
      const decoder = new HpackDecoder();
      const head = client.frames.find((f) => f.type === FRAME_HEADERS && f.id === 1)!;
      assert.equal(decoder.decode(head.payload)[0][1], "200");
      const body = concat(
        ...client.frames.filter((f) => f.type === FRAME_DATA && f.id === 1).map((f) => f.payload),
      );
      assert.equal(text(body), "finished\n");
      await client.untilClosed();
      await stopped;
      assert.equal(calls, 1, "the stream opened after GOAWAY reached the handler");
      assert.ok(!client.frames.some((f) => f.id === 3), "stream 3 was answered");
      assert.equal(fixture.server.connections, 0);
    } finally {
      client.destroy();
    }
  });

  it("aborts the handler's signal when the client resets its stream", async () => {
    const started = deferred();
    const aborted = deferred<unknown>();
    const handler: UniversalHandlerFn = (request) => {
      started.resolve();
      return new Promise((_, reject) => {
        request.signal.addEventListener("abort", () => {
          aborted.resolve(request.signal.reason);
          reject(request.signal.reason);
        }, { once: true });
      });
    };
    await using fixture = await startServer(handler);
    const client = await engineClient(fixture.port);
    try {
      const stream = client.openStream(requestHead("/wait"), true);
      await started.promise;
      stream.reset(CANCEL);
      const reason = await aborted.promise;
      assert.ok(reason instanceof ConnectError, `reason: ${reason}`);
      assert.equal(reason.code, Code.Canceled);
      // The connection serves on.
      const next = client.openStream(requestHead("/wait"), true);
      next.reset(CANCEL);
      assert.ok(await client.ping() >= 0);
    } finally {
      client.close();
    }
  });

  it("answers 500 when a handler throws, and resets a stream that fails mid-answer", async () => {
    const handler: UniversalHandlerFn = (request) => {
      if (request.url.endsWith("/throw")) return Promise.reject(new Error("handler failed"));
      return Promise.resolve({
        status: 200,
        body: (async function* () {
          yield bytes("first part\n");
          throw new Error("body failed");
        })(),
      });
    };
    await using fixture = await startServer(handler);
    const client = await engineClient(fixture.port);
    try {
      const thrown = client.openStream(requestHead("/throw"), true);
      const head = await thrown.head();
      assert.equal(head.status, 500);
      assert.equal(text(await thrown.readAll(KiB)), "internal error\n");

      const midway = client.openStream(requestHead("/midway"), true);
      assert.equal((await midway.head()).status, 200);
      const failure = await midway.readAll(KiB).then(() => undefined, (error) => error);
      assert.equal(failure?.code, INTERNAL_ERROR, `midway: ${failure}`);
      assert.deepEqual(
        fixture.errors.map((error) => (error as Error).message),
        ["handler failed", "body failed"],
      );
    } finally {
      client.close();
    }
  });

  it("refuses streams past maxConcurrentStreams, answers the others, and counts connections", async () => {
    const release = deferred();
    const handler: UniversalHandlerFn = async () => {
      await release.promise;
      return { status: 204 };
    };
    await using fixture = await startServer(handler, { maxConcurrentStreams: 2 });
    const raw = new RawClient(await dial(fixture.port));
    try {
      await raw.until(() => raw.frames.some((f) => f.type === FRAME_SETTINGS), "SETTINGS");
      const settings = raw.frames.find((f) => f.type === FRAME_SETTINGS && !(f.flags & 1))!;
      assert.deepEqual(settings.payload.subarray(0, 6), encodeSettings([[3, 2]]));
      raw.request(1, "/a");
      raw.request(3, "/b");
      raw.request(5, "/c");
      await raw.until(
        () => raw.frames.some((f) => f.type === FRAME_RST_STREAM && f.id === 5),
        "REFUSED_STREAM",
      );
      const reset = raw.frames.find((f) => f.type === FRAME_RST_STREAM && f.id === 5)!;
      assert.equal(readUint32(reset.payload, 0), 7);
      assert.equal(fixture.server.connections, 1);
      release.resolve();
      await raw.until(
        () =>
          [1, 3].every((id) => raw.frames.some((f) => f.id === id && f.flags & FLAG_END_STREAM)),
        "both answers",
      );
    } finally {
      raw.destroy();
    }
  });
});
