// The HTTP/2 engine's server role under attack: each defence of the shared contract
// (docs/RELIABILITY.md) meets a raw-frame client that does what the defence is about,
// while a well-behaved client on another connection must still get its answer. Limits
// are set small through createH2Server's options so that every attack is over in
// seconds; the figures each test prints are the ones docs/RELIABILITY.md quotes.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import process from "node:process";
import { setImmediate } from "node:timers";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type {
  UniversalHandlerFn,
  UniversalServerRequest,
  UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import {
  createH2Server,
  type H2Server,
  type H2ServerOptions,
} from "../../internal/http2/server_universal.ts";
import { socketStream } from "../../internal/runtime/node_socket.ts";
import { createPluginHandler } from "../../internal/router.ts";
import { EchoRequestSchema, EchoResponseSchema, EchoService } from "../../gen/echo/v1/echo_pb.ts";
import { echoImplementation } from "../../examples/echo/echo.ts";
import { memoryLogger } from "../_helpers.ts";
import {
  concat,
  continuationFrame,
  dataFrame,
  encodeFrame,
  ErrorCode,
  errorName,
  FrameType,
  grpcFields,
  grpcMessage,
  headerBlock,
  headersFrame,
  hpackInteger,
  indexedField,
  indexingField,
  literalField,
  pingFrame,
  postFields,
  RawConnection,
  rstStreamFrame,
  Setting,
  settingsFrame,
  windowUpdateFrame,
  WireProbe,
} from "../_h2_raw.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const READ_MAX_BYTES = 4 * MiB;
/** The chunk /test/big answers with. */
const BIG_CHUNK = 16 * KiB;

/** A count that can be waited on. */
class Counter {
  value = 0;
  #waiters: { target: number; resolve: () => void }[] = [];

  bump(): void {
    this.value++;
    this.#waiters = this.#waiters.filter((w) => w.target > this.value || (w.resolve(), false));
  }

  /** Resolves once the count reached `target`; rejects after `timeoutMs` naming `what`. */
  reached(target: number, timeoutMs: number, what: string): Promise<void> {
    if (this.value >= target) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${what}: ${this.value} of ${target} after ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiters.push({ target, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }
}

/** What the test routes count, for the assertions. */
class HandlerState {
  /** /test/hold handlers that started, and those whose signal aborted. */
  readonly started = new Counter();
  readonly aborted = new Counter();
  /** /test/big: chunks its body gave the server, and whether the body was closed. */
  readonly pulled = new Counter();
  bigClosed = false;
  #release!: () => void;
  /** Settles when the test lets every /test/hold handler answer. */
  released: Promise<void> = new Promise((resolve) => (this.#release = resolve));

  release(): void {
    this.#release();
  }
}

const plainText = { "content-type": "text/plain" };

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/**
 * The guest's real handler (echo service, 4 MiB read limit, gRPC with trailers) plus two
 * routes of the tests' own: /test/hold answers once released (or counts its signal's
 * abort), /test/big answers 1 MiB in 16 KiB chunks and counts how many were taken.
 */
function testHandler(plugin: UniversalHandlerFn, state: HandlerState): UniversalHandlerFn {
  return async (request: UniversalServerRequest): Promise<UniversalServerResponse> => {
    const path = new URL(request.url).pathname;
    if (path === "/test/hold") {
      state.started.bump();
      const aborted = await new Promise<boolean>((resolve) => {
        if (request.signal.aborted) return resolve(true);
        request.signal.addEventListener("abort", () => resolve(true), { once: true });
        state.released.then(() => resolve(false));
      });
      if (aborted) state.aborted.bump();
      return { status: 200, header: new Headers(plainText), body: once(bytes("held\n")) };
    }
    if (path === "/test/big") {
      return { status: 200, header: new Headers(plainText), body: bigBody(state) };
    }
    return await plugin(request);
  };
}

async function* bigBody(state: HandlerState): AsyncIterable<Uint8Array> {
  try {
    for (let i = 0; i < MiB / BIG_CHUNK; i++) {
      state.pulled.bump();
      yield new Uint8Array(BIG_CHUNK).fill(0x62);
    }
  } finally {
    state.bigClosed = true;
  }
}

/** One accepted connection, as the server sees it. */
interface Accepted {
  /** Settles when serve() resolved for it. */
  done: Promise<void>;
  /** Whether serve() resolved. */
  closed: boolean;
  /** What the server read and wrote on it. */
  probe: WireProbe;
}

/** A server built with createH2Server on a node:net listener. */
interface Fixture extends AsyncDisposable {
  port: number;
  server: H2Server;
  state: HandlerState;
  /** What onError was given. */
  errors: unknown[];
  /** The server's side of `client`'s connection. */
  accepted(client: RawConnection): Accepted;
}

async function startServer(options: Partial<H2ServerOptions> = {}): Promise<Fixture> {
  const state = new HandlerState();
  const shutdown = new AbortController();
  const plugin = createPluginHandler({
    services: [[EchoService, echoImplementation("")]],
    logger: memoryLogger().logger,
    readMaxBytes: READ_MAX_BYTES,
    shutdownSignal: shutdown.signal,
    trailers: true,
  });
  const errors: unknown[] = [];
  const server = createH2Server({
    handler: testHandler(plugin, state),
    onError: (error) => errors.push(error),
    headerTimeoutMs: 10_000,
    ...options,
  });
  const byPort = new Map<number, Accepted>();
  const sockets = new Set<Socket>();
  const listener = createServer((socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const probe = new WireProbe(socketStream(socket));
    const accepted: Accepted = { closed: false, done: Promise.resolve(), probe };
    accepted.done = server.serve(probe, new Uint8Array(0)).then(() => {
      accepted.closed = true;
    });
    byPort.set(socket.remotePort!, accepted);
  });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const { port } = listener.address() as { port: number };
  return {
    port,
    server,
    state,
    errors,
    accepted(client) {
      const accepted = byPort.get(client.localPort);
      assert.ok(accepted, "the server never accepted this connection");
      return accepted;
    },
    async [Symbol.asyncDispose]() {
      state.release();
      server.close();
      shutdown.abort();
      for (const socket of sockets) socket.destroy();
      const all = Promise.all([...byPort.values()].map((a) => a.done));
      const settled = await Promise.race([all.then(() => true), delay(5_000).then(() => false)]);
      await new Promise((resolve) => listener.close(resolve));
      assert.ok(settled, "serve() had not resolved 5 s after close()");
      assert.equal(server.connections, 0, "connections left after close()");
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Lets the event loop read sockets. An attack loop awaits this between writes: a
 * write the kernel takes at once completes without leaving the microtask queue, and
 * the loop would otherwise starve the server (and its own reads) until the kernel's
 * buffers fill.
 */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Waits, a turn of the event loop at a time, until `condition` holds; false after `ms`. */
async function eventually(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) return false;
    await nextTurn();
  }
  return true;
}

/** What `promise` settled to, or `undefined` once `ms` passed first. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((
    resolve,
  ) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/**
 * A well-behaved client on a new connection: one gRPC unary call of the echo service,
 * which must come back 200 with its message and grpc-status 0 in the trailers. Resolves
 * with how long it took.
 */
async function assertServed(port: number, what: string): Promise<number> {
  const started = performance.now();
  const client = await RawConnection.open(port);
  try {
    client.handshake();
    const message = `served ${what}`;
    const request = toBinary(EchoRequestSchema, create(EchoRequestSchema, { message }));
    const id = client.request(
      "/echo.v1.EchoService/Echo",
      grpcFields,
      grpcMessage(request),
    );
    const answer = await client.answer(id, 10_000);
    assert.equal(answer.status, 200, `${what}: status`);
    assert.equal(answer.reset, undefined, `${what}: reset ${errorName(answer.reset)}`);
    const status = answer.trailer.find(([name]) => name === "grpc-status")?.[1];
    assert.equal(status, "0", `${what}: grpc-status in the trailers`);
    assert.equal(fromBinary(EchoResponseSchema, answer.bytes.subarray(5)).message, message);
  } finally {
    client.destroy();
  }
  return performance.now() - started;
}

/** When the offender got its GOAWAY and when its socket closed, in ms from the attack. */
interface Fate {
  goaway: number;
  closed: number;
}

/** "GOAWAY at 305 ms, closed at 507 ms". */
function fateText(fate: Fate): string {
  return `GOAWAY at ${fate.goaway.toFixed(0)} ms, closed at ${fate.closed.toFixed(0)} ms`;
}

/**
 * The offender's fate: GOAWAY with `code`, then its socket closed (by the server: the
 * client never closes it), within `timeoutMs`.
 */
async function assertGoaway(
  client: RawConnection,
  code: number,
  timeoutMs: number,
  since: number,
  what: string,
): Promise<Fate> {
  const closed = await client.untilClosed(timeoutMs);
  const seen = client.goaways.map((g) => `${errorName(g.code)} ${JSON.stringify(g.debug)}`);
  assert.ok(closed, `${what}: still open after ${timeoutMs} ms (GOAWAY seen: ${seen})`);
  assert.ok(
    client.goaways.length > 0,
    `${what}: closed without a GOAWAY` +
      (client.socketError ? ` (${client.socketError.message})` : ""),
  );
  assert.equal(errorName(client.goawayCode), errorName(code), `${what}: GOAWAY code (${seen})`);
  return { goaway: client.goawayAt! - since, closed: client.closedAt! - since };
}

/**
 * The memory JavaScript holds: the V8 heap plus external memory (where the bytes of
 * every Uint8Array live), in both runtimes.
 */
function memoryNow(): number {
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

/** {@linkcode memoryNow} after a collection, when the runtime exposes gc (--expose-gc). */
function memorySettled(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return memoryNow();
}

const mib = (n: number): string => (n / MiB).toFixed(1);

/** The fields of a request to a test route, as literals. */
const holdBlock = headerBlock(postFields("/test/hold"));

describe("the HTTP/2 server's defences (createH2Server)", () => {
  describe("header timeout", () => {
    const timeout = 300;

    it("closes a connection that sent half the preface, with GOAWAY NO_ERROR", async () => {
      await using fixture = await startServer({ headerTimeoutMs: timeout });
      const client = await RawConnection.open(fixture.port);
      const since = performance.now();
      client.write(bytes("PRI * HTTP/2.0\r\n"));
      await assertServed(fixture.port, "while half a preface waits");
      const fate = await assertGoaway(client, ErrorCode.NO_ERROR, timeout + 5_000, since, "half");
      assert.ok(fate.goaway >= timeout * 0.8, `${fateText(fate)}: before the timeout`);
      await fixture.accepted(client).done;
      await assertServed(fixture.port, "after");
      console.log(`half a preface (header timeout ${timeout} ms): NO_ERROR, ${fateText(fate)}`);
    });

    it("closes a connection whose HEADERS never get their CONTINUATION", async () => {
      await using fixture = await startServer({ headerTimeoutMs: timeout });
      const client = await RawConnection.open(fixture.port);
      client.handshake();
      await client.ready();
      const since = performance.now();
      client.write(headersFrame(1, holdBlock, { endStream: true, endHeaders: false }));
      await assertServed(fixture.port, "while a header block waits");
      const fate = await assertGoaway(client, ErrorCode.NO_ERROR, timeout + 5_000, since, "open");
      assert.ok(fate.goaway >= timeout * 0.8, `${fateText(fate)}: before the timeout`);
      assert.equal(fixture.state.started.value, 0, "the unfinished request reached its handler");
      console.log(
        `HEADERS without END_HEADERS (timeout ${timeout} ms): NO_ERROR, ${fateText(fate)}`,
      );
    });

    it("times a later header block too, from its first frame", async () => {
      await using fixture = await startServer({ headerTimeoutMs: timeout });
      const client = await RawConnection.open(fixture.port);
      client.handshake();
      const first = client.request(
        "/echo.v1.EchoService/Ping",
        grpcFields,
        grpcMessage(new Uint8Array()),
      );
      assert.equal((await client.answer(first)).status, 200);
      // Longer than the timeout with no header block open: not a header timeout.
      await delay(timeout * 2);
      assert.ok(!client.isClosed, "closed while no header block was open");
      const since = performance.now();
      client.write(headersFrame(3, holdBlock, { endStream: true, endHeaders: false }));
      const fate = await assertGoaway(client, ErrorCode.NO_ERROR, timeout + 5_000, since, "later");
      assert.ok(fate.goaway >= timeout * 0.8, `${fateText(fate)}: before the timeout`);
      await assertServed(fixture.port, "after");
    });
  });

  it("says GOAWAY NO_ERROR to a connection idle for idleTimeoutMs, never while a stream is open", async () => {
    const idle = 400;
    await using fixture = await startServer({ idleTimeoutMs: idle });
    const client = await RawConnection.open(fixture.port);
    client.handshake();
    const held = client.request("/test/hold");
    await fixture.state.started.reached(1, 5_000, "the held handler");
    assert.ok(!(await client.untilClosed(idle * 3)), "closed while a stream was open");
    assert.equal(client.goaways.length, 0, "GOAWAY while a stream was open");
    fixture.state.release();
    assert.equal((await client.answer(held)).status, 200);
    const since = performance.now();
    const fate = await assertGoaway(client, ErrorCode.NO_ERROR, idle + 5_000, since, "idle");
    assert.ok(fate.goaway >= idle * 0.8, `${fateText(fate)}: before the idle timeout`);
    await assertServed(fixture.port, "after");
    console.log(`idle ${idle} ms after the last stream: NO_ERROR, ${fateText(fate)}`);
  });

  it("refuses streams beyond maxConcurrentStreams with REFUSED_STREAM and answers the rest", async () => {
    await using fixture = await startServer({ maxConcurrentStreams: 4 });
    const client = await RawConnection.open(fixture.port);
    client.handshake();
    // Sent at once, before the client could have read the server's SETTINGS.
    const ids = Array.from({ length: 6 }, () => client.request("/test/hold"));
    await fixture.state.started.reached(4, 5_000, "held handlers");
    for (const id of ids.slice(4)) {
      const answer = await client.answer(id);
      assert.equal(errorName(answer.reset), "REFUSED_STREAM", `stream ${id}`);
    }
    await assertServed(fixture.port, "while 4 streams are held");
    assert.equal(fixture.state.started.value, 4, "a refused stream reached its handler");
    assert.equal(client.serverSettings.get(Setting.MAX_CONCURRENT_STREAMS), 4);
    fixture.state.release();
    for (const id of ids.slice(0, 4)) {
      const answer = await client.answer(id);
      assert.equal(answer.status, 200, `stream ${id}`);
      assert.equal(new TextDecoder().decode(answer.bytes), "held\n");
    }
    // The connection lives: another call on it.
    const next = client.request(
      "/echo.v1.EchoService/Ping",
      grpcFields,
      grpcMessage(new Uint8Array()),
    );
    assert.equal((await client.answer(next)).status, 200);
    assert.equal(client.goaways.length, 0);
    client.destroy();
  });

  it("answers a header list over maxHeaderListSize with 431 or a reset, and the connection lives", async () => {
    const max = 8 * KiB;
    await using fixture = await startServer({ maxHeaderListSize: max });
    const client = await RawConnection.open(fixture.port);
    client.handshake();
    const id = client.request(
      "/echo.v1.EchoService/Ping",
      [...grpcFields, ["x-big", "a".repeat(10 * KiB)]],
      grpcMessage(new Uint8Array()),
    );
    const answer = await client.answer(id);
    assert.ok(
      answer.status === 431 || answer.reset !== undefined,
      `status ${answer.status}, reset ${errorName(answer.reset)}`,
    );
    assert.equal(client.serverSettings.get(Setting.MAX_HEADER_LIST_SIZE), max);
    const next = client.request(
      "/echo.v1.EchoService/Ping",
      grpcFields,
      grpcMessage(new Uint8Array()),
    );
    const fine = await client.answer(next);
    assert.equal(fine.status, 200);
    assert.equal(fine.get("grpc-status"), "0");
    assert.equal(client.goaways.length, 0);
    client.destroy();
    await assertServed(fixture.port, "after");
    console.log(
      `header list of 10 KiB over an 8 KiB limit: ${
        answer.status === 431 ? "431" : `RST_STREAM ${errorName(answer.reset)}`
      }, the connection served on`,
    );
  });

  it("stops a rapid reset: GOAWAY ENHANCE_YOUR_CALM, every reset handler's signal aborted", async () => {
    const maxConcurrentStreams = 100;
    const budget = Math.max(1000, 2 * maxConcurrentStreams);
    await using fixture = await startServer({ maxConcurrentStreams });
    const client = await RawConnection.open(fixture.port);
    client.handshake();
    const since = performance.now();
    const during = (async () => {
      await fixture.state.started.reached(1, 5_000, "the first reset stream's handler");
      return assertServed(fixture.port, "during a rapid reset");
    })();
    let opened = 0;
    // Batches of 50 open-then-reset pairs, up to three times the budget.
    while (!client.isClosed && client.goaways.length === 0 && opened < 3 * budget) {
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 50; i++) {
        const id = client.nextStreamId;
        client.nextStreamId += 2;
        frames.push(headersFrame(id, holdBlock, { endStream: true }));
        frames.push(rstStreamFrame(id, ErrorCode.CANCEL));
        opened++;
      }
      if (!(await client.flush(concat(...frames)))) break;
      await nextTurn();
    }
    const fate = await assertGoaway(client, ErrorCode.ENHANCE_YOUR_CALM, 5_000, since, "reset");
    await during;
    const { started, aborted } = fixture.state;
    await aborted.reached(started.value, 5_000, "aborted handlers (of those started)");
    assert.ok(started.value > 0, "no handler started");
    const lastStreamId = client.goaways[0].lastStreamId;
    assert.ok(
      lastStreamId >= 2 * budget - 1,
      `GOAWAY after ${(lastStreamId + 1) / 2} streams, within the budget of ${budget}`,
    );
    await fixture.accepted(client).done;
    await assertServed(fixture.port, "after");
    console.log(
      `rapid reset: ${opened} streams opened and reset, GOAWAY ENHANCE_YOUR_CALM at stream ` +
        `${lastStreamId}, ${fateText(fate)}; handlers ${started.value} started, ` +
        `${aborted.value} aborted`,
    );
  });

  describe("CONTINUATION flood", () => {
    it("ends a header block of more than 1000 CONTINUATION frames with ENHANCE_YOUR_CALM", async () => {
      await using fixture = await startServer();
      const client = await RawConnection.open(fixture.port);
      client.handshake();
      await client.ready();
      // A small, valid block (about 1.6 KB), one byte per frame, never END_HEADERS.
      const block = concat(holdBlock, literalField("x-pad", "a".repeat(1500)));
      const since = performance.now();
      const frames = [
        headersFrame(1, block.subarray(0, 1), { endStream: true, endHeaders: false }),
      ];
      for (let i = 1; i < block.length; i++) {
        frames.push(continuationFrame(1, block.subarray(i, i + 1)));
      }
      client.write(concat(...frames));
      const during = assertServed(fixture.port, "during a CONTINUATION flood");
      const fate = await assertGoaway(client, ErrorCode.ENHANCE_YOUR_CALM, 5_000, since, "flood");
      await during;
      assert.equal(fixture.state.started.value, 0);
      await assertServed(fixture.port, "after");
      console.log(
        `CONTINUATION flood (${block.length - 1} one-byte frames): GOAWAY ENHANCE_YOUR_CALM, ` +
          `${fateText(fate)}`,
      );
    });

    it("ends a header block whose encoded size passes 256 KiB with ENHANCE_YOUR_CALM", async () => {
      await using fixture = await startServer({ maxHeaderListSize: 8 * KiB });
      const client = await RawConnection.open(fixture.port);
      client.handshake();
      await client.ready();
      // One 4 MiB header value, 16 KiB a frame; the bound is max(4 x 8 KiB, 256 KiB).
      const value = "v".repeat(4 * MiB);
      const block = concat(
        holdBlock,
        Uint8Array.from([0x00, ...hpackInteger(5, 7), ...bytes("x-big")]),
        Uint8Array.from(hpackInteger(value.length, 7)),
        bytes(value),
      );
      const memoryBefore = memorySettled();
      const since = performance.now();
      let sent = 0;
      let during: Promise<number> | undefined;
      for (let at = 0; at < block.length && client.goaways.length === 0; at += 16 * KiB) {
        const fragment = block.subarray(at, at + 16 * KiB);
        const frame = at === 0
          ? headersFrame(1, fragment, { endStream: true, endHeaders: false })
          : continuationFrame(1, fragment);
        if (!(await client.flush(frame))) break;
        sent += fragment.length;
        if (sent >= 128 * KiB) during ??= assertServed(fixture.port, "during a huge header block");
        await nextTurn();
      }
      const fate = await assertGoaway(client, ErrorCode.ENHANCE_YOUR_CALM, 5_000, since, "huge");
      await during;
      const growth = memorySettled() - memoryBefore;
      // The server stops reading at the GOAWAY; what the client wrote after it waits in
      // kernel buffers. What counts is what the server read.
      const { probe } = fixture.accepted(client);
      assert.ok(sent < block.length, "the whole block went out before the GOAWAY came");
      assert.ok(probe.bytesRead < 1 * MiB, `the server read ${mib(probe.bytesRead)} MiB`);
      assert.equal(fixture.state.started.value, 0);
      await assertServed(fixture.port, "after");
      console.log(
        `header block of 4 MiB in 16 KiB frames: ENHANCE_YOUR_CALM once the server had ` +
          `read ${(probe.bytesRead / KiB).toFixed(0)} KiB, ${fateText(fate)}; memory +${
            mib(growth)
          } MiB`,
      );
    });
  });

  it("stops decoding an HPACK bomb at 4 x maxHeaderListSize: GOAWAY ENHANCE_YOUR_CALM", async () => {
    const max = 8 * KiB;
    await using fixture = await startServer({ maxHeaderListSize: max });
    const client = await RawConnection.open(fixture.port);
    client.handshake();
    await client.ready();
    // A 4000-byte value enters the dynamic table once (index 62), then 60 000 one-byte
    // references to it: 63 KB on the wire, 242 MB decoded.
    const references = 60_000;
    const block = concat(
      holdBlock,
      indexingField("x-bomb", "b".repeat(4000)),
      new Uint8Array(references).fill(indexedField(62)[0]),
    );
    const frames: Uint8Array[] = [];
    for (let at = 0; at < block.length; at += 16 * KiB) {
      const fragment = block.subarray(at, at + 16 * KiB);
      const last = at + 16 * KiB >= block.length;
      frames.push(
        at === 0
          ? headersFrame(1, fragment, { endStream: true, endHeaders: last })
          : continuationFrame(1, fragment, last),
      );
    }
    const memoryBefore = memorySettled();
    const since = performance.now();
    client.write(concat(...frames));
    const during = assertServed(fixture.port, "during an HPACK bomb");
    const fate = await assertGoaway(client, ErrorCode.ENHANCE_YOUR_CALM, 5_000, since, "bomb");
    await during;
    const growth = memorySettled() - memoryBefore;
    assert.equal(fixture.state.started.value, 0, "the bomb's request reached a handler");
    // Decoding on to the end would hold 60 000 fields (and join 242 MB of values).
    assert.ok(growth < 64 * MiB, `memory grew ${mib(growth)} MiB`);
    await assertServed(fixture.port, "after");
    console.log(
      `HPACK bomb (${(block.length / KiB).toFixed(0)} KiB block, ` +
        `${mib(references * (4000 + 6 + 32))} MiB decoded if it went on): ` +
        `ENHANCE_YOUR_CALM, ${fateText(fate)}; memory +${mib(growth)} MiB`,
    );
  });

  describe("floods of frames the server must answer", () => {
    const ping = pingFrame(new Uint8Array(8).fill(7));
    const settings = settingsFrame([]);
    const acks = (client: RawConnection, frame: Uint8Array) =>
      frame === ping ? client.pingAcks : client.settingsAcks;

    /**
     * Handshakes, stops reading, then writes `frame` in batches of 1000, each once the
     * server has read the one before (so that only the server's answers pile up: in the
     * kernel's buffers, then in the server), until the server stops reading it: the
     * sign that it gave up (its GOAWAY waits behind the answers nobody reads). Then
     * reads again, within the server's linger: the client must find the GOAWAY behind
     * the answers the server had let out, and be closed.
     */
    async function flood(frame: Uint8Array, what: string): Promise<void> {
      await using fixture = await startServer();
      const client = await RawConnection.open(fixture.port);
      client.handshake();
      await client.ready();
      client.pause();
      const { probe, done } = fixture.accepted(client);
      const batch = concat(...Array.from({ length: 1_000 }, () => frame));
      const memoryBefore = memorySettled();
      let memoryPeak = memoryBefore;
      const since = performance.now();
      let sent = 0;
      let during: Promise<number> | undefined;
      const maxFrames = 3_000_000;
      let target = probe.bytesRead;
      // Between turns of the event loop a server that still serves the connection is
      // waiting on a read, or back to it within a moment (it lets its answers out first
      // once they pile up): one that is not has stopped reading it.
      while ((probe.reading || await eventually(() => probe.reading, 100)) && sent < maxFrames) {
        client.write(batch);
        sent += 1_000;
        target += batch.length;
        await eventually(() => probe.bytesRead >= target || !probe.reading, 5_000);
        if (sent % 10_000 === 0) {
          memoryPeak = Math.max(memoryPeak, memoryNow());
          during ??= assertServed(fixture.port, `during a ${what} flood`);
        }
      }
      const gaveUpAt = performance.now() - since;
      memoryPeak = Math.max(memoryPeak, memoryNow());
      assert.ok(
        !probe.reading,
        `${what} flood: the server read ${mib(probe.bytesRead)} MiB and kept reading`,
      );
      const unwritten = probe.pending;
      client.resume();
      const fate = await assertGoaway(client, ErrorCode.ENHANCE_YOUR_CALM, 10_000, since, what);
      assert.ok(await within(done.then(() => true), 5_000), `${what}: serve() still running`);
      await during;
      const growth = memoryPeak - memoryBefore;
      assert.ok(growth < 96 * MiB, `${what} flood: memory grew ${mib(growth)} MiB`);
      // What the engine handed the socket that the kernel had no room for: its bound
      // (1 MiB or 10 000 frames of answers) plus what was already on its way.
      assert.ok(probe.pendingPeak < 4 * MiB, `${what}: ${mib(probe.pendingPeak)} MiB unwritten`);
      await assertServed(fixture.port, `after a ${what} flood`);
      console.log(
        `${what} flood, client not reading: the server stopped reading after ${sent} frames ` +
          `(${mib(probe.bytesRead)} MiB read, ${mib(probe.bytesWritten)} MiB of answers ` +
          `written, ${(unwritten / KiB).toFixed(0)} KiB of them stuck in its socket, ` +
          `${gaveUpAt.toFixed(0)} ms); the client then read ${acks(client, frame)} ACKs and ` +
          `ENHANCE_YOUR_CALM, ${fateText(fate)}; memory peak +${mib(growth)} MiB`,
      );
    }

    /** The control: the same batches from a client that reads its answers between them. */
    async function paced(frame: Uint8Array, what: string): Promise<void> {
      await using fixture = await startServer();
      const client = await RawConnection.open(fixture.port);
      client.handshake();
      await client.ready();
      const batch = concat(...Array.from({ length: 1_000 }, () => frame));
      const before = acks(client, frame);
      const since = performance.now();
      for (let sent = 1_000; sent <= 50_000; sent += 1_000) {
        client.write(batch);
        const enough = () => acks(client, frame) - before >= sent;
        await client.until(enough, 5_000, `${sent} ${what} ACKs`);
      }
      assert.equal(client.goaways.length, 0);
      client.destroy();
      console.log(
        `${what} paced, client reading: 50 000 answered in ${
          (performance.now() - since).toFixed(0)
        } ms, no GOAWAY`,
      );
    }

    it("PING from a client that never reads: GOAWAY ENHANCE_YOUR_CALM, output bounded", async () => {
      await flood(ping, "PING");
    });

    it("SETTINGS from a client that never reads: GOAWAY ENHANCE_YOUR_CALM, output bounded", async () => {
      await flood(settings, "SETTINGS");
    });

    it("answers 50 000 PINGs and SETTINGS from a client that reads between batches", async () => {
      await paced(ping, "PING");
      await paced(settings, "SETTINGS");
    });
  });

  it("takes a SETTINGS frame of more than 64 entries as abuse: GOAWAY ENHANCE_YOUR_CALM", async () => {
    await using fixture = await startServer();
    const client = await RawConnection.open(fixture.port);
    client.handshake();
    const since = performance.now();
    client.write(settingsFrame(Array.from({ length: 65 }, () => [Setting.ENABLE_PUSH, 0])));
    await assertGoaway(client, ErrorCode.ENHANCE_YOUR_CALM, 5_000, since, "65 entries");
    await assertServed(fixture.port, "after");
  });

  it("gives up on a peer that never opens its window: ENHANCE_YOUR_CALM after stallTimeoutMs", async () => {
    const stall = 500;
    await using fixture = await startServer({ stallTimeoutMs: stall });
    const client = await RawConnection.open(fixture.port, { windowUpdates: false });
    client.handshake([[Setting.INITIAL_WINDOW_SIZE, 0]]);
    const memoryBefore = memorySettled();
    const since = performance.now();
    const id = client.request("/test/big");
    const during = assertServed(fixture.port, "while a stream is stalled");
    const fate = await assertGoaway(
      client,
      ErrorCode.ENHANCE_YOUR_CALM,
      stall + 5_000,
      since,
      "stall",
    );
    await during;
    const growth = memorySettled() - memoryBefore;
    const stream = client.streams.get(id)!;
    assert.equal(stream.bodyBytes, 0, "DATA sent into a window of 0");
    assert.ok(fate.goaway >= stall * 0.8, `${fateText(fate)}: before the stall timeout`);
    const taken = fixture.state.pulled.value * BIG_CHUNK;
    // About 64 KiB queued per stream; 1 MiB is what an unbounded queue would take.
    assert.ok(taken <= 256 * KiB, `the server took ${taken / KiB} KiB of the handler's answer`);
    await fixture.accepted(client).done;
    assert.ok(fixture.state.bigClosed, "the handler's body was not closed");
    await assertServed(fixture.port, "after");
    console.log(
      `window never opened: ENHANCE_YOUR_CALM, ${fateText(fate)} ` +
        `(stallTimeoutMs ${stall}); the handler got ${taken / KiB} KiB of its 1 MiB answer out; ` +
        `memory +${mib(growth)} MiB`,
    );
  });

  for (const protocol of ["grpc", "connect"] as const) {
    it(`refuses a 100 MiB ${protocol} request over the 4 MiB read limit, memory bounded`, async () => {
      await using fixture = await startServer();
      const client = await RawConnection.open(fixture.port);
      client.handshake();
      const total = 100 * MiB;
      const fields: [string, string][] = protocol === "grpc"
        ? [...grpcFields]
        : [["content-type", "application/proto"], ["content-length", String(total)]];
      const memoryBefore = memorySettled();
      let memoryPeak = memoryBefore;
      const sampler = setInterval(
        () => (memoryPeak = Math.max(memoryPeak, memoryNow())),
        20,
      );
      const since = performance.now();
      let sent = 0;
      let answer;
      let during: Promise<number> | undefined;
      try {
        const id = client.open("/echo.v1.EchoService/Echo", fields);
        during = assertServed(fixture.port, `during a 100 MiB ${protocol} request`);
        const chunk = new Uint8Array(16 * KiB).fill(0x78);
        if (protocol === "grpc") {
          // The envelope declares the whole 100 MiB message.
          sent += await client.sendBody(id, grpcMessage(new Uint8Array(0), total - 5), 5, false);
          sent += await client.sendBody(id, chunk, total - 5);
        } else {
          sent += await client.sendBody(id, chunk, total);
        }
        answer = await client.answer(id, 10_000);
      } finally {
        clearInterval(sampler);
      }
      const took = performance.now() - since;
      memoryPeak = Math.max(memoryPeak, memoryNow());
      await during;
      const growth = memoryPeak - memoryBefore;
      const { probe } = fixture.accepted(client);
      if (protocol === "grpc") {
        assert.equal(answer.status, 200);
        assert.equal(answer.get("grpc-status"), "8", `grpc-message: ${answer.get("grpc-message")}`);
      } else {
        assert.equal(answer.status, 429);
        assert.match(new TextDecoder().decode(answer.bytes), /resource_exhausted/);
      }
      assert.ok(sent < 100 * MiB, "the whole 100 MiB went out: nothing stopped the upload");
      // The limit and the receive windows bound what the server takes in.
      assert.ok(probe.bytesRead < 16 * MiB, `the server read ${mib(probe.bytesRead)} MiB`);
      assert.ok(growth < 64 * MiB, `memory grew ${mib(growth)} MiB`);
      await assertServed(fixture.port, "after");
      console.log(
        `100 MiB ${protocol} request, 4 MiB limit: RESOURCE_EXHAUSTED after ${mib(sent)} MiB ` +
          `sent (${mib(probe.bytesRead)} MiB read by the server), ${took.toFixed(0)} ms; stream ${
            answer.reset === undefined ? "ended" : `reset ${errorName(answer.reset)}`
          }; memory peak +${mib(growth)} MiB`,
      );
    });
  }

  it("ends the connection on protocol violations with the RFC 9113 code", async () => {
    await using fixture = await startServer();
    const empty = grpcMessage(new Uint8Array());
    const cases: [string, number, (client: RawConnection) => Promise<void> | void][] = [
      ["DATA on stream 0", ErrorCode.PROTOCOL_ERROR, (c) => void c.write(dataFrame(0, bytes("x")))],
      [
        "HEADERS on an even stream",
        ErrorCode.PROTOCOL_ERROR,
        (c) => void c.write(headersFrame(2, holdBlock)),
      ],
      [
        "a PING of 9 bytes",
        ErrorCode.FRAME_SIZE_ERROR,
        (c) => void c.write(encodeFrame(FrameType.PING, 0, 0, new Uint8Array(9))),
      ],
      ["a frame over SETTINGS_MAX_FRAME_SIZE", ErrorCode.FRAME_SIZE_ERROR, (c) => {
        const id = c.open("/test/hold");
        c.write(dataFrame(id, new Uint8Array(16 * KiB + 1)));
      }],
      [
        "a header block that does not decode",
        ErrorCode.COMPRESSION_ERROR,
        (c) => void c.write(headersFrame(1, Uint8Array.from([0x80]))),
      ],
      [
        "a connection window over 2^31-1",
        ErrorCode.FLOW_CONTROL_ERROR,
        (c) => void c.write(windowUpdateFrame(0, 0x7fffffff)),
      ],
      ["DATA on a stream that ended", ErrorCode.STREAM_CLOSED, async (c) => {
        const id = c.request("/echo.v1.EchoService/Ping", grpcFields, empty);
        await c.answer(id);
        c.write(dataFrame(id, bytes("late")));
      }],
    ];
    const failures: string[] = [];
    const seen: string[] = [];
    for (const [what, code, attack] of cases) {
      const client = await RawConnection.open(fixture.port);
      try {
        client.handshake();
        await attack(client);
        const reacted = () =>
          client.goaways.length > 0 ||
          [...client.streams.values()].some((s) => s.reset !== undefined);
        await client.until(reacted, 5_000, `an answer to ${what}`).catch(() => {});
        const closed = client.goaways.length > 0 && await client.untilClosed(5_000);
        const reset = [...client.streams.values()].find((s) => s.reset !== undefined)?.reset;
        const got = client.goaways.length > 0
          ? `GOAWAY ${errorName(client.goawayCode)}`
          : reset !== undefined
          ? `RST_STREAM ${errorName(reset)}`
          : "nothing";
        // STREAM_CLOSED may be a stream error (RFC 9113, 5.1): a reset is fine there.
        const ok = code === ErrorCode.STREAM_CLOSED && got === "RST_STREAM STREAM_CLOSED" ||
          got === `GOAWAY ${errorName(code)}` && closed;
        seen.push(`${what}: ${got}`);
        if (!ok) {
          failures.push(
            `${what}: want GOAWAY ${errorName(code)}, got ${got}${closed ? "" : " (still open)"}`,
          );
        }
      } finally {
        client.destroy();
      }
    }
    await assertServed(fixture.port, "after the violations");
    assert.deepEqual(failures, []);
    console.log(`protocol violations: ${seen.join("; ")}`);
  });
});
