/**
 * The Deno guest's HTTP/1.1 backend behind the engine's first-bytes switch: `Deno.serve`
 * on a private listener, each HTTP/1.1 connection piped to it and back.
 *
 * @module
 */
import { explainPermission } from "./deno_permission.ts";
import { fetchHandler, serveOptions } from "./deno_serve.ts";
import { connectSocket, type DenoStream } from "./deno_socket.ts";
import type {
  BindAddress,
  ByteStream,
  ConnectionServer,
  ServeHttpOptions,
  SocketTarget,
} from "./types.ts";

/**
 * The HTTP/1.1 server the first-bytes switch hands HTTP/1.1 connections to, beside the
 * guest bound at `bound`.
 *
 * @example
 * ```ts
 * import { createHttp1Server } from "./deno_http1.ts";
 *
 * const http1 = createHttp1Server({
 *   address: { kind: "tcp", hostname: "127.0.0.1", port: 0 },
 *   handler: () => Promise.resolve({ status: 204 }),
 *   onError: (error) => console.error(error),
 *   headerTimeoutMs: 10_000,
 * }, { kind: "tcp", hostname: "127.0.0.1", port: 8080 });
 * await http1.shutdown(); // never started: nothing to stop
 * ```
 */
export function createHttp1Server(
  options: ServeHttpOptions,
  bound: BindAddress,
): ConnectionServer {
  return new Http1Backend(options, bound);
}

/**
 * Where the engine sends HTTP/1.1: `Deno.serve` on a private listener, started on first
 * use (which a plugin spoken to only in h2c never pays for), each connection piped to
 * it. The listener is loopback TCP beside a TCP bind: a guest runs
 * with `--allow-net --allow-env`, and a unix socket would need a directory to write;
 * measured with curl through the pipe, a unix socket was no faster to speak of. Beside
 * a unix bind it is a unix socket in a fresh 0700 directory next to the bound one,
 * which that bind may write, so that no TCP port opens.
 */
class Http1Backend implements ConnectionServer {
  readonly #options: ServeHttpOptions;
  readonly #bound: BindAddress;
  #server?: Promise<{ server: Deno.HttpServer; target: SocketTarget; dir?: string }>;
  readonly #tunnels = new Set<Tunnel>();
  #stopping = false;

  constructor(options: ServeHttpOptions, bound: BindAddress) {
    this.#options = options;
    this.#bound = bound;
  }

