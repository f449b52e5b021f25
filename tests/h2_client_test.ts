/**
 * The host's HTTP/2 client (the engine's client role) against a scripted server that speaks raw frames, so that
 * each protocol rule (flow control, CONTINUATION, padding, GOAWAY, resets, limits) is
 * met exactly when the test says.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { H2Client } from "../internal/http2/client.ts";
import { Http2Error } from "../internal/http2/errors.ts";
import { socketStream } from "../internal/runtime/node_socket.ts";
import { type HeaderField, HpackDecoder } from "../internal/http2/hpack.ts";
import { encodeHeaderBlock } from "../internal/http2/hpack_encoder.ts";

interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Uint8Array;
}

const DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PING = 6, GOAWAY = 7;
const WINDOW_UPDATE = 8, CONTINUATION = 9;

/** The server's end of one connection. */
class Peer {
  readonly decoder = new HpackDecoder();
  readonly #socket: Socket;
  #buffer = new Uint8Array(0);
  #waiter?: () => void;
  #ended = false;
  /** Every WINDOW_UPDATE and SETTINGS the client sent, in order. */
  readonly control: Frame[] = [];

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      const joined = new Uint8Array(this.#buffer.length + chunk.length);
      joined.set(this.#buffer);
      joined.set(chunk, this.#buffer.length);
      this.#buffer = joined;
      this.#waiter?.();
    });
    const end = () => {
      this.#ended = true;
      this.#waiter?.();
    };
    socket.on("end", end).on("close", end).on("error", end);
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
    const bytes = await this.#bytes(24);
    assert.equal(new TextDecoder().decode(bytes), "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  }

  /** The next frame; undefined once the client has closed. */
  async frame(): Promise<Frame | undefined> {
    const head = await this.#bytes(9);
    if (!head) return undefined;
    const length = (head[0] << 16) | (head[1] << 8) | head[2];
    const payload = (await this.#bytes(length))!.slice();
    const id = new DataView(head.buffer, head.byteOffset).getUint32(5) & 0x7fffffff;
    return { type: head[3], flags: head[4], id, payload };
  }

  /** The next frame that is not SETTINGS or WINDOW_UPDATE (those are kept in `control`). */
  async next(): Promise<Frame | undefined> {
    for (;;) {
      const frame = await this.frame();
      if (frame?.type !== SETTINGS && frame?.type !== WINDOW_UPDATE) return frame;
      this.control.push(frame);
    }
  }

  /** A whole request: its headers and body. */
  async request(): Promise<{ id: number; header: HeaderField[]; body: Uint8Array }> {
    const first = await this.next();
    assert.equal(first?.type, HEADERS);
    assert.ok(first.flags & 0x4, "END_HEADERS");
    const header = this.decoder.decode(first.payload);
    const chunks: number[] = [];
    let done = (first.flags & 0x1) !== 0;
    while (!done) {
      const frame = await this.next();
      assert.equal(frame?.type, DATA);
      chunks.push(...frame.payload);
      done = (frame.flags & 0x1) !== 0;
    }
    return { id: first.id, header, body: Uint8Array.from(chunks) };
  }

  send(type: number, flags: number, id: number, payload: Uint8Array | number[] = []): void {
    const bytes = new Uint8Array(9 + payload.length);
    bytes[0] = payload.length >> 16;
    bytes[1] = (payload.length >> 8) & 0xff;
    bytes[2] = payload.length & 0xff;
    bytes[3] = type;
    bytes[4] = flags;
    new DataView(bytes.buffer).setUint32(5, id);
    bytes.set(payload, 9);
    this.#socket.write(bytes);
  }

  settings(...pairs: [number, number][]): void {
    const payload = new Uint8Array(6 * pairs.length);
    const view = new DataView(payload.buffer);
    pairs.forEach(([key, value], i) => {
      view.setUint16(6 * i, key);
      view.setUint32(6 * i + 2, value);
    });
    this.send(SETTINGS, 0, 0, payload);
  }

  /** A plain answer: status 200, the given headers, one DATA frame. */
  answer(id: number, body: Uint8Array, header: HeaderField[] = []): void {
    this.send(HEADERS, 0x4, id, encodeHeaderBlock([[":status", "200"], ...header]));
    this.send(DATA, 0x1, id, body);
  }

  /** Raw bytes, not a frame. */
  write(raw: string): void {
    this.#socket.write(raw);
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

const u32 = (...values: number[]) => {
  const bytes = new Uint8Array(4 * values.length);
  values.forEach((v, i) => new DataView(bytes.buffer).setUint32(4 * i, v));
  return bytes;
};

/**
 * A server that runs `script` on each connection (given its number from 0), and a
 * client of it.
 */
async function scripted(
  script: (peer: Peer, connection: number) => Promise<void>,
  maxResponseBytes = 1024 * 1024,
): Promise<
  { client: H2Client; connections: () => number; failures: unknown[] } & AsyncDisposable
> {
  let connections = 0;
  const failures: unknown[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const peer = new Peer(socket);
    // A failed script ends its connection, so that the call fails rather than waits.
    script(peer, connections++).catch((error) => (failures.push(error), peer.destroy()));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const client = new H2Client({
    authority: `127.0.0.1:${port}`,
    maxResponseBytes,
    connect: () =>
      new Promise((resolve, reject) => {
        const socket = connect({ port, host: "127.0.0.1", noDelay: true });
        sockets.add(socket);
        socket.once("connect", () => resolve(socketStream(socket))).once("error", reject);
      }),
  });
  return {
    client,
    connections: () => connections,
    failures,
    async [Symbol.asyncDispose]() {
      client.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A promise and its resolver (Node 20 has no Promise.withResolvers). */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (body: Uint8Array) => new TextDecoder().decode(body);

describe("the host's HTTP/2 client", () => {
  it("sends a request as h2c and reads padded, continued, Huffman-coded answers and trailers", async () => {
    await using s = await scripted(async (peer) => {
      await peer.preface();
      peer.settings();
      const request = await peer.request();
      assert.deepEqual(request.header, [
        [":method", "POST"],
        [":scheme", "http"],
        [":authority", request.header[2][1]],
        [":path", "/svc/Method"],
        ["content-type", "application/proto"],
        ["te", "trailers"],
        ["content-length", "5"],
      ]);
      assert.equal(text(request.body), "hello");
      // A PING first: the client must answer it with the same payload.
      peer.send(PING, 0, 0, bytes("12345678"));
      const pong = await peer.next();
      assert.deepEqual([pong?.type, pong?.flags, text(pong!.payload)], [PING, 1, "12345678"]);
      // Headers: padded HEADERS (":status: 200", then RFC 7541 C.4.3's Huffman-coded
      // "custom-key: custom-value", added to the table) split by a CONTINUATION.
      const block = [0x88, ...[0x40, 0x88, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f]];
      const rest = [0x89, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xb8, 0xe8, 0xb4, 0xbf];
      peer.send(HEADERS, 0x8, request.id, [3, ...block, 0, 0, 0]);
      peer.send(CONTINUATION, 0x4, request.id, rest);
      peer.send(DATA, 0, request.id, bytes("wor"));
      peer.send(DATA, 0x8, request.id, [2, ...bytes("ld"), 0, 0]);
      // Trailers name the table's entry (62) to show the table is shared.
      peer.send(HEADERS, 0x5, request.id, [...encodeHeaderBlock([["grpc-status", "0"]]), 0xbe]);
      const second = await peer.request();
      peer.send(HEADERS, 0x4, second.id, [0x88, 0xbe]);
      peer.send(DATA, 0x1, second.id, []);
    });
    const header = { "content-type": "application/proto", te: "trailers", connection: "close" };
    const answer = await s.client.post("/svc/Method", header, bytes("hello"), undefined);
    assert.equal(answer.status, 200);
    assert.equal(answer.header.get("custom-key"), "custom-value");
    assert.deepEqual([...answer.headerNames!()], ["custom-key"]);
    assert.equal(text(answer.body), "world");
    assert.equal(answer.trailer?.get("grpc-status"), "0");
    assert.equal(answer.trailer?.get("custom-key"), "custom-value");
    const again = await s.client.post("/svc/Method", {}, new Uint8Array(0), undefined);
    assert.equal(again.header.get("custom-key"), "custom-value");
    assert.equal(again.body.length, 0);
    assert.deepEqual(s.failures, []);
  });

  it("keeps to the server's windows and frame size, and sends the rest on WINDOW_UPDATE", async () => {
    const body = Uint8Array.from({ length: 100_000 }, (_, i) => i % 251);
    await using s = await scripted(async (peer) => {
      await peer.preface();
      peer.settings([0x4, 1000]); // INITIAL_WINDOW_SIZE
      peer.answer((await peer.request()).id, bytes("settled"));
      const head = await peer.next();
      assert.equal(head?.type, HEADERS);
      const received: number[] = [];
      let streamWindow = 1000;
      let connectionWindow = 65_535;
      for (;;) {
        const frame = await peer.next();
        assert.equal(frame?.type, DATA);
        assert.ok(frame.payload.length <= 16_384, "frame size");
        streamWindow -= frame.payload.length;
        connectionWindow -= frame.payload.length;
        assert.ok(streamWindow >= 0 && connectionWindow >= 0, "within the windows");
        received.push(...frame.payload);
        if (frame.flags & 0x1) break;
        if (streamWindow === 0) {
          peer.send(WINDOW_UPDATE, 0, head.id, u32(30_000));
          streamWindow += 30_000;
        }
        if (connectionWindow < 30_000) {
          peer.send(WINDOW_UPDATE, 0, 0, u32(50_000));
          connectionWindow += 50_000;
        }
      }
      assert.deepEqual(Uint8Array.from(received), body);
      peer.answer(head.id, bytes("ok"));
    });
    // A first call, so that the SETTINGS have arrived: until then the client may use
    // the default window of 65 535.
    await s.client.post("/small", {}, new Uint8Array(0), undefined);
    const answer = await s.client.post("/big", {}, body, undefined);
    assert.equal(text(answer.body), "ok");
    assert.deepEqual(s.failures, []);
  });

  it("sends again, once, a request the server never took (GOAWAY below it, REFUSED_STREAM)", async () => {
    await using s = await scripted(async (peer, n) => {
      await peer.preface();
      peer.settings();
      const request = await peer.request();
      if (n === 0) {
        peer.send(GOAWAY, 0, 0, u32(0, 0)); // last stream 0, NO_ERROR
      } else if (n === 1) {
        peer.send(RST_STREAM, 0, request.id, u32(0x7)); // REFUSED_STREAM
        const next = await peer.request();
        peer.answer(next.id, bytes("at last"));
      } else {
        peer.send(RST_STREAM, 0, request.id, u32(0x2)); // INTERNAL_ERROR
      }
    });
    // GOAWAY on connection 0: sent again on connection 1, where REFUSED_STREAM answers;
    // a request is sent again only once, so the call fails.
    await assert.rejects(
      s.client.post("/x", {}, new Uint8Array(0), undefined),
      (error: unknown) => error instanceof Http2Error && /REFUSED_STREAM/.test(error.message),
    );
    assert.equal(s.connections(), 2);
    // Connection 1 still serves.
    const answer = await s.client.post("/x", {}, new Uint8Array(0), undefined);
    assert.equal(text(answer.body), "at last");
    assert.equal(s.connections(), 2);
    assert.deepEqual(s.failures, []);
  });

  it("sends a refused request again on the same connection, which still takes streams", async () => {
    await using s = await scripted(async (peer) => {
      await peer.preface();
      peer.settings();
      const refused = await peer.request();
      peer.send(RST_STREAM, 0, refused.id, u32(0x7)); // REFUSED_STREAM
      const again = await peer.request();
      assert.equal(text(again.body), "twice");
      peer.answer(again.id, bytes("taken"));
    });
    const answer = await s.client.post("/x", {}, bytes("twice"), undefined);
    assert.equal(text(answer.body), "taken");
    assert.equal(s.connections(), 1);
    assert.deepEqual(s.failures, []);
  });

  it("fails a call the server reset, and keeps the connection for the next", async () => {
    await using s = await scripted(async (peer) => {
      await peer.preface();
      peer.settings();
      const request = await peer.request();
      peer.send(RST_STREAM, 0, request.id, u32(0x2)); // INTERNAL_ERROR: not sent again
      const next = await peer.request();
      peer.answer(next.id, bytes("fine"));
    });
    await assert.rejects(s.client.post("/x", {}, new Uint8Array(0), undefined), /INTERNAL_ERROR/);
    assert.equal(text((await s.client.post("/x", {}, new Uint8Array(0), undefined)).body), "fine");
    assert.equal(s.connections(), 1);
    assert.deepEqual(s.failures, []);
  });

  it("fails a call whose connection closes under it, and the next call connects again", async () => {
    await using s = await scripted(async (peer, n) => {
      await peer.preface();
      peer.settings();
      const request = await peer.request();
      if (n === 0) return peer.destroy();
      peer.answer(request.id, bytes("fresh"));
    });
    await assert.rejects(
      s.client.post("/x", {}, new Uint8Array(0), undefined),
      /closed the connection/,
    );
    const answer = await s.client.post("/x", {}, new Uint8Array(0), undefined);
    assert.equal(text(answer.body), "fresh");
    assert.equal(s.connections(), 2);
  });

  it("cancels the stream when the caller aborts, and when an answer passes the limit", async () => {
    const resets: number[][] = [];
    const received = deferred<void>();
    const finished = deferred<void>();
    await using s = await scripted(async (peer) => {
      await peer.preface();
      peer.settings();
      const first = await peer.request(); // never answered
      received.resolve();
      let frame = await peer.next();
      resets.push([frame!.type, frame!.id, ...frame!.payload]);
      assert.equal(frame?.id, first.id);
      const second = await peer.request();
      peer.send(HEADERS, 0x4, second.id, encodeHeaderBlock([[":status", "200"]]));
      peer.send(DATA, 0, second.id, new Uint8Array(600));
      peer.send(DATA, 0, second.id, new Uint8Array(600));
      frame = await peer.next();
      resets.push([frame!.type, frame!.id, ...frame!.payload]);
      finished.resolve();
    }, 1000);
    const abort = new AbortController();
    const call = s.client.post("/x", {}, new Uint8Array(0), abort.signal);
    await received.promise;
    abort.abort(new Error("caller gave up"));
    await assert.rejects(call, /caller gave up/);
    await assert.rejects(
      s.client.post("/x", {}, new Uint8Array(0), undefined),
      (error: unknown) =>
        error instanceof ConnectError && error.code === Code.ResourceExhausted &&
        /larger than 1000 bytes/.test(error.message),
    );
    // RST_STREAM with CANCEL (8), for stream 1 and then stream 3.
    await finished.promise;
    assert.deepEqual(resets, [[RST_STREAM, 1, 0, 0, 0, 8], [RST_STREAM, 3, 0, 0, 0, 8]]);
    assert.deepEqual(s.failures, []);
  });

  it("ends the connection on a malformed header block, with GOAWAY COMPRESSION_ERROR", async () => {
    const goaway = deferred<Frame | undefined>();
    await using s = await scripted(async (peer) => {
      await peer.preface();
      peer.settings();
      const request = await peer.request();
      peer.send(HEADERS, 0x5, request.id, [0x80]); // index 0
      goaway.resolve(await peer.next());
    });
    await assert.rejects(
      s.client.post("/x", {}, new Uint8Array(0), undefined),
      /COMPRESSION_ERROR: index 0/,
    );
    const frame = await goaway.promise;
    assert.equal(frame?.type, GOAWAY);
    assert.deepEqual([...frame!.payload.subarray(4, 8)], [0, 0, 0, 9]);
  });

  it("ends the connection on frames no server may send (h2specd's cases), with the right GOAWAY", async () => {
    const PRIORITY = 2;
    const cases: [string, number, number, number[], number][] = [
      ["DATA on an idle stream", DATA, 3, [1, 2, 3], 0x1],
      ["RST_STREAM on an idle stream", RST_STREAM, 3, [0, 0, 0, 8], 0x1],
      ["WINDOW_UPDATE on an idle stream", WINDOW_UPDATE, 3, [0, 0, 0, 1], 0x1],
      ["HEADERS on a stream the server may not open", HEADERS, 2, [0x88], 0x1],
      ["PRIORITY on stream 0", PRIORITY, 0, [0, 0, 0, 1, 16], 0x1],
      ["a SETTINGS ACK with a payload", SETTINGS, 0, [0, 4, 0, 0, 0, 1], 0x6],
    ];
    for (const [what, type, id, payload, code] of cases) {
      const goaway = deferred<Frame | undefined>();
      await using s = await scripted(async (peer) => {
        await peer.preface();
        peer.settings();
        const request = await peer.request();
        assert.equal(request.id, 1);
        peer.send(type, type === SETTINGS ? 0x1 : 0, id, payload);
        goaway.resolve(await peer.next());
      });
      // Bounded: a client that ignored the frame would wait for an answer forever.
      const call = s.client.post("/x", {}, new Uint8Array(0), AbortSignal.timeout(5_000));
      await assert.rejects(call, Http2Error, what);
      const frame = await goaway.promise;
      assert.equal(frame?.type, GOAWAY, what);
      assert.deepEqual([...frame!.payload.subarray(4, 8)], [0, 0, 0, code], what);
    }
  });

  it("keeps to the server's MAX_CONCURRENT_STREAMS while calls pile up", async () => {
    const limit = 2;
    const messages = ["a", "b", "c", "d", "e"];
    let most = 0;
    await using s = await scripted(async (peer) => {
      await peer.preface();
      peer.settings([0x3, limit]);
      const first = await peer.request();
      peer.answer(first.id, first.body);
      // Streams whose HEADERS came and that have no answer yet, with their bodies once
      // complete. Answers are held back, so a client that ignored the limit would pile
      // up more than `limit` here.
      const open = new Map<number, number[] | Uint8Array>();
      const take = async (until: (frame: Frame) => boolean) => {
        for (;;) {
          const frame = await peer.next();
          assert.ok(frame, "the client closed the connection");
          if (frame.type === HEADERS) open.set(frame.id, []);
          else if (frame.type === DATA) {
            const chunks = open.get(frame.id) as number[];
            chunks.push(...frame.payload);
            if (frame.flags & 0x1) open.set(frame.id, Uint8Array.from(chunks));
          }
          most = Math.max(most, open.size);
          if (until(frame)) return;
        }
      };
      const complete = () => [...open].find(([, body]) => body instanceof Uint8Array);
      for (let ping = 0; ping < messages.length; ping++) {
        if (!complete()) await take(() => complete() !== undefined);
        // Whatever the client sent before it read this PING is in before its ACK: all
        // the calls it could start at once are counted before one is answered.
        peer.send(PING, 0, 0, u32(0, ping));
        await take((f) => f.type === PING && (f.flags & 0x1) !== 0 && f.payload[7] === ping);
        const [id, body] = complete()!;
        open.delete(id);
        peer.answer(id, body as Uint8Array);
      }
    });
    // One call first, so that the server's SETTINGS have arrived (before they do, a
    // client may open any number of streams; the server would refuse the extra ones).
    assert.equal(text((await s.client.post("/x", {}, bytes("first"), undefined)).body), "first");
    const answers = await Promise.all(
      messages.map((m) => s.client.post("/x", {}, bytes(m), undefined)),
    );
    assert.deepEqual(answers.map((a) => text(a.body)), messages);
    assert.deepEqual(s.failures, []);
    assert.equal(most, limit, `at most ${limit} streams open at once, saw ${most}`);
  });

  it("sends a call that was waiting for a stream slot on a new connection when its own fails", async () => {
    await using s = await scripted(async (peer, n) => {
      await peer.preface();
      peer.settings([0x3, 1]); // MAX_CONCURRENT_STREAMS
      const request = await peer.request();
      if (n === 0 && text(request.body) === "first") {
        peer.answer(request.id, bytes("first"));
        await peer.request(); // "sent", then the connection dies with it
        return peer.destroy();
      }
      peer.answer(request.id, request.body);
    });
    await s.client.post("/x", {}, bytes("first"), undefined); // the SETTINGS are in
    const [sent, waiting] = await Promise.allSettled([
      s.client.post("/x", {}, bytes("sent"), undefined),
      s.client.post("/x", {}, bytes("waiting"), undefined),
    ]);
    assert.equal(sent.status, "rejected");
    assert.match(String((sent as PromiseRejectedResult).reason), /closed the connection/);
    assert.equal(waiting.status, "fulfilled");
    assert.equal(
      text((waiting as PromiseFulfilledResult<{ body: Uint8Array }>).value.body),
      "waiting",
    );
    assert.equal(s.connections(), 2);
    assert.deepEqual(s.failures, []);
  });

  it("says so when the server answers in HTTP/1", async () => {
    await using s = await scripted(async (peer) => {
      await peer.preface();
      peer.write("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    });
    await assert.rejects(
      s.client.post("/x", {}, new Uint8Array(0), undefined),
      /answered in HTTP\/1: it does not speak h2c/,
    );
  });

  it("lets a call's signal end a connection attempt that does not finish", async () => {
    let attempts = 0;
    const client = new H2Client({
      authority: "nowhere",
      maxResponseBytes: 100,
      connect: () => (attempts++, new Promise<never>(() => {})),
    });
    const abort = new AbortController();
    const call = client.post("/x", {}, new Uint8Array(0), abort.signal);
    abort.abort(new Error("deadline"));
    await assert.rejects(call, /deadline/);
    // A second call waits on the same attempt rather than start another.
    const again = new AbortController();
    const second = client.post("/x", {}, new Uint8Array(0), again.signal);
    again.abort(new Error("again"));
    await assert.rejects(second, /again/);
    assert.equal(attempts, 1);
    client.close();
  });
});
