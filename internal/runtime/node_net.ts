/**
 * node:net as the seam's sockets: listening (TCP, or a unix socket put in place with
 * mode 0600), accepting, connecting, and finding a free port.
 *
 * @module
 */
import { chmod, rename, rm } from "node:fs/promises";
import { rmSync } from "node:fs";
import { connect as netConnect, createServer as createNetServer, type Server } from "node:net";
import { socketStream } from "./node_socket.ts";
import type { BindAddress, ByteStream, Listener, SocketTarget } from "./types.ts";

/**
 * Listens on `address`: TCP (with TCP_NODELAY on every connection) or a unix socket,
 * bound under a private staging name, made 0600 and only then moved into place, so that
 * no client ever finds it with a wider mode. A failure names the address and leaves
 * nothing listening.
 *
 * @example
 * ```ts
 * import { connectSocket, listen } from "./node_net.ts";
 *
 * const listener = await listen({ kind: "tcp", hostname: "127.0.0.1", port: 0 });
 * if (listener.address.kind !== "tcp") throw new Error("a TCP listener");
 * const client = await connectSocket({ hostname: "127.0.0.1", port: listener.address.port });
 * const server = (await listener.accept())!;
 * await client.write(new TextEncoder().encode("hi"));
 * const buffer = new Uint8Array(8);
 * console.assert((await server.read(buffer)) === 2);
 * client.close();
 * server.close();
 * listener.close();
 * console.assert((await listener.accept()) === null);
 * ```
 */
export async function listen(address: BindAddress): Promise<Listener> {
  const where = address.kind === "unix" ? address.path : `${address.hostname}:${address.port}`;
  const listener = new NodeListener(address);
  const server = listener.server;
  const staging = `${address.kind === "unix" ? address.path : ""}~`;
  if (address.kind === "unix") {
    // A socket file left by an earlier run would make the bind fail.
    await rm(address.path, { force: true });
    await rm(staging, { force: true });
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) => {
      reject(new Error(`cannot listen on ${where}: ${error.message}`, { cause: error }));
    });
    if (address.kind === "unix") server.listen(staging, resolve);
    else server.listen(address.port, address.hostname, resolve);
  });
  // From here on an error of the listening socket (a failed accept: out of file
  // descriptors, say) is the next accept()'s to throw, as Deno's listener throws it, rather
  // than the process's; the server goes on listening.
  server.on("error", (error) => listener.fail(error));
  if (address.kind === "unix") {
    try {
      await chmod(staging, 0o600);
      await rename(staging, address.path);
    } catch (error) {
      server.close();
      await rm(staging, { force: true }).catch(() => {});
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`cannot put the socket in place at ${where}: ${reason}`, { cause: error });
    }
  } else {
    const info = server.address();
    if (typeof info === "object" && info) listener.address = { ...address, port: info.port };
  }
  return listener;
}

/** A node:net server as a {@linkcode Listener}: connections wait in a queue for accept(). */
class NodeListener implements Listener {
  address: BindAddress;
  readonly server: Server;
  readonly #waiting: ByteStream[] = [];
  #wake?: (stream: ByteStream | null) => void;
  #wakeWithError?: (error: unknown) => void;
  #failure?: { error: unknown };
  #closed = false;

  constructor(address: BindAddress) {
    this.address = address;
    this.server = createNetServer({ noDelay: true }, (socket) => {
      if (this.#closed) return void socket.destroy();
      if (address.kind === "tcp") socket.setNoDelay(true);
      // Wrapped at once: its error listener keeps a reset before accept() from
      // crashing the process, and its read limit bounds what it buffers meanwhile.
      const stream = socketStream(socket);
      const wake = this.#wake;
      this.#wake = this.#wakeWithError = undefined;
      if (wake) wake(stream);
      else this.#waiting.push(stream);
    });
  }

  accept(): Promise<ByteStream | null> {
    if (this.#waiting.length > 0) return Promise.resolve(this.#waiting.shift()!);
    if (this.#closed) return Promise.resolve(null);
    const failure = this.#failure;
    if (failure) {
      this.#failure = undefined;
      return Promise.reject(failure.error);
    }
    return new Promise((resolve, reject) => {
      this.#wake = resolve;
      this.#wakeWithError = reject;
    });
  }

  /** An error of the listening socket: the pending accept() (or the next) throws it. */
  fail(error: unknown): void {
    const wake = this.#wakeWithError;
    this.#wake = this.#wakeWithError = undefined;
    if (wake) wake(error);
    else this.#failure = { error };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.server.close();
    for (const stream of this.#waiting.splice(0)) stream.close();
    this.#wake?.(null);
    this.#wake = this.#wakeWithError = undefined;
    // libuv unlinks the name it bound, which is the staging name: the socket was moved.
    if (this.address.kind === "unix") rmSync(this.address.path, { force: true });
  }
}

/**
 * Connects to a TCP address (with TCP_NODELAY) or a unix socket.
 *
 * @example
 * ```ts
 * import { connectSocket } from "./node_net.ts";
 * // Nothing listens on port 1.
 * const refused = await connectSocket({ hostname: "127.0.0.1", port: 1 }).then(
 *   () => false,
 *   () => true,
 * );
 * console.assert(refused);
 * ```
 */
export function connectSocket(target: SocketTarget): Promise<ByteStream> {
  return new Promise((resolve, reject) => {
    const socket = "path" in target
      ? netConnect(target.path)
      : netConnect({ host: target.hostname, port: target.port, noDelay: true });
    socket.once("error", reject).once("connect", () => {
      socket.off("error", reject);
      resolve(socketStream(socket));
    });
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Another process can take it
 * before the caller binds it: the race every "find a free port" helper has.
 */
export function allocatePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
