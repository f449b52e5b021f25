/**
 * The HTTP/2 engine's client role beyond whole-body POSTs (tests/h2_client_test.ts has
 * those): streams both ways with backpressure against the engine's own server, and the
 * bounds that keep a call from hanging on a server that stopped answering PINGs,
 * advertises MAX_CONCURRENT_STREAMS=0 or never opens its window.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import type {
  UniversalClientFn,
  UniversalHandlerFn,
  UniversalServerRequest,
} from "@connectrpc/connect/protocol";
import { H2Client, type H2ClientOptions, H2Pool } from "../internal/http2/client.ts";
import { createUniversalClient } from "../internal/http2/client_universal.ts";
import { Http2Error } from "../internal/http2/errors.ts";
import { createH2Server, type H2ServerOptions } from "../internal/http2/server_universal.ts";
import { encodeFrame, encodeSettings } from "../internal/http2/frames.ts";
import { encodeHeaderBlock } from "../internal/http2/hpack_encoder.ts";
import { socketStream } from "../internal/runtime/node_socket.ts";
import type { ByteStream } from "../internal/runtime/types.ts";

const KiB = 1024;

/** A listening node:net server; disposing closes it and every socket it accepted. */
async function listen(
  onSocket: (socket: Socket) => void,
): Promise<{ port: number; accepted: () => number } & AsyncDisposable> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    accepted++;
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    accepted: () => accepted,
    async [Symbol.asyncDispose]() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The engine's server answering with `handler`. */
async function engineServer(
  handler: UniversalHandlerFn,
  options: Partial<H2ServerOptions> = {},
): Promise<{ port: number; errors: unknown[] } & AsyncDisposable> {
  const errors: unknown[] = [];
  const server = createH2Server({
    handler,
    onError: (error) => errors.push(error),
    headerTimeoutMs: 10_000,
    ...options,
  });
  const served: Promise<void>[] = [];
  const listener = await listen((socket) => {
    served.push(server.serve(socketStream(socket), new Uint8Array(0)));
  });
  return {
    port: listener.port,
    errors,
    async [Symbol.asyncDispose]() {
      server.close();
      await listener[Symbol.asyncDispose]();
      await Promise.all(served);
    },
  };
}

/** Options for a client of 127.0.0.1:`port`; `writes` counts its socket writes. */
function clientOptions(
  port: number,
  extra: Partial<H2ClientOptions> = {},
  writes?: { count: number },
): H2ClientOptions {
  return {
    authority: `127.0.0.1:${port}`,
    maxResponseBytes: 1024 * KiB,
    connect: () =>
      new Promise<ByteStream>((resolve, reject) => {
        const socket = connect({ port, host: "127.0.0.1", noDelay: true });
        socket.once("error", reject).once("connect", () => {
          const stream = socketStream(socket);
          if (writes) {
            const write = stream.write.bind(stream);
            stream.write = (bytes) => (writes.count++, write(bytes));
          }
          resolve(stream);
        });
      }),
    ...extra,
  };
}

/** A universal client over a pool of one connection, and its disposal. */
function universal(options: H2ClientOptions): { client: UniversalClientFn } & Disposable {
  const pool = new H2Pool(1, options);
  return { client: createUniversalClient(pool), [Symbol.dispose]: () => pool.close() };
}

