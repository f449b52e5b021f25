/**
 * Deno's sockets as the seam's byte streams: listening (TCP, or a unix socket put in
 * place with mode 0600), accepting, connecting, and finding a free port.
 *
 * @module
 */
import { explainPermission } from "./deno_permission.ts";
import type { BindAddress, ByteStream, Listener, SocketTarget } from "./types.ts";

/** The flags a unix socket's file needs. */
export const UNIX_FLAGS = "--allow-read and --allow-write";

/** How an address is named in errors. */
export function addressText(address: BindAddress): string {
  return address.kind === "unix" ? address.path : `${address.hostname}:${address.port}`;
}

/**
 * Binds a unix socket at `path` by `bind`ing it under a private staging name, making
 * that 0600, then moving it into place: a client never finds the socket before its mode
 * is set. A socket file left by an earlier run is removed first (the bind would fail).
 * If the mode or the move fails, `unbind` undoes the bind (left running, it would hold
 * the process open, listening where no client looks) and the error names `path`.
 */
export async function bindUnixSocket<T>(
  path: string,
  bind: (staging: string) => T,
  unbind: (bound: T) => Promise<void> | void,
): Promise<T> {
  await Deno.remove(path).catch(() => {});
  const staging = `${path}~`;
  await Deno.remove(staging).catch(() => {});
  const bound = bind(staging);
  try {
    await Deno.chmod(staging, 0o600);
    await Deno.rename(staging, path);
  } catch (error) {
    await unbind(bound);
    await Deno.remove(staging).catch(() => {});
    if (error instanceof Deno.errors.NotCapable) {
      throw explainPermission(error, UNIX_FLAGS, `listen on ${path}`);
    }
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot put the socket in place at ${path}: ${reason}`, { cause: error });
  }
  return bound;
}

/**
 * Listens on `address`: TCP (with TCP_NODELAY on every connection) or a unix socket,
 * bound under a private staging name, made 0600 and only then moved into place, so that
 * no client ever finds it with a wider mode. A failure names the address (and the flag,
 * when a permission is missing) and leaves nothing listening.
 *
 * @example
 * ```ts
 * import { connectSocket, listen } from "./deno_socket.ts";
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
  const where = addressText(address);
  if (address.kind === "tcp") {
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({ hostname: address.hostname, port: address.port });
    } catch (error) {
      throw listenError(error, "--allow-net", where);
    }
    return new DenoListener(listener, { ...address, port: listener.addr.port });
  }
  const listener = await bindUnixSocket(address.path, (staging) => {
    try {
      return Deno.listen({ transport: "unix", path: staging });
    } catch (error) {
      throw listenError(error, UNIX_FLAGS, where);
    }
  }, (listener) => listener.close());
  return new DenoListener(listener, address);
}

function listenError(error: unknown, flag: string, where: string): unknown {
  if (error instanceof Deno.errors.NotCapable) {
    return explainPermission(error, flag, `listen on ${where}`);
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new Error(`cannot listen on ${where}: ${reason}`, { cause: error });
}

/** Closes a Deno resource that may be closed already (by us, or by the peer's reset). */
function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Closed already.
  }
}

/** A Deno listener as a {@linkcode Listener}. */
class DenoListener implements Listener {
  readonly address: BindAddress;
  readonly #listener: Deno.Listener;
  #closed = false;

  constructor(listener: Deno.Listener, address: BindAddress) {
    this.#listener = listener;
    this.address = address;
  }

  async accept(): Promise<ByteStream | null> {
    if (this.#closed) return null;
    let conn: Deno.Conn;
    try {
      conn = await this.#listener.accept();
    } catch (error) {
      if (this.#closed) return null;
      throw error;
    }
    if (this.#closed) {
      conn.close();
      return null;
    }
    // Nagle would hold a small answer back until the client's ACK of the last one.
    if (this.address.kind === "tcp") (conn as Deno.TcpConn).setNoDelay(true);
    return new DenoStream(conn);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#listener);
    if (this.address.kind === "unix") {
      try {
        Deno.removeSync(this.address.path);
      } catch {
        // Gone already, or never ours to remove.
      }
    }
  }
}

/**
 * A Deno connection as a {@linkcode ByteStream} whose `close()` may be called more than
 * once and ends a pending read with `null` (Deno's own rejects it).
 */
export class DenoStream implements ByteStream {
  readonly #conn: Deno.Conn;
  #closed = false;

  /** Wraps `conn`. */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Reads into `into`; `null` at the end, or once closed. */
  async read(into: Uint8Array): Promise<number | null> {
    if (this.#closed) return null;
    try {
      return await this.#conn.read(into);
    } catch (error) {
      if (this.#closed) return null;
      throw error;
    }
  }

  /** Writes some of `bytes`; resolves how many. */
  write(bytes: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Error("the connection is closed"));
    return this.#conn.write(bytes);
  }

  /** Ends the sending side: the peer reads the end, and may still answer. */
  closeWrite(): void {
    if (this.#closed) return;
    this.#conn.closeWrite().catch(() => {});
  }

  /** Closes the connection; later calls do nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#conn);
  }
}

/**
 * Connects to a TCP address (with TCP_NODELAY) or a unix socket.
 *
 * @example
 * ```ts
 * import { connectSocket } from "./deno_socket.ts";
 * // Nothing listens on port 1.
 * const refused = await connectSocket({ hostname: "127.0.0.1", port: 1 }).then(
 *   () => false,
 *   () => true,
 * );
 * console.assert(refused);
 * ```
 */
export async function connectSocket(target: SocketTarget): Promise<ByteStream> {
  if ("path" in target) {
    try {
      return new DenoStream(await Deno.connect({ transport: "unix", path: target.path }));
    } catch (error) {
      throw explainPermission(error, UNIX_FLAGS, `connect to ${target.path}`);
    }
  }
  try {
    const conn = await Deno.connect({ hostname: target.hostname, port: target.port });
    conn.setNoDelay(true);
    return new DenoStream(conn);
  } catch (error) {
    const where = `${target.hostname}:${target.port}`;
    throw explainPermission(error, "--allow-net", `connect to ${where}`);
  }
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Another process can take it
 * before the caller binds it: the race every "find a free port" helper has.
 */
export function allocatePort(): Promise<number> {
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  } catch (error) {
    return Promise.reject(explainPermission(error, "--allow-net", "find a free port"));
  }
  const { port } = listener.addr;
  listener.close();
  return Promise.resolve(port);
}
