/**
 * The Node side of the runtime seam: the npm build's package.json `imports` point
 * `#runtime` here instead of at `deno.ts`, and it exports the same names. This file
 * holds the process, its environment, signals, files and children; sockets, the native
 * server (node:http2) and the HTTP/1.1 backend (node:http) have their own files,
 * re-exported here. Both servers send trailers, so a Node guest serves gRPC on either.
 *
 * @module
 */
import module from "node:module";
import process from "node:process";
import { spawn } from "node:child_process";
import { chmod, mkdir, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { mkdirSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import type { Readable } from "node:stream";
import type {
  BindAddress,
  Child,
  ConnectionServer,
  HttpServer,
  ProcessExit,
  ServeHttpOptions,
  SpawnChildOptions,
  SwitchedServe,
} from "./types.ts";

export type * from "./types.ts";
export { allocatePort, connectSocket, listen } from "./node_net.ts";
export { processInfo } from "./node_process.ts";
export { makePrivateTempDir, removeTree } from "./node_temp.ts";
export { isExecutableFile, sha256File } from "./node_digest.ts";

// node:http2 and node:http are loaded when first needed, not with the guest: loading
// them was a large share of a Node plugin's start, and most plugins never need them
// (the engine answers HTTP/2; HTTP/1.1 comes from curl and browsers).

/** node:http2 as the native server, behind the first-bytes switch (see node_http2.ts). */
export async function serveNative(
  options: ServeHttpOptions,
  switched: SwitchedServe,
): Promise<HttpServer> {
  const { serveNative } = await import("./node_http2.ts");
  return await serveNative(options, switched);
}

/**
 * node:http as the HTTP/1.1 backend (see node_http1.ts), created on the first HTTP/1.1
 * connection; connections arriving meanwhile wait for the same one.
 */
export function createHttp1Server(options: ServeHttpOptions, bound: BindAddress): ConnectionServer {
  let server: Promise<ConnectionServer> | undefined;
  const load = () =>
    server ??= import("./node_http1.ts").then((m) => m.createHttp1Server(options, bound));
  return {
    serve(socket, first, deadline) {
      load().then((http1) => http1.serve(socket, first, deadline), (error) => {
        clearTimeout(deadline);
        socket.close();
        options.onError(error);
      });
    },
    async shutdown() {
      // A backend that failed to load has nothing to shut down.
      await (await server?.catch(() => undefined))?.shutdown();
    },
  };
}

/** The runtime this build of the library runs on. */
export const runtimeName: "deno" | "node" = "node";

/**
 * Turns on Node's module compile cache (Node 22.1 and later) where Node puts it by default,
 * under the temporary directory, for an application's entry point: later starts skip
 * compiling the modules it loads. Where Node lacks it, `NODE_COMPILE_CACHE` already chose,
 * or the directory cannot be made or written, nothing happens: a cache never fails the
 * program.
 */
export function enableCompileCache(): void {
  const enable = (module as { enableCompileCache?: (dir: string) => unknown }).enableCompileCache;
  if (!enable || process.env.NODE_COMPILE_CACHE) return;
  const dir = `${tmpdir()}/node-compile-cache`;
  try {
    // Not recursive, and not left to Node: its recursive mkdir never returns under /proc
    // (seen with TMPDIR there), and a temporary directory that is missing means no cache.
    mkdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") return;
  }
  try {
    enable(dir);
  } catch {
    // Without the cache the program is only slower.
  }
}

/**
 * `node:util`'s `parseArgs`, required rather than imported: importing node:util as a
 * module builds its whole module namespace, a measurable share of the CLI's `--help`.
 */
export const parseArgs: typeof import("node:util").parseArgs =
  module.createRequire(import.meta.url)("node:util").parseArgs;

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

/** This process's pid. */
export function ownPid(): number {
  return process.pid;
}

/** The live parent pid: it changes (to 1 or a subreaper) when the parent dies. */
export function parentPid(): number {
  return process.ppid;
}

/** Writes `text` to stderr (synchronous for files, pipes and terminals on Linux). */
export function writeStderr(text: string): void {
  ignoreBrokenPipe(process.stderr).write(text);
}

/** Writes `text` to stdout. */
export function writeStdout(text: string): void {
  ignoreBrokenPipe(process.stdout).write(text);
}

/**
 * Lets writes to a stdout or stderr nobody reads any more fail quietly (EPIPE is
 * otherwise an unhandled 'error' event, which ends the process): a detached plugin
 * outlives the host that read them.
 */
export function ignoreBrokenPipes(): void {
  ignoreBrokenPipe(process.stdout);
  ignoreBrokenPipe(process.stderr);
}

const guarded = new WeakSet<NodeJS.WriteStream>();

function ignoreBrokenPipe(stream: NodeJS.WriteStream): NodeJS.WriteStream {
  if (guarded.has(stream)) return stream;
  guarded.add(stream);
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
  });
  return stream;
}

/** Whether stderr is a terminal (colour is only used there). */
export function stderrIsTerminal(): boolean {
  return process.stderr.isTTY === true;
}

/** All of stdin as text (for a CLI reading a message from a pipe). */
export async function readStdinText(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Whether the module with this `import.meta` is the program being run. */
export function isMainModule(meta: ImportMeta): boolean {
  // import.meta.main arrived in Node 24.2; before it, compare with the script run.
  const main = (meta as { main?: unknown }).main;
  if (typeof main === "boolean") return main;
  const script = process.argv[1];
  if (!script) return false;
  try {
    // npm runs a bin through a symlink in node_modules/.bin.
    return realpathSync(script) === realpathSync(fileURLToPath(meta.url));
  } catch {
    return false;
  }
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

/** Whether this runtime's native HTTP server can send HTTP trailers, which gRPC needs. */
export const serverSendsTrailers: boolean = true;

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
 * Writes a file only its owner can read (mode 0600), replacing any file at `path`:
 * removed first, then created anew, so that an old file's wider mode (or a link put
 * there) is never reused.
 */
export async function writeSecretFile(path: string, text: string): Promise<void> {
  await rm(path, { force: true });
  await writeFile(path, text, { flag: "wx", mode: 0o600 });
}