async function* chunks(count: number, size: number, produced?: { bytes: number }) {
  for (let i = 0; i < count; i++) {
    const chunk = new Uint8Array(size).fill(i & 0xff);
    if (produced) produced.bytes += size;
    yield chunk;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function bodyOf(request: UniversalServerRequest): AsyncIterable<Uint8Array> {
  return request.body as AsyncIterable<Uint8Array>;
}

/** A promise and its resolver. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe("the engine's client: streams", () => {
  it("reads 10 000 server-streamed messages with a slow consumer, its window holding the server back", async () => {
    const produced = { bytes: 0 };
    const size = 100;
    await using server = await engineServer(() =>
      Promise.resolve({
        status: 200,
        header: new Headers({ "content-type": "application/octet-stream" }),
        body: chunks(10_000, size, produced),
        trailer: new Headers({ "x-count": "10000" }),
      })
    );
    const window = 32 * KiB;
    using http = universal(
      clientOptions(server.port, { streamWindowSize: window, connectionWindowSize: 256 * KiB }),
    );
    const response = await http.client({
      url: `http://127.0.0.1:${server.port}/stream`,
      method: "GET",
      header: new Headers(),
    });
    assert.equal(response.status, 200);
    const it = response.body[Symbol.asyncIterator]();
    let consumed = 0;
    let most = 0;
    let order = 0; // bytes out of order
    for (let result = await it.next(); !result.done; result = await it.next()) {
      const chunk = result.value;
      for (let at = 0; at < chunk.length; at++) {
        if (chunk[at] !== (Math.floor((consumed + at) / size) & 0xff)) order++;
      }
      consumed += chunk.length;
      if (consumed < 64 * KiB && consumed % (8 * KiB) < chunk.length) {
        // Slow at first: the server may only run ahead by our window and its own queue.
        await sleep(20);
        most = Math.max(most, produced.bytes - consumed);
      }
    }
    assert.equal(consumed, 10_000 * size);
    assert.equal(order, 0, "every message in order");
    assert.equal(response.trailer.get("x-count"), "10000");
    // Our window (32 KiB), the server stream's queue (64 KiB) and one frame in flight.
    assert.ok(most <= window + 64 * KiB + 16 * KiB, `ran ahead by ${most} bytes`);
    assert.ok(most >= window / 2, `the window was used (${most})`);
    assert.deepEqual(server.errors, []);
  });

  it("sends a client stream as fast as a slow server reads it (backpressure)", async () => {
    const produced = { bytes: 0 };
    let read = 0;
    let most = 0;
    const serverWindow = 64 * KiB;
    await using server = await engineServer(async (request) => {
      for await (const chunk of bodyOf(request)) {
        read += chunk.length;
        if (read < 512 * KiB) {
          await sleep(2);
          most = Math.max(most, produced.bytes - read);
        }
      }
      return {
        status: 200,
        header: new Headers({ "content-type": "text/plain" }),
        body: (async function* () {
          yield new TextEncoder().encode(String(read));
        })(),
      };
    }, { initialWindowSize: serverWindow, connectionWindowSize: serverWindow });
    using http = universal(clientOptions(server.port));
    const response = await http.client({
      url: `http://127.0.0.1:${server.port}/upload`,
      method: "POST",
      header: new Headers({ "content-type": "application/octet-stream" }),
      body: chunks(256, 4 * KiB, produced),
    });
    let text = "";
    for await (const chunk of response.body) text += new TextDecoder().decode(chunk);
    assert.equal(text, String(256 * 4 * KiB));
    // The server's window, our stream's queue (64 KiB), a chunk being pulled.
    assert.ok(most <= serverWindow + 64 * KiB + 8 * KiB, `ran ahead by ${most} bytes`);
    assert.deepEqual(server.errors, []);
  });

  it("streams both ways at once (bidi): each answer comes before the next message is sent", async () => {
    await using server = await engineServer((request) =>
      Promise.resolve({
        status: 200,
        header: new Headers({ "content-type": "application/octet-stream" }),
        body: (async function* () {
          for await (const chunk of bodyOf(request)) yield chunk.map((b) => b + 1);
        })(),
        trailer: new Headers({ "grpc-status": "0" }),
      })
    );
    using http = universal(clientOptions(server.port));
    const answers: number[] = [];
    const next = deferred<void>();
    let wake = next;
    const requests = (async function* () {
      for (let i = 0; i < 50; i++) {
        yield Uint8Array.of(i);
        await wake.promise; // the answer to `i` came back first
      }
    })();
    const response = await http.client({
      url: `http://127.0.0.1:${server.port}/bidi`,
      method: "POST",
      header: new Headers({ "content-type": "application/octet-stream" }),
      body: requests,
    });
    for await (const chunk of response.body) {
      answers.push(...chunk);
      const current = wake;
      wake = deferred<void>();
      current.resolve();
    }
    assert.deepEqual(answers, Array.from({ length: 50 }, (_, i) => i + 1));
    assert.equal(response.trailer.get("grpc-status"), "0");
  });

  it("keeps a whole answer the server sent before reading the request, and stops sending", async () => {
    const produced = { bytes: 0 };
    await using server = await engineServer(() =>
      Promise.resolve({
        status: 200,
        header: new Headers({ "content-type": "text/plain" }),
        body: (async function* () {
          yield new TextEncoder().encode("early");
        })(),
        trailer: new Headers({ "grpc-status": "9" }),
      })
    );
    using http = universal(clientOptions(server.port));
    const response = await http.client({
      url: `http://127.0.0.1:${server.port}/early`,
      method: "POST",
      header: new Headers(),
      body: chunks(100_000, 1 * KiB, produced),
    });
    let text = "";
    for await (const chunk of response.body) text += new TextDecoder().decode(chunk);
    assert.equal(text, "early");
    assert.equal(response.trailer.get("grpc-status"), "9");
    await sleep(50);
    assert.ok(produced.bytes < 1024 * KiB, `the body kept being pulled: ${produced.bytes}`);
  });

  it("resets the stream when the call's signal aborts, and the handler sees its signal abort", async () => {
    const handlerAborted = deferred<void>();
    await using server = await engineServer((request) => {
      request.signal.addEventListener("abort", () => handlerAborted.resolve());
      return Promise.resolve({
        status: 200,
        header: new Headers({ "content-type": "text/plain" }),
        body: (async function* () {
          yield Uint8Array.of(1);
          await handlerAborted.promise; // nothing more until the client goes
        })(),
      });
    });
    using http = universal(clientOptions(server.port));
    const abort = new AbortController();
    const response = await http.client({
      url: `http://127.0.0.1:${server.port}/forever`,
      method: "GET",
      header: new Headers(),
      signal: abort.signal,
    });
    const it = response.body[Symbol.asyncIterator]();
    assert.deepEqual((await it.next()).value, Uint8Array.of(1));
    const pending = it.next();
    abort.abort(new Error("caller gave up"));
    await assert.rejects(pending, /caller gave up/);
    await handlerAborted.promise;
  });

  it("sends a refused stream again with the body sent so far", async () => {
    let streams = 0;
    await using listener = await listen((socket) => {
      const peer = new RawPeer(socket);
      peer.run(async () => {
        await peer.preface();
        peer.send(4, 0, 0, encodeSettings([]));
        for (;;) {
          const frame = await peer.frame();
          if (!frame) return;
          if (frame.type === 1) {
            streams++;
            if (streams === 1) peer.send(3, 0, frame.id, u32(7)); // REFUSED_STREAM
          } else if (frame.type === 0 && (frame.flags & 1) && streams === 2) {
            peer.send(1, 4, frame.id, encodeHeaderBlock([[":status", "200"]]));
            peer.send(0, 1, frame.id, new TextEncoder().encode("second"));
          }
        }
      });
    });
    using http = universal(clientOptions(listener.port));
    const response = await http.client({
      url: `http://127.0.0.1:${listener.port}/x`,
      method: "POST",
      header: new Headers(),
      body: chunks(3, 10),
    });
    let text = "";
    for await (const chunk of response.body) text += new TextDecoder().decode(chunk);
    assert.equal(text, "second");
    assert.equal(streams, 2);
  });

  it("sends a unary call as one socket write once the connection is up", async () => {
    await using server = await engineServer(async (request) => {
      let length = 0;
      for await (const chunk of bodyOf(request)) length += chunk.length;
      return {
        status: 200,
        header: new Headers({ "content-type": "text/plain" }),
        body: (async function* () {
          yield new TextEncoder().encode(String(length));
        })(),
      };
    });
    const writes = { count: 0 };
    const client = new H2Client(clientOptions(server.port, {}, writes));
    try {
      await client.post("/warm", {}, new Uint8Array(10), undefined);
      await sleep(20); // SETTINGS ACKs and any window updates are out
      const before = writes.count;
      const answer = await client.post(
        "/x",
        { "content-type": "a/b" },
        new Uint8Array(1000),
        undefined,
      );
      assert.equal(new TextDecoder().decode(answer.body), "1000");
      assert.equal(writes.count - before, 1, "HEADERS and DATA in one write");
    } finally {
      client.close();
    }
  });
});

describe("the engine's client: nothing hangs on a stopped or wedged server", () => {
  const quick = { keepaliveIntervalMs: 100, keepaliveTimeoutMs: 200, waitTimeoutMs: 400 };

  it("fails a call UNAVAILABLE when the server stops answering PINGs (reads, never writes)", async () => {
    await using listener = await listen((socket) => {
      // SETTINGS, then silence: the socket is read (so our writes go through) forever.
      socket.write(encodeFrame(4, 0, 0, encodeSettings([])));
      socket.on("data", () => {});
    });
    using http = universal(clientOptions(listener.port, quick));
    const started = Date.now();
    const error = await http.client({
      url: `http://127.0.0.1:${listener.port}/x`,
      method: "POST",
      header: new Headers(),
      body: chunks(1, 10),
    }).catch((e) => e);
    assert.ok(error instanceof ConnectError, String(error));
    assert.equal(error.code, Code.Unavailable);
    assert.match(error.message, /PING/);
    const took = Date.now() - started;
    assert.ok(took >= 200 && took < 3_000, `took ${took} ms`);
    // The whole-body path too.
    const client = new H2Client(clientOptions(listener.port, quick));
    try {
      await assert.rejects(
        client.post("/x", {}, new Uint8Array(1), undefined),
        (e: unknown) => e instanceof Http2Error && e.connection && /PING/.test(e.message),
      );
    } finally {
      client.close();
    }
  });

  it("fails a call UNAVAILABLE when the server advertises MAX_CONCURRENT_STREAMS=0", async () => {
    await using listener = await listen((socket) => {
      const peer = new RawPeer(socket);
      peer.run(async () => {
        await peer.preface();
        peer.send(4, 0, 0, encodeSettings([[3, 0]]));
        await peer.serveControl((frame) => {
          // Streams opened before our SETTINGS came are refused.
          if (frame.type === 1) peer.send(3, 0, frame.id, u32(7));
        });
      });
    });
    const client = new H2Client(clientOptions(listener.port, quick));
    using http = universal(clientOptions(listener.port, quick));
    try {
      const started = Date.now();
      await assert.rejects(
        client.post("/x", {}, new Uint8Array(1), undefined),
        (e: unknown) =>
          e instanceof ConnectError && e.code === Code.Unavailable &&
          /MAX_CONCURRENT_STREAMS/.test(e.message),
      );
      const took = Date.now() - started;
      assert.ok(took >= 400 && took < 3_000, `took ${took} ms`);
      await assert.rejects(
        http.client({
          url: `http://127.0.0.1:${listener.port}/x`,
          method: "GET",
          header: new Headers(),
        }),
        (e: unknown) => e instanceof ConnectError && e.code === Code.Unavailable,
      );
    } finally {
      client.close();
    }
  });

  it("fails a call UNAVAILABLE when the server never opens its window", async () => {
    await using listener = await listen((socket) => {
      const peer = new RawPeer(socket);
      peer.run(async () => {
        await peer.preface();
        peer.send(4, 0, 0, encodeSettings([[4, 0]])); // INITIAL_WINDOW_SIZE 0
        await peer.serveControl(() => {});
      });
    });
    const client = new H2Client(clientOptions(listener.port, quick));
    using http = universal(clientOptions(listener.port, quick));
    try {
      await client.post("/warm", {}, new Uint8Array(0), AbortSignal.timeout(50)).catch(() => {});
      const started = Date.now();
      await assert.rejects(
        client.post("/x", {}, new Uint8Array(100), undefined),
        (e: unknown) =>
          e instanceof ConnectError && e.code === Code.Unavailable && /send window/.test(e.message),
      );
      const took = Date.now() - started;
      assert.ok(took >= 400 && took < 3_000, `took ${took} ms`);
      await assert.rejects(
        http.client({
          url: `http://127.0.0.1:${listener.port}/x`,
          method: "POST",
          header: new Headers(),
          // More than the default window, which holds until the server's SETTINGS come.
          body: chunks(1, 100 * KiB),
        }),
        (e: unknown) => e instanceof ConnectError && e.code === Code.Unavailable,
      );
    } finally {
      client.close();
    }
  });

  it("lets a long, quiet call live while the server answers PINGs", async () => {
    await using server = await engineServer(async () => {
      await sleep(1_200); // three times the wait bound, six keepalive rounds
      return {
        status: 200,
        header: new Headers({ "content-type": "text/plain" }),
        body: (async function* () {
          yield new TextEncoder().encode("patience");
        })(),
      };
    });
    using http = universal(clientOptions(server.port, quick));
    const response = await http.client({
      url: `http://127.0.0.1:${server.port}/slow`,
      method: "GET",
      header: new Headers(),
    });
    let text = "";
    for await (const chunk of response.body) text += new TextDecoder().decode(chunk);
    assert.equal(text, "patience");
  });

  it("closes a connection idle for idleTimeoutMs and connects again for the next call", async () => {
    let connections = 0;
    const closed: Promise<void>[] = [];
    const server = createH2Server({
      handler: () =>
        Promise.resolve({ status: 200, header: new Headers({ "content-type": "text/plain" }) }),
      onError: () => {},
      headerTimeoutMs: 10_000,
    });
    await using listener = await listen((socket) => {
      connections++;
      closed.push(new Promise((resolve) => socket.once("close", () => resolve())));
      server.serve(socketStream(socket), new Uint8Array(0));
    });
    const client = new H2Client(clientOptions(listener.port, { idleTimeoutMs: 100 }));
    try {
      assert.equal((await client.post("/a", {}, new Uint8Array(0), undefined)).status, 200);
      await closed[0];
      assert.equal((await client.post("/b", {}, new Uint8Array(0), undefined)).status, 200);
      assert.equal(connections, 2);
    } finally {
      client.close();
      server.close();
    }
  });
});

describe("the engine's client: keepalive PINGs only a quiet server", () => {
  /**
   * A raw server that answers each stream's HEADERS with a head and keeps it open, and
   * hands every PING (connection number from 1, the frame, the peer) to `onPing`.
   */
  function quietServer(
    onPing: (connection: number, frame: Frame, peer: RawPeer) => void,
    onStream: (connection: number, peer: RawPeer, id: number) => void = () => {},
  ) {
    let connections = 0;
    return listen((socket) => {
      const connection = ++connections;
      const peer = new RawPeer(socket);
      peer.run(async () => {
        await peer.preface();
        peer.send(4, 0, 0, encodeSettings([]));
        for (;;) {
          const frame = await peer.frame();
          if (!frame) return;
          if (frame.type === 4 && !(frame.flags & 1)) peer.send(4, 1, 0, new Uint8Array(0));
          else if (frame.type === 6 && !(frame.flags & 1)) onPing(connection, frame, peer);
          else if (frame.type === 1) {
            peer.send(1, 4, frame.id, encodeHeaderBlock([[":status", "200"]]));
            onStream(connection, peer, frame.id);
          }
        }
      });
    });
  }

  /** Opens a GET on `client`; `reading` drains its body and settles with its error, if any. */
  async function openCall(client: H2Client): Promise<{ reading: Promise<unknown> }> {
    const stream = await client.request({
      method: "GET",
      path: "/events",
      header: {},
      endStream: true,
    });
    await stream.head();
    const reading = (async () => {
      for await (const _ of stream) { /* drained */ }
    })().catch((error) => error);
    return { reading };
  }

  const pingAck = (frame: Frame, peer: RawPeer) => peer.send(6, 1, 0, frame.payload);

  it("sends no PING while the server sends DATA more often than the interval", async () => {
    let pings = 0;
    const timers = new Set<ReturnType<typeof setInterval>>();
    await using listener = await quietServer(
      (_, frame, peer) => (pings++, pingAck(frame, peer)),
      (_, peer, id) => {
        timers.add(setInterval(() => peer.send(0, 0, id, Uint8Array.of(1)), 50));
      },
    );
    // DATA every 50 ms against a 400 ms interval: only an event-loop stall of over 350 ms
    // on a busy machine could let a PING out (a client pinging regardless sends two).
    const client = new H2Client(
      clientOptions(listener.port, { keepaliveIntervalMs: 400, keepaliveTimeoutMs: 1_000 }),
    );
    try {
      const { reading } = await openCall(client);
      await sleep(1_000);
      assert.equal(pings, 0, "no PING while DATA keeps coming");
      client.close();
      await reading;
    } finally {
      for (const timer of timers) clearInterval(timer);
      client.close();
    }
  });

  it("PINGs a quiet stream's server about every interval", async () => {
    const at: number[] = [];
    await using listener = await quietServer((_, frame, peer) => {
      at.push(Date.now());
      pingAck(frame, peer);
    });
    const client = new H2Client(
      clientOptions(listener.port, { keepaliveIntervalMs: 100, keepaliveTimeoutMs: 1_000 }),
    );
    try {
      const { reading } = await openCall(client);
      await sleep(1_000);
      client.close();
      await reading;
    } finally {
      client.close();
    }
    assert.ok(at.length >= 5 && at.length <= 11, `${at.length} PINGs in 1 s`);
    const gaps = at.slice(1).map((t, i) => t - at[i]);
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    assert.ok(gaps.every((gap) => gap >= 90), `gaps ${gaps}`);
    assert.ok(mean < 180, `mean gap ${mean} ms (${gaps})`);
  });

  it('doubles the interval for the next connection after GOAWAY ENHANCE_YOUR_CALM "too_many_pings"', async () => {
    const at = new Map<number, number[]>();
    const streams = new Map<number, number>();
    await using listener = await quietServer(
      (connection, frame, peer) => {
        const times = at.get(connection) ?? [];
        times.push(Date.now());
        at.set(connection, times);
        if (connection === 1 && times.length === 2) {
          const debug = new TextEncoder().encode("too_many_pings");
          const payload = new Uint8Array(8 + debug.length);
          payload.set(u32(streams.get(connection) ?? 0));
          payload.set(u32(0xb), 4); // ENHANCE_YOUR_CALM
          payload.set(debug, 8);
          peer.send(7, 0, 0, payload);
          peer.end();
        } else {
          pingAck(frame, peer);
        }
      },
      (connection, _, id) => streams.set(connection, id),
    );
    const client = new H2Client(
      clientOptions(listener.port, { keepaliveIntervalMs: 100, keepaliveTimeoutMs: 1_000 }),
    );
    try {
      const { reading: first } = await openCall(client);
      assert.ok((await first) instanceof Error, "the call in flight fails");
      assert.equal(client.keepaliveIntervalMs, 200);
      const { reading: second } = await openCall(client);
      await sleep(1_000);
      client.close();
      await second;
    } finally {
      client.close();
    }
    const times = at.get(2) ?? [];
    assert.ok(times.length >= 3 && times.length <= 6, `${times.length} PINGs in 1 s`);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    assert.ok(gaps.every((gap) => gap >= 180 && gap < 400), `gaps ${gaps}`);
  });
});

