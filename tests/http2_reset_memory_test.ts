/**
 * The engine's memory of the streams it reset (internal/http2/reset_memory.ts), alone and
 * in a server connection: a client that sends all its HEADERS far past
 * SETTINGS_MAX_CONCURRENT_STREAMS, then DATA on every stream (Bun's node:http2 client
 * does), gets one RST_STREAM per refused stream, its accepted streams answered, and the
 * connection lives; what the engine holds stays bounded. The engine lets its answers out
 * before reading on once they pile up, so such a burst (or one of PINGs) from a client
 * that reads stays under the bound on queued frames meant for one that does not.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { Connection } from "../internal/http2/connection.ts";
import { MAX_RUNS, ResetIds } from "../internal/http2/reset_memory.ts";
import type { H2Stream } from "../internal/http2/stream.ts";
import { socketStream } from "../internal/runtime/node_socket.ts";
import type { ByteStream } from "../internal/runtime/types.ts";
import {
  concat,
  dataFrame,
  ErrorCode,
  errorName,
  FrameType,
  headerBlock,
  headersFrame,
  indexedField,
  indexingField,
  pingFrame,
  postFields,
  RawConnection,
} from "./_h2_raw.ts";

describe("ResetIds", () => {
  it("holds a burst of consecutive ids as one run", () => {
    const ids = new ResetIds();
    for (let id = 2001; id < 20_000; id += 2) ids.add(id);
    assert.equal(ids.runs, 1);
    assert.ok(ids.has(2001) && ids.has(10_001) && ids.has(19_999));
    assert.ok(!ids.has(1999) && !ids.has(20_001) && !ids.has(2002));
  });

  it("agrees with a Set on ids added in any order, runs joining from both sides", () => {
    const ids = new ResetIds(1_000_000);
    const set = new Set<number>();
    let seed = 42;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 5_000; i++) {
      const id = 1 + Math.floor(random() * 4_000);
      ids.add(id);
      set.add(id);
    }
    for (let id = 1; id <= 4_100; id++) assert.equal(ids.has(id), set.has(id), `id ${id}`);
    // Every odd id filled in: one run of them, one of the even ones.
    for (let id = 1; id <= 4_001; id++) ids.add(id);
    assert.equal(ids.runs, 2);
  });

  it("stays bounded whatever is added: past maxRuns the lowest runs are forgotten", () => {
    const ids = new ResetIds();
    // Every other stream of the peer's: no two ids join.
    for (let id = 1; id < 40 * MAX_RUNS; id += 4) ids.add(id);
    assert.equal(ids.runs, MAX_RUNS);
    const floor = ids.floor;
    assert.ok(floor > 0);
    // Forgotten ids count as reset (their frames are ignored); the recent ones are exact.
    assert.ok(ids.has(floor) && ids.has(floor - 2));
    assert.ok(ids.has(40 * MAX_RUNS - 3) && !ids.has(40 * MAX_RUNS - 1));
    ids.add(3);
    assert.equal(ids.runs, MAX_RUNS);
  });

  it("rejects a bound that is no positive integer", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => new ResetIds(bad), TypeError);
    }
  });
});

/** A server connection's socket, watched: the peak of what the peer made it queue. */
class QueueWatch implements ByteStream {
  connection?: Connection;
  /** Frames the peer made the connection queue (not yet written), at most. */
  queuedPeak = 0;
  /** RST_STREAM frames written, by stream. */
  readonly resets = new Map<number, number>();
  readonly #inner: ByteStream;
  #rest = new Uint8Array(0);

  constructor(inner: ByteStream) {
    this.#inner = inner;
  }

  read(into: Uint8Array): Promise<number | null> {
    return this.#inner.read(into);
  }

  async write(bytes: Uint8Array): Promise<number> {
    this.#count(bytes);
    const written = await this.#inner.write(bytes);
    // Counts only grow during a write: their peak is now, before the engine clears them.
    const conn = this.connection;
    if (conn) {
      const queued = conn.controlFrames + conn.inflightControlFrames;
      this.queuedPeak = Math.max(this.queuedPeak, queued);
    }
    return written;
  }

  close(): void {
    this.#inner.close();
  }

  #count(bytes: Uint8Array): void {
    const b = concat(this.#rest, bytes);
    let at = 0;
    while (b.length - at >= 9) {
      const length = (b[at] << 16) | (b[at + 1] << 8) | b[at + 2];
      if (b.length - at < 9 + length) break;
      if (b[at + 3] === FrameType.RST_STREAM) {
        const id = ((b[at + 5] & 0x7f) << 24 | b[at + 6] << 16 | b[at + 7] << 8 | b[at + 8]) >>> 0;
        this.resets.set(id, (this.resets.get(id) ?? 0) + 1);
      }
      at += 9 + length;
    }
    this.#rest = b.slice(at);
  }
}

