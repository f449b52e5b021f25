/**
 * A node:net socket as a byte stream: the Node host's connections, the Node listener's
 * accepted ones, and the HTTP/2 client's tests (which run under Deno and Node alike).
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
  socket.on("data", (chunk: Uint8Array) => {
    chunks.push(chunk);
    buffered += chunk.length;
    if (!paused && buffered > READ_PAUSE_BYTES) {
      paused = true;
      socket.pause();
    }
    wakeUp();
  });
  socket.on("end", () => ((ended = true), wakeUp()));
  socket.on("close", () => ((ended = true), wakeUp()));
  socket.on("error", (error) => ((failure = error), wakeUp()));
  // A caller may have paused it to look at its first bytes.
  socket.resume();
  return {
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
  };
}
