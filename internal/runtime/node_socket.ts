/**
 * A node:net socket as a byte stream: the Node host's connections, the Node listener's
 * accepted ones, and the HTTP/2 client's tests (which run under Deno and Node alike);
 * and the socket taken back from its stream, for node:http and node:http2.
 *
 * @module
 */
import type { Socket } from "node:net";
import type { ByteStream } from "./types.ts";

/**
 * Unread bytes past which the socket stops reading: a peer sending faster than we read
 * (a 100 MiB request, say) then waits in TCP's window, not in our memory.
 */
export const READ_PAUSE_BYTES = 256 * 1024;
/** Unread bytes at or below which a paused socket reads again. */
const READ_RESUME_BYTES = 64 * 1024;

/**
 * A connected socket as a {@linkcode ByteStream}: a read takes what has arrived (or
 * waits for it), a write resolves once the socket took the bytes. Errors and the end
 * of the socket reach the next read. The socket is read from at once (a paused one is
 * resumed) and paused again while more than {@linkcode READ_PAUSE_BYTES} are unread.
 *
 * @example
 * ```ts
 * import { createServer, connect } from "node:net";
 * import { socketStream } from "./node_socket.ts";
 *
 * const server = createServer((socket) => socket.end("hi")).listen(0, "127.0.0.1");
 * await new Promise((resolve) => server.once("listening", resolve));
 * const { port } = server.address() as { port: number };
 * const socket = connect(port, "127.0.0.1");
 * await new Promise((resolve) => socket.once("connect", resolve));
 * const stream = socketStream(socket);
 * const buffer = new Uint8Array(16);
 * const count = await stream.read(buffer);
 * console.assert(new TextDecoder().decode(buffer.subarray(0, count!)) === "hi");
 * stream.close();
 * await new Promise((resolve) => server.close(resolve));
 * ```
 */
export function socketStream(socket: Socket): ByteStream {
  const chunks: Uint8Array[] = [];
  let buffered = 0;
  let paused = false;
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const wakeUp = () => {
    const waiting = wake;
    wake = undefined;
    waiting?.();
  };
  const onData = (chunk: Uint8Array) => {
    chunks.push(chunk);
    buffered += chunk.length;
    if (!paused && buffered > READ_PAUSE_BYTES) {
      paused = true;
      socket.pause();
    }
    wakeUp();
  };
  const onEnd = () => ((ended = true), wakeUp());
  socket.on("data", onData);
  socket.on("end", onEnd);
  socket.on("close", onEnd);
  socket.on("error", (error) => ((failure = error), wakeUp()));
  // A caller may have paused it to look at its first bytes.
  socket.resume();
  const stream: ReleasableStream = {
    async read(into) {
      while (chunks.length === 0) {
        if (failure !== undefined) throw failure;
        if (ended) return null;
        await new Promise<void>((resolve) => (wake = resolve));
      }
      const chunk = chunks[0];
      const count = Math.min(chunk.length, into.length);
      into.set(count === chunk.length ? chunk : chunk.subarray(0, count));
      if (count === chunk.length) chunks.shift();
      else chunks[0] = chunk.subarray(count);
      buffered -= count;
      if (paused && buffered <= READ_RESUME_BYTES) {
        paused = false;
        socket.resume();
      }
      return count;
    },
    write: (bytes) =>
      new Promise((resolve, reject) => {
        if (socket.destroyed) return reject(new Error("the connection is closed"));
        socket.write(bytes, (error) => (error ? reject(error) : resolve(bytes.length)));
      }),
    close: () => void socket.destroy(),
    [release]() {
      socket.pause();
      socket.off("data", onData).off("end", onEnd).off("close", onEnd);
      // Its error listener stays: an error before the new owner listens would be thrown.
      if (ended || failure !== undefined) return undefined;
      // Put back in order, so that the new owner reads them first.
      for (let i = chunks.length - 1; i >= 0; i--) socket.unshift(chunks[i]);
      chunks.length = 0;
      buffered = 0;
      return socket;
    },
  };
  return stream;
}

const release: unique symbol = Symbol("release");

/** A {@linkcode socketStream} stream, which can give its socket back. */
type ReleasableStream = ByteStream & { [release]: () => Socket | undefined };

/**
 * Hands a connection the first-bytes switch read from (through a
 * {@linkcode socketStream} stream) to node:http or node:http2: its socket is taken back,
 * paused, with `first` and the bytes the stream had read but not handed out put back in
 * it (`unshift`) for the new owner to read first; `deadline` is cleared when it closes.
 * The stream is not to be used again. `undefined` (the stream closed, the deadline
 * cleared) when the socket has ended or failed, or the stream is no socket stream.
 *
 * @example
 * ```ts
 * import { Socket } from "node:net";
 * import { handOff, socketStream } from "./node_socket.ts";
 *
 * const socket = new Socket();
 * const deadline = setTimeout(() => {}, 1_000);
 * console.assert(handOff(socketStream(socket), new Uint8Array([1]), deadline) === socket);
 * console.assert(socket.readableLength === 1);
 * socket.destroy();
 * ```
 */
export function handOff(
  stream: ByteStream,
  first: Uint8Array,
  deadline: ReturnType<typeof setTimeout>,
): Socket | undefined {
  const socket = (stream as Partial<ReleasableStream>)[release]?.();
  if (!socket) {
    clearTimeout(deadline);
    stream.close();
    return undefined;
  }
  socket.once("close", () => clearTimeout(deadline));
  socket.unshift(first);
  return socket;
}