interface EngineFixture extends AsyncDisposable {
  port: number;
  watches: QueueWatch[];
}

/** The engine's server role on a loopback port; each stream is answered once its body is in. */
async function startEngine(maxConcurrentStreams: number): Promise<EngineFixture> {
  const sockets = new Set<Socket>();
  const watches: QueueWatch[] = [];
  const listener: Server = createServer((socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const watch = new QueueWatch(socketStream(socket));
    watches.push(watch);
    watch.connection = new Connection(watch, {
      role: "server",
      maxConcurrentStreams,
      onStream: (stream) => void answer(stream),
    });
  });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const { port } = listener.address() as { port: number };
  return {
    port,
    watches,
    async [Symbol.asyncDispose]() {
      for (const watch of watches) watch.connection?.close();
      for (const socket of sockets) socket.destroy();
      await Promise.all(watches.map((watch) => watch.connection?.closed));
      await new Promise((resolve) => listener.close(resolve));
    },
  };
}

async function answer(stream: H2Stream): Promise<void> {
  try {
    await stream.readAll(1024);
    stream.sendHeaders([":status", "200"], false);
    stream.end();
  } catch {
    // The stream was reset or the connection closed: nothing to answer.
  }
}

/**
 * HEADERS as a compact client sends them: the first block indexes its fields, every
 * later one is five bytes of references to them (RFC 7541 dynamic table).
 */
function compactHeaders(count: number): { frames: Uint8Array; ids: number[] } {
  const ids: number[] = [];
  const frames: Uint8Array[] = [];
  const [first, ...rest] = postFields("/reset/memory").map(([name, value]) =>
    indexingField(name, value)
  );
  // Dynamic table, newest first: :path 62, :authority 63, :scheme 64, :method 65.
  const later = concat(indexedField(65), indexedField(64), indexedField(63), indexedField(62));
  for (let i = 0, id = 1; i < count; i++, id += 2) {
    ids.push(id);
    frames.push(headersFrame(id, i === 0 ? concat(first, ...rest) : later));
  }
  return { frames: concat(...frames), ids };
}

