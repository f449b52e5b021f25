/**
 * The Node side of the runtime seam: the npm build uses this file in place of
 * `deno.ts`, and it exports the same names. Servers run on node:http2 (h2c with
 * HTTP/1.1 beside it) and can send trailers, so a Node guest serves gRPC too.
 *
 * @module
 */
import process from "node:process";
import { spawn } from "node:child_process";
import { chmod, mkdir, readFile, realpath, rm, writeFile } from "node:fs/promises";
import * as http from "node:http";
import * as http2 from "node:http2";
import { connect as connectUnix, createServer as createNetServer, type Socket } from "node:net";
import { Duplex, type Readable } from "node:stream";
import {
  createNodeHttpClient,
  Http2SessionManager,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { BindAddress } from "../bind.ts";
import { type WholeBody, wholeBody } from "../fast_unary.ts";
import type {
  Child,
  HttpServer,
  PluginHttpClient,
  ProcessExit,
  ServeHttpOptions,
  SpawnChildOptions,
} from "./types.ts";

export type * from "./types.ts";

/** The runtime this build of the library runs on. */
export const runtimeName: "deno" | "node" = "node";

/** The process's command-line arguments, without the executable and script. */
export function processArgs(): string[] {
  return process.argv.slice(2);
}

/** A snapshot of the environment. */
export function processEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined) env[key] = value;
  }
  return env;
}

/**
 * Ends the process with `code` once stdout and stderr are flushed: writes to a full
 * pipe are queued in Node, and `process.exit` would drop them (a plugin's last log
 * lines, seen lost here).
 */
export async function exitProcess(code: number): Promise<never> {
  await Promise.all(
    [process.stdout, process.stderr].map((stream) =>
      stream.writableLength === 0 ? undefined : new Promise<void>((resolve) => {
        stream.once("drain", resolve);
        stream.once("error", resolve);
        stream.once("close", resolve);
      })
    ),
  );
  process.exit(code);
}

/** The live parent pid: it changes (to 1 or a subreaper) when the parent dies. */
export function parentPid(): number {
  return process.ppid;
}

/** Writes `text` to stderr (synchronous for files, pipes and terminals on Linux). */
export function writeStderr(text: string): void {
  process.stderr.write(text);
}

/** Writes `text` to stdout. */
export function writeStdout(text: string): void {
  process.stdout.write(text);
}

/** Whether stderr is a terminal (colour is only used there). */
export function stderrIsTerminal(): boolean {
  return process.stderr.isTTY === true;
}

/** Whether stdout is a terminal. */
export function stdoutIsTerminal(): boolean {
  return process.stdout.isTTY === true;
}

/**
 * Calls `onSignal` with the signal's name on SIGINT or SIGTERM. Returns a function
 * that removes the listeners.
 */
export function onTerminationSignal(
  onSignal: (signal: "SIGINT" | "SIGTERM") => void,
): () => void {
  const onInt = () => onSignal("SIGINT");
  const onTerm = () => onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return () => {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  };
}

/** Runs `callback` every `ms` without keeping the process alive; returns a canceller. */
export function everyUnref(ms: number, callback: () => void): () => void {
  const id = setInterval(callback, ms);
  id.unref();
  return () => clearInterval(id);
}

/** Whether this runtime's HTTP server can send HTTP trailers, which gRPC needs. */
export const serverSendsTrailers: boolean = true;

/**
 * Serves h2c (prior knowledge) and HTTP/1.1 on one port, through connect-node.
 * node:http2's `allowHTTP1` only works with TLS on Node 20, so each connection's
 * first bytes choose: the HTTP/2 preface goes to node:http2, anything else to
 * node:http.
 */
