/**
 * node:http as the Node guest's HTTP/1.1 server, fed the HTTP/1.1 connections of the
 * first-bytes switch (behind the engine and behind node:http2 alike).
 *
 * @module
 */
import * as http from "node:http";
import type { Socket } from "node:net";
import { type LeanRequest, wholeBodyOf } from "./lean_contract.ts";
import { asNodeBuffer, leanRequest } from "./node_request.ts";
import { handOff } from "./node_socket.ts";
import { onBun, timeLaterHeads } from "./node_bun.ts";
import type { BindAddress, ConnectionServer, ServeHttpOptions } from "./types.ts";

/**
 * The HTTP/1.1 server the first-bytes switch hands HTTP/1.1 connections to. node:http is
 * given each socket itself (`_bound` is Deno's concern: it pipes to a server beside it).
 *
 * @example
 * ```ts
 * import { createHttp1Server } from "./node_http1.ts";
 *
 * const http1 = createHttp1Server({
 *   address: { kind: "tcp", hostname: "127.0.0.1", port: 0 },
 *   handler: () => Promise.resolve({ status: 204 }),
 *   onError: (error) => console.error(error),
 *   headerTimeoutMs: 10_000,
 * }, { kind: "tcp", hostname: "127.0.0.1", port: 8080 });
 * await http1.shutdown();
 * ```
 */
export function createHttp1Server(
  options: ServeHttpOptions,
  _bound: BindAddress,
): ConnectionServer {
  const sockets = new Set<Socket>();
  let inFlight = 0;
  const whenIdle = new Set<() => void>();

  const onRequest = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ) => {
    inFlight++;
    // Not the promise below: for HTTP/1.1 it waits for an "end" event that
    // http.ServerResponse never emits.
    res.once("close", () => {
      inFlight--;
      if (inFlight === 0) { for (const resolve of whenIdle) resolve(); }
    });
    let request: LeanRequest;
    try {
      request = leanRequest(req, res);
    } catch (error) {
      // An HTTP/1.0 request without Host, say: thrown here it would end the process.
      options.onError(error);
      res.writeHead(400, { "content-type": "text/plain" }).end("bad request\n");
      return;
    }
    options.handler(request)
      .then((response) => {
        const whole = wholeBodyOf(response.body);
        if (!whole) {
          return connectNode().then((m) => m.universalResponseToNodeResponse(response, res));
        }
        // The whole body is at hand: no need to stream it through an iterator.
        res.statusCode = response.status;
        response.header?.forEach((value, key) => res.setHeader(key, value));
        if (response.trailer) {
          const trailer: Record<string, string> = {};
          response.trailer.forEach((value, key) => trailer[key] = value);
          res.addTrailers(trailer);
        }
        res.end(asNodeBuffer(whole));
      })
      .catch((error) => {
        options.onError(error);
        if (!res.headersSent) {
          res.statusCode = 500;
          res.setHeader("content-type", "text/plain");
          res.end("internal error\n");
        } else {
          res.destroy();
        }
      });
  };
  const h1 = http.createServer({
    connectionsCheckingInterval: Math.min(30_000, options.headerTimeoutMs),
    // Only the header timeout: a body may take as long as its call does.
    requestTimeout: 0,
  }, onRequest);
  // Later requests on a keep-alive HTTP/1.1 connection get Node's own header timeout.
  h1.headersTimeout = options.headerTimeoutMs;
  const firstRequestTimers = new WeakMap<Socket, ReturnType<typeof setTimeout>>();
  h1.on("request", (req: http.IncomingMessage) => clearTimeout(firstRequestTimers.get(req.socket)));
  if (onBun) timeLaterHeads(h1, options.headerTimeoutMs);
  // node:http checks its header timeout from "listening" on (until close()): it is fed
  // connections by hand here, so it never hears it otherwise.
  h1.emit("listening");
  return {
    serve(stream, first, deadline) {
      // node:http reads bytes put back from the stream before the native handle's.
      const socket = handOff(stream, first, deadline);
      if (!socket) return;
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      firstRequestTimers.set(socket, deadline);
      h1.emit("connection", socket);
      socket.resume();
    },
    async shutdown() {
      // Stops its timeout checks and closes its idle keep-alive connections.
      h1.close();
      // Requests in flight finish.
      if (inFlight > 0) await new Promise<void>((resolve) => whenIdle.add(resolve));
      // Idle keep-alive sockets (and silent ones) would hold the process open.
      for (const socket of sockets) socket.destroy();
    },
  };
}

let connectNodeModule: Promise<typeof import("@connectrpc/connect-node")> | undefined;

/**
 * connect-node, loaded when first needed (a guest's streamed HTTP/1.1 answer): imported
 * up front it slowed every Node plugin's start.
 */
function connectNode(): Promise<typeof import("@connectrpc/connect-node")> {
  return (connectNodeModule ??= import("@connectrpc/connect-node"));
}