  #start(): Promise<{ server: Deno.HttpServer; target: SocketTarget; dir?: string }> {
    return this.#server ??= (async () => {
      const common = serveOptions(this.#options);
      const handler = fetchHandler(this.#options, true);
      if (this.#bound.kind === "unix") {
        const bound = this.#bound.path;
        let dir: string;
        try {
          dir = await Deno.makeTempDir({
            dir: bound.slice(0, bound.lastIndexOf("/")) || "/",
            prefix: `${bound.slice(bound.lastIndexOf("/") + 1)}.http1-`,
          });
        } catch (error) {
          throw explainPermission(error, "--allow-write", `serve HTTP/1.1 beside ${bound}`);
        }
        const path = `${dir}/http1.sock`;
        const server = Deno.serve({ ...common, path }, handler);
        return { server, target: { path }, dir };
      }
      let server: Deno.HttpServer<Deno.NetAddr>;
      try {
        server = Deno.serve({ ...common, hostname: "127.0.0.1", port: 0 }, handler);
      } catch (error) {
        throw explainPermission(error, "--allow-net", "serve HTTP/1.1 on 127.0.0.1");
      }
      return { server, target: { hostname: "127.0.0.1", port: server.addr.port } };
    })();
  }

  serve(client: ByteStream, prefix: Uint8Array, deadline: ReturnType<typeof setTimeout>): void {
    void this.#tunnel(client, prefix, deadline);
  }

  /**
   * Pipes `client` (whose first bytes are `prefix`) to `Deno.serve` and back. `deadline`
   * closes the client unless cleared: it is, once the first request's head has passed.
   */
  async #tunnel(
    client: ByteStream,
    prefix: Uint8Array,
    deadline: ReturnType<typeof setTimeout>,
  ): Promise<void> {
    let upstream: ByteStream;
    try {
      upstream = await connectSocket((await this.#start()).target);
    } catch (error) {
      clearTimeout(deadline);
      client.close();
      this.#options.onError(error);
      return;
    }
    let markDone = () => {};
    const tunnel: Tunnel = {
      headDone: false,
      close: () => {
        client.close();
        upstream.close();
      },
      done: new Promise((resolve) => (markDone = resolve)),
    };
    if (this.#stopping) return tunnel.close();
    this.#tunnels.add(tunnel);
    const head = new HeadEnd();
    const passed = (bytes: Uint8Array) => {
      if (!tunnel.headDone && head.ends(bytes)) {
        tunnel.headDone = true;
        clearTimeout(deadline);
      }
    };
    const toServer = async () => {
      passed(prefix);
      await writeAll(upstream, prefix);
      const buffer = new Uint8Array(PIPE_BUFFER_BYTES);
      for (;;) {
        const count = await client.read(buffer);
        if (count === null) break;
        const bytes = buffer.subarray(0, count);
        passed(bytes);
        await writeAll(upstream, bytes);
      }
      // The client is done sending: Deno.serve may still answer. Cut off mid-head (the
      // deadline closed it), there is nothing to answer.
      if (tunnel.headDone) (upstream as DenoStream).closeWrite();
      else tunnel.close();
    };
    const toClient = async () => {
      const buffer = new Uint8Array(PIPE_BUFFER_BYTES);
      for (;;) {
        const count = await upstream.read(buffer);
        if (count === null) break;
        await writeAll(client, buffer.subarray(0, count));
      }
    };
    await Promise.all([
      toServer().catch(tunnel.close),
      // Deno.serve closes a connection it is done with (or shutting down): so do we.
      toClient().catch(() => {}).finally(tunnel.close),
    ]);
    clearTimeout(deadline);
    this.#tunnels.delete(tunnel);
    markDone();
  }

  /** Drains `Deno.serve` (in-flight requests finish) and ends every tunnel. */
  async shutdown(): Promise<void> {
    this.#stopping = true;
    // No request was made on these yet.
    for (const tunnel of this.#tunnels) if (!tunnel.headDone) tunnel.close();
    const started = await this.#server?.catch(() => undefined);
    if (!started) return;
    await started.server.shutdown();
    // Deno.serve has closed its side of every tunnel; each passes on what is left of its
    // answers, then closes its client. One whose client stops reading is cut off.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([...this.#tunnels].map((tunnel) => tunnel.done)),
      new Promise((resolve) => (timer = setTimeout(resolve, TUNNEL_DRAIN_MS))),
    ]);
    clearTimeout(timer);
    for (const tunnel of this.#tunnels) tunnel.close();
    if (started.dir) await Deno.remove(started.dir, { recursive: true }).catch(() => {});
  }
}

/** How long tunnels get to pass on the end of their answers once Deno.serve has stopped. */
const TUNNEL_DRAIN_MS = 5_000;

/** Bytes read at a time through an HTTP/1.1 pipe, in each direction. */
const PIPE_BUFFER_BYTES = 16 * 1024;

/** One client piped to `Deno.serve`. */
interface Tunnel {
  /** Whether the first request's head has passed (the header deadline is off). */
  headDone: boolean;
  /** Closes both ends. */
  close: () => void;
  /** Resolves once both directions have ended. */
  done: Promise<void>;
}

/**
 * Finds the end of the first HTTP/1.1 request head (request line, headers, then an empty
 * line) in bytes given piece by piece. Bare LF line ends count too (RFC 9112, 2.2), and
 * empty lines before the request line are skipped.
 */
class HeadEnd {
  #lineLength = 0;
  #sawLine = false;

  /** Whether the head ends within `bytes`, given after everything given before. */
  ends(bytes: Uint8Array): boolean {
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i];
      if (byte === 10) {
        if (this.#lineLength > 0) this.#sawLine = true;
        else if (this.#sawLine) return true;
        this.#lineLength = 0;
      } else if (byte !== 13) {
        this.#lineLength++;
      }
    }
    return false;
  }
}

async function writeAll(stream: ByteStream, bytes: Uint8Array): Promise<void> {
  while (bytes.length > 0) bytes = bytes.subarray(await stream.write(bytes));
}
