/**
 * Bun under the npm build: detecting it, and what the Node adapter does differently there
 * because Bun's versions of Node's APIs differ (see where {@linkcode onBun} is read).
 *
 * @module
 */
import process from "node:process";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/**
 * True under Bun. Read from `process.versions`, which Bun fills with a `bun` entry; Node
 * and Deno have none.
 *
 * @example
 * ```ts
 * import { onBun } from "./node_bun.ts";
 * console.assert(onBun === ("Bun" in globalThis));
 * ```
 */
export const onBun: boolean = typeof (process.versions as Record<string, unknown>).bun ===
  "string";

/**
 * Gives `server` (node:http on Bun, which ignores `headersTimeout`) a header timeout for
 * the later requests of a keep-alive connection: from the first byte of a head, the rest
 * must arrive within `ms`, or the connection is closed. The first request's head is the
 * first-bytes switch's to time; an idle connection is left alone, as Node leaves it.
 *
 * @example
 * ```ts
 * import { createServer } from "node:http";
 * import { timeLaterHeads } from "./node_bun.ts";
 *
 * const server = createServer((_req, res) => res.end("ok"));
 * timeLaterHeads(server, 10_000);
 * ```
 */
export function timeLaterHeads(server: Server, ms: number): void {
  /** Connections between an answer and the next head's first byte. */
  const idle = new WeakSet<Socket>();
  const timers = new WeakMap<Socket, ReturnType<typeof setTimeout>>();
  const watched = new WeakSet<Socket>();
  const stop = (socket: Socket) => clearTimeout(timers.get(socket));
  const timeNextHead = (socket: Socket) => {
    idle.add(socket);
    socket.once("data", () => {
      // The chunk may have held the whole head, its request already emitted.
      if (idle.delete(socket)) timers.set(socket, setTimeout(() => socket.destroy(), ms));
    });
  };
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    idle.delete(socket);
    stop(socket);
    if (!watched.has(socket)) {
      watched.add(socket);
      socket.once("close", () => stop(socket));
    }
    res.once("finish", () => timeNextHead(socket));
  });
}