const u32 = (value: number) => {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value);
  return bytes;
};

interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Uint8Array;
}

/** The server's end of a connection, speaking raw frames. */
class RawPeer {
  readonly #socket: Socket;
  #buffer = new Uint8Array(0);
  #waiter?: () => void;
  #ended = false;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      const joined = new Uint8Array(this.#buffer.length + chunk.length);
      joined.set(this.#buffer);
      joined.set(chunk, this.#buffer.length);
      this.#buffer = joined;
      this.#waiter?.();
    });
    const end = () => ((this.#ended = true), this.#waiter?.());
    socket.on("end", end).on("close", end);
  }

  /** Runs a script; its failure ends the connection. */
  run(script: () => Promise<void>): void {
    script().catch(() => this.#socket.destroy());
  }

  async #bytes(count: number): Promise<Uint8Array | undefined> {
    while (this.#buffer.length < count) {
      if (this.#ended) return undefined;
      await new Promise<void>((resolve) => (this.#waiter = resolve));
      this.#waiter = undefined;
    }
    const bytes = this.#buffer.subarray(0, count);
    this.#buffer = this.#buffer.subarray(count);
    return bytes;
  }

  async preface(): Promise<void> {
    await this.#bytes(24);
  }

  async frame(): Promise<Frame | undefined> {
    const head = await this.#bytes(9);
    if (!head) return undefined;
    const length = (head[0] << 16) | (head[1] << 8) | head[2];
    const payload = (await this.#bytes(length))?.slice();
    if (!payload) return undefined;
    const id = new DataView(head.buffer, head.byteOffset).getUint32(5) & 0x7fffffff;
    return { type: head[3], flags: head[4], id, payload };
  }

  /** ACKs SETTINGS and PINGs until the connection ends; other frames go to `other`. */
  async serveControl(other: (frame: Frame) => void): Promise<void> {
    for (;;) {
      const frame = await this.frame();
      if (!frame) return;
      if (frame.type === 4 && !(frame.flags & 1)) this.send(4, 1, 0, new Uint8Array(0));
      else if (frame.type === 6 && !(frame.flags & 1)) this.send(6, 1, 0, frame.payload);
      else other(frame);
    }
  }

  send(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (!this.#socket.destroyed) this.#socket.write(encodeFrame(type, flags, id, payload));
  }

  /** Ends our side once what was sent is out. */
  end(): void {
    this.#socket.end();
  }
}