export async function serveHttp(options: ServeHttpOptions): Promise<HttpServer> {
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<Socket>();
  let inFlight = 0;
  let stopping = false;
  const whenIdle = new Set<() => void>();

  const onRequest = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => {
    inFlight++;
    // Not the promise below: for HTTP/1.1 it waits for an "end" event that
    // http.ServerResponse never emits.
    res.once("close", () => {
      inFlight--;
      if (inFlight === 0) { for (const resolve of whenIdle) resolve(); }
    });
    const request = universalRequestFromNodeRequest(req, res, undefined, undefined);
    options.handler(request)
      .then((response) => {
        const whole = (response.body as Partial<WholeBody> | undefined)?.[wholeBody];
        if (!whole) return universalResponseToNodeResponse(response, res);
        // The whole body is at hand: no need to stream it through an iterator.
        res.statusCode = response.status;
        response.header?.forEach((value, key) => res.setHeader(key, value));
        res.end(whole);
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
  const h2 = http2.createServer({}, onRequest);
  const h1 = http.createServer(
    { connectionsCheckingInterval: Math.min(30_000, options.headerTimeoutMs) },
    onRequest,
  );
  // Later requests on a keep-alive HTTP/1.1 connection get Node's own header timeout.
  h1.headersTimeout = options.headerTimeoutMs;
  let newestSession: http2.ServerHttp2Session | undefined;
  h2.on("session", (session) => {
    newestSession = session;
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    if (stopping) session.close();
  });
  const firstRequestTimers = new WeakMap<Socket, ReturnType<typeof setTimeout>>();
  h1.on("request", (req: http.IncomingMessage) => clearTimeout(firstRequestTimers.get(req.socket)));
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.setNoDelay(true);
    // Slowloris: the first request's headers must all be in before the deadline.
    const deadline = setTimeout(() => socket.destroy(), options.headerTimeoutMs);
    firstRequestTimers.set(socket, deadline);
    socket.once("close", () => clearTimeout(deadline));
    socket.once("data", (first: Buffer) => {
      socket.pause();
      if (startsLikeHttp2(first)) {
        h2.emit("connection", withFirstChunk(socket, first));
        // node:http2 announces the session synchronously, so this one is ours.
        newestSession?.once("stream", () => clearTimeout(deadline));
      } else {
        socket.unshift(first);
        h1.emit("connection", socket);
        socket.resume();
      }
    });
  });
  const finished = new Promise<void>((resolve) => server.once("close", () => resolve()));

  const { address } = options;
  const where = address.kind === "unix" ? address.path : `${address.hostname}:${address.port}`;
  // A socket file left by an earlier run would make the bind fail.
  if (address.kind === "unix") await rm(address.path, { force: true });
  return new Promise((resolve, reject) => {
    server.once("error", (error: Error) => {
      reject(new Error(`cannot listen on ${where}: ${error.message}`, { cause: error }));
    });
    const onListening = async () => {
      let bound: BindAddress = address;
      if (address.kind === "unix") {
        await chmod(address.path, 0o600);
      } else {
        const info = server.address();
        const port = typeof info === "object" && info ? info.port : address.port;
        bound = { ...address, port };
      }
      resolve({
        address: bound,
        finished,
        async shutdown() {
          stopping = true;
          server.close();
          // GOAWAY to every HTTP/2 client; streams in flight still finish.
          for (const session of sessions) session.close();
          if (inFlight > 0) await new Promise<void>((r) => whenIdle.add(r));
          // Idle HTTP/1.1 keep-alive sockets would hold the server open forever.
          for (const socket of sockets) socket.destroy();
          await finished;
        },
      });
    };
    if (address.kind === "unix") server.listen(address.path, onListening);
    else server.listen(address.port, address.hostname, onListening);
  });
}

/**
 * The socket as a JS stream that yields `first` before the rest. node:http2 reads a
 * net.Socket through its native handle, which would skip bytes already read (and
 * node:http's reader would too, but it picks up unshifted data; node:http2 does not).
 */
function withFirstChunk(socket: Socket, first: Buffer): Duplex {
  const duplex = new Duplex({
    read: () => void socket.resume(),
    write: (chunk, encoding, callback) => void socket.write(chunk, encoding, callback),
    final: (callback) => void socket.end(callback),
    destroy: (error, callback) => {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  duplex.push(first);
  socket.on("data", (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.once("end", () => duplex.push(null));
  socket.once("error", (error) => duplex.destroy(error));
  socket.once("close", () => duplex.destroy());
  return duplex;
}

const HTTP2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

function startsLikeHttp2(first: Buffer): boolean {
  const n = Math.min(first.length, HTTP2_PREFACE.length);
  return first.subarray(0, n).toString("latin1") === HTTP2_PREFACE.slice(0, n);
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

/**
 * Starts a process in a new process group (and session), stdin closed and
 * stdout/stderr piped, so that signalling the group reaches its children too.
 */
export function spawnChild(options: SpawnChildOptions): Promise<Child> {
  const child = spawn(options.exe, [...options.args], {
    env: options.env,
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  return new Promise((resolve, reject) => {
    child.once("error", (error: NodeJS.ErrnoException) => {
      const why = error.code === "ENOENT"
        ? "no such file or directory"
        : error.code === "EACCES"
        ? "permission denied"
        : error.message;
      reject(new Error(`cannot run ${options.exe}: ${why}`, { cause: error }));
    });
    child.once("spawn", () => {
      resolve({
        pid: child.pid!,
        stdout: webStreamOf(child.stdout!),
        stderr: webStreamOf(child.stderr!),
        exited,
      });
    });
  });
}

/**
 * A web stream of a child's output. Not `Readable.toWeb`: on Node 20 its reading
 * stalled here on a 3 MiB line until the child exited.
 */
function webStreamOf(output: Readable): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      output.on("data", (chunk: Buffer) => {
        controller.enqueue(chunk);
        if ((controller.desiredSize ?? 1) <= 0) output.pause();
      });
      output.once("end", () => controller.close());
      output.once("error", (error) => controller.error(error));
    },
    pull: () => void output.resume(),
    cancel: () => void output.destroy(),
  }, { highWaterMark: 16 });
}

/** Sends `signal` to every process in group `pgid`; false if there was none left. */
export function signalGroup(pgid: number, signal: "SIGTERM" | "SIGKILL"): boolean {
  return signalPid(-pgid, signal);
}

/** Sends `signal` to `pid`; false if there is no such process. */
export function signalPid(pid: number, signal: "SIGTERM" | "SIGKILL"): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

/** The command line of a live process (Linux /proc), or undefined if it is gone. */
export async function processCommandLine(pid: number): Promise<string[] | undefined> {
  const raw = await readTextFile(`/proc/${pid}/cmdline`);
  if (!raw) return undefined; // gone, or a zombie (which has no command line)
  return raw.replace(/\0$/, "").split("\0");
}

/** The real path of `path`, or `path` itself if it cannot be resolved. */
export async function realPath(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return path;
  }
}

/** Creates `path` (and parents) with `mode` if missing, and sets its mode. */
export async function makeDirectory(path: string, mode: number): Promise<void> {
  await mkdir(path, { recursive: true, mode });
  await chmod(path, mode);
}

/** Reads a text file, or undefined if it does not exist. */
export async function readTextFile(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Writes a text file. */
export async function writeTextFile(path: string, text: string): Promise<void> {
  await writeFile(path, text);
}

/** Removes a file if it exists. */
export async function removeFile(path: string): Promise<void> {
  await rm(path, { force: true });
}

/**
 * An h2c client for `baseUrl` on node:http2 (connect-node's), over TCP or the unix
 * socket `socketPath`, for every protocol.
 */
export function openHttpClient(
  baseUrl: URL,
  _forGrpc: boolean,
  socketPath?: string,
): PluginHttpClient {
  const sessions = new Http2SessionManager(
    baseUrl,
    undefined,
    socketPath ? { createConnection: () => connectUnix(socketPath) } : undefined,
  );
  return {
    client: createNodeHttpClient({ httpVersion: "2", sessionProvider: () => sessions }),
    close: () => sessions.abort(),
    async post(url, header, body, signal) {
      const { pathname, search } = new URL(url);
      const headers: http2.OutgoingHttpHeaders = {};
      header.forEach((value, key) => (headers[key] = value));
      const stream = await sessions.request("POST", pathname + search, headers, {});
      return await new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        let status = 0;
        const responseHeader = new Headers();
        const onAbort = () => stream.close(http2.constants.NGHTTP2_CANCEL);
        signal?.addEventListener("abort", onAbort, { once: true });
        const settle = () => signal?.removeEventListener("abort", onAbort);
        stream.once("response", (h) => {
          status = Number(h[":status"]);
          for (const [key, value] of Object.entries(h)) {
            if (key.startsWith(":") || value === undefined) continue;
            responseHeader.set(key, Array.isArray(value) ? value.join(", ") : String(value));
          }
        });
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.once("end", () => {
          settle();
          // A stream cancelled or cut off before any response ends without a status.
          if (status === 0) reject(new Error("the HTTP/2 stream ended without a response"));
          else resolve({ status, header: responseHeader, body: Buffer.concat(chunks) });
        });
        stream.once("error", (error) => {
          settle();
          reject(error);
        });
        stream.once("close", () => {
          settle();
          // After "end" this does nothing; otherwise the stream was reset under us.
          reject(new Error(`HTTP/2 stream closed with code ${stream.rstCode}`));
        });
        stream.end(body);
      });
    },
  };
}