describe("a server connection refusing streams past its limit", () => {
  for (const [count, limit] of [[10_000, 1000], [30_000, 100]] as const) {
    it(`sends one RST_STREAM per refused stream to ${count} HEADERS then DATA on each (limit ${limit})`, async () => {
      await using engine = await startEngine(limit);
      const client = await RawConnection.open(engine.port);
      try {
        // Straight on, as Bun's client does: the server's limit is not waited for.
        client.handshake();
        const { frames, ids } = compactHeaders(count);
        client.write(frames);
        client.write(concat(...ids.map((id) => dataFrame(id, new Uint8Array(0), true))));
        // Frames are read in order: the PING's ACK comes after all the DATA was taken.
        client.write(pingFrame());
        await client.until(() => client.pingAcks > 0, 60_000, "the PING's ACK");
        const accepted = ids.slice(0, limit);
        const refused = ids.slice(limit);
        await client.until(
          () => accepted.every((id) => client.streams.get(id)?.ended),
          60_000,
          "every accepted stream's answer",
        );
        assert.deepEqual(client.goaways, [], "the connection went away");
        for (const id of accepted) {
          const stream = client.streams.get(id)!;
          assert.equal(stream.status, 200, `stream ${id}`);
          assert.equal(stream.reset, undefined, `stream ${id} was reset`);
        }
        for (const id of refused) {
          assert.equal(errorName(client.streams.get(id)?.reset), "REFUSED_STREAM", `stream ${id}`);
        }
        const watch = engine.watches[0];
        const twice = [...watch.resets].filter(([, n]) => n > 1).map(([id]) => id);
        assert.deepEqual(twice.slice(0, 5), [], `${twice.length} streams were reset twice`);
        assert.equal(client.counts.get(FrameType.RST_STREAM), refused.length, "RST_STREAM frames");
        const conn = watch.connection!;
        assert.equal(conn.resetByUs.runs, 1, "the refused streams' ids are one run");
        assert.ok(watch.queuedPeak < 10_000, `queued ${watch.queuedPeak} frames at most`);
        // The connection serves on.
        const next = ids.at(-1)! + 2;
        client.write(headersFrame(next, headerBlock(postFields("/after")), { endStream: true }));
        await client.until(() => client.streams.get(next)?.ended === true, 10_000, "/after");
        assert.equal(client.streams.get(next)!.status, 200);
        console.log(
          `${count} streams, limit ${limit}: ${accepted.length} answered, ` +
            `${client.counts.get(FrameType.RST_STREAM)} RST_STREAM, ` +
            `${watch.queuedPeak} control frames queued at most`,
        );
      } finally {
        client.destroy();
      }
    });
  }

  it("answers 30 000 PINGs sent in one write by a client that reads, under the 10 000-frame bound", async () => {
    await using engine = await startEngine(10);
    const client = await RawConnection.open(engine.port);
    try {
      client.handshake();
      await client.ready();
      const count = 30_000;
      client.write(concat(...Array.from({ length: count }, () => pingFrame())));
      await client.until(() => client.pingAcks >= count, 60_000, `${count} PING ACKs`);
      assert.deepEqual(client.goaways, []);
      const peak = engine.watches[0].queuedPeak;
      assert.ok(peak < 10_000, `queued ${peak} frames at most`);
      console.log(`${count} PINGs in one write: all answered, ${peak} ACKs queued at most`);
    } finally {
      client.destroy();
    }
  });

  it("still cuts off a client that never reads its REFUSED_STREAMs: GOAWAY ENHANCE_YOUR_CALM", async () => {
    await using engine = await startEngine(1);
    const client = await RawConnection.open(engine.port);
    try {
      client.handshake();
      await client.ready();
      client.pause();
      // Batches of refused streams, until the kernel's buffers are full of our resets and
      // the engine's bound is passed (a few hundred thousand streams).
      const batch = 5_000;
      const later = concat(indexedField(65), indexedField(64), indexedField(63), indexedField(62));
      const first = concat(
        ...postFields("/flood").map(([name, value]) => indexingField(name, value)),
      );
      let id = 1;
      const conn = () => engine.watches[0]?.connection;
      const deadline = performance.now() + 30_000;
      while (id < 4_000_000 && conn()?.failure === undefined && performance.now() < deadline) {
        const frames: Uint8Array[] = [];
        for (let i = 0; i < batch; i++, id += 2) {
          frames.push(headersFrame(id, id === 1 ? first : later));
        }
        await client.flush(concat(...frames));
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      const failure = conn()?.failure;
      assert.equal(failure?.code, ErrorCode.ENHANCE_YOUR_CALM, `after ${(id - 1) / 2} streams`);
      assert.match(failure!.message, /queue frames it does not read/);
      console.log(`a client not reading: cut off after ${(id - 1) / 2} refused streams`);
    } finally {
      client.destroy();
    }
  });

  it("ignores the body and trailers of a refused stream that were on their way", async () => {
    await using engine = await startEngine(1);
    const client = await RawConnection.open(engine.port);
    try {
      client.handshake();
      const { frames } = compactHeaders(2);
      const trailers = headerBlock([["x-checksum", "1"]]);
      client.write(concat(
        frames,
        dataFrame(3, new Uint8Array(100)),
        headersFrame(3, trailers, { endStream: true }),
        dataFrame(1, new Uint8Array(0), true),
      ));
      await client.until(() => client.streams.get(1)?.ended === true, 10_000, "stream 1");
      assert.equal(client.streams.get(1)!.status, 200);
      assert.equal(errorName(client.streams.get(3)?.reset), "REFUSED_STREAM");
      assert.equal(engine.watches[0].resets.get(3), 1, "RST_STREAM frames on stream 3");
      assert.deepEqual(client.goaways, []);
    } finally {
      client.destroy();
    }
  });

  it("still answers DATA on a stream the peer closed with one STREAM_CLOSED, then ignores it", async () => {
    await using engine = await startEngine(10);
    const client = await RawConnection.open(engine.port);
    try {
      client.handshake();
      const id = client.request("/closed", [], new Uint8Array(0));
      await client.until(() => client.streams.get(id)?.ended === true, 10_000, "the answer");
      for (let i = 0; i < 3; i++) client.write(dataFrame(id, new Uint8Array(8), true));
      client.write(pingFrame());
      await client.until(() => client.pingAcks > 0, 10_000, "the PING's ACK");
      assert.equal(errorName(client.streams.get(id)!.reset), errorName(ErrorCode.STREAM_CLOSED));
      assert.equal(engine.watches[0].resets.get(id), 1, "RST_STREAM frames on the stream");
      assert.deepEqual(client.goaways, []);
    } finally {
      client.destroy();
    }
  });
});
