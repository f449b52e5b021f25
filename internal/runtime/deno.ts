/**
 * The Deno side of the runtime seam: the only place in the library that touches
 * `Deno.*`. `#runtime` names this module under Deno (deno.json's `imports`); the npm
 * build names `node.ts`, which exports the same names. This file holds the process, its
 * environment, signals, files and children; sockets, the native server and the HTTP/1.1
 * backend have their own files, re-exported here.
 *
 * @module
 */
import { explainPermission } from "./deno_permission.ts";
import type { Child, SpawnChildOptions } from "./types.ts";

export type * from "./types.ts";
export { allocatePort, connectSocket, listen } from "./deno_socket.ts";
export { makePrivateTempDir, removeTree } from "./deno_temp.ts";
export { serveNative } from "./deno_serve.ts";
export { createHttp1Server } from "./deno_http1.ts";
export { processInfo } from "./deno_process.ts";
export { isExecutableFile, sha256File } from "./deno_digest.ts";

/** Node's module compile cache: Deno keeps its own code cache, so there is nothing to do. */
export function enableCompileCache(): void {}

/** `node:util`'s `parseArgs` (node.ts says why it comes through the seam). */
export { parseArgs } from "node:util";

/** The runtime this build of the library runs on. */
export const runtimeName: "deno" | "node" = "deno";

/** The process's command-line arguments, without the executable and script. */
export function processArgs(): string[] {
  return [...Deno.args];
}

/** A snapshot of the environment; needs `--allow-env`. */
export function processEnv(): Record<string, string> {
  try {
    return Deno.env.toObject();
  } catch (error) {
    throw explainPermission(error, "--allow-env", "read the environment");
  }
}

/** Ends the process with `code` once stdout and stderr are flushed. */
export function exitProcess(code: number): Promise<never> {
  // Output is written synchronously here, so nothing is pending.
  Deno.exit(code);
}

/** This process's pid. */
export function ownPid(): number {
  return Deno.pid;
}

/** The live parent pid: it changes (to 1 or a subreaper) when the parent dies. */
export function parentPid(): number {
  return Deno.ppid;
}

/** Writes all of `text` to stderr, synchronously so lines never interleave. */
export function writeStderr(text: string): void {
  writeAllSync(Deno.stderr, text);
}

/** Writes all of `text` to stdout, synchronously. */
export function writeStdout(text: string): void {
  writeAllSync(Deno.stdout, text);
}

/** Whether stderr is a terminal (colour is only used there). */
export function stderrIsTerminal(): boolean {
  return Deno.stderr.isTerminal();
}

const encoder = new TextEncoder();

function writeAllSync(
  stream: { writeSync(p: Uint8Array): number },
  text: string,
): void {
  let bytes = encoder.encode(text);
  try {
    while (bytes.length > 0) {
      const written = stream.writeSync(bytes);
      bytes = bytes.subarray(written);
    }
  } catch (error) {
    // Nobody reads any more (a detached plugin whose host is gone): the line is lost,
    // the process lives on, as console.log does.
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
  }
}

/**
 * Lets writes to a stdout or stderr nobody reads any more fail quietly, not end the
 * process. Deno's writes already do (ours catch BrokenPipe).
 */
export function ignoreBrokenPipes(): void {}

/**
 * Calls `onSignal` with the signal's name on SIGINT or SIGTERM. Returns a function
 * that removes the listeners.
 */
export function onTerminationSignal(
  onSignal: (signal: "SIGINT" | "SIGTERM") => void,
): () => void {
  const listeners = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const listener = () => onSignal(signal);
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });
  return () => {
    for (const [signal, listener] of listeners) {
      Deno.removeSignalListener(signal, listener);
    }
  };
}

/** Runs `callback` every `ms` without keeping the process alive; returns a canceller. */
export function everyUnref(ms: number, callback: () => void): () => void {
  const id = setInterval(callback, ms);
  Deno.unrefTimer(id);
  return () => clearInterval(id);
}

/**
 * Whether this runtime's native HTTP server can send HTTP trailers, which gRPC needs.
 * `Deno.serve` cannot; the engine (`server: "engine"`) can.
 */
export const serverSendsTrailers: boolean = false;

/**
 * Starts a process in a new process group (and session), stdin closed and
 * stdout/stderr piped, so that signalling the group reaches its children too.
 */
export function spawnChild(options: SpawnChildOptions): Promise<Child> {
  let process: Deno.ChildProcess;
  try {
    process = new Deno.Command(options.exe, {
      args: [...options.args],
      env: options.env,
      clearEnv: true,
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return Promise.reject(
        new Error(`cannot run ${options.exe}: no such file or directory`, { cause: error }),
      );
    }
    return Promise.reject(explainPermission(error, "--allow-run", `run ${options.exe}`));
  }
  return Promise.resolve({
    pid: process.pid,
    stdout: process.stdout,
    stderr: process.stderr,
    exited: process.status.then((s) => ({
      code: s.signal === null ? s.code : null,
      signal: s.signal,
    })),
  });
}

/** Sends `signal` to every process in group `pgid`; false if there was none left. */
export function signalGroup(pgid: number, signal: "SIGTERM" | "SIGKILL"): boolean {
  return signalPid(-pgid, signal);
}

/** Sends `signal` to `pid`; false if there is no such process. */
export function signalPid(pid: number, signal: "SIGTERM" | "SIGKILL"): boolean {
  try {
    Deno.kill(pid, signal);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw explainPermission(error, "--allow-run", `signal process ${pid}`);
  }
}

/** The real path of `path`, or `path` itself if it cannot be resolved. */
export async function realPath(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return path;
  }
}

/** Creates `path` (and parents) with `mode` if missing, and sets its mode. */
export async function makeDirectory(path: string, mode: number): Promise<void> {
  try {
    await Deno.mkdir(path, { recursive: true, mode });
    await Deno.chmod(path, mode);
  } catch (error) {
    throw explainPermission(error, "--allow-write", `create ${path}`);
  }
}

/** Reads a text file, or undefined if it does not exist. */
export async function readTextFile(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw explainPermission(error, "--allow-read", `read ${path}`);
  }
}

/** Writes a text file. */
export async function writeTextFile(path: string, text: string): Promise<void> {
  try {
    await Deno.writeTextFile(path, text);
  } catch (error) {
    throw explainPermission(error, "--allow-write", `write ${path}`);
  }
}

/** Removes a file if it exists. */
export async function removeFile(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw explainPermission(error, "--allow-write", `remove ${path}`);
  }
}

/**
 * Writes a file only its owner can read (mode 0600), replacing any file at `path`:
 * removed first, then created anew, so that an old file's wider mode (or a link put
 * there) is never reused.
 */
export async function writeSecretFile(path: string, text: string): Promise<void> {
  try {
    await removeFile(path);
    await Deno.writeTextFile(path, text, { createNew: true, mode: 0o600 });
  } catch (error) {
    throw explainPermission(error, "--allow-write", `write ${path}`);
  }
}

/** All of stdin as text (for a CLI reading a message from a pipe). */
export async function readStdinText(): Promise<string> {
  return await new Response(Deno.stdin.readable).text();
}

/** Whether the module with this `import.meta` is the program being run. */
export function isMainModule(meta: ImportMeta): boolean {
  // Not Deno.mainModule: under `deno test` that is the module being tested.
  return meta.main === true;
}

/** Whether stdout is a terminal. */
export function stdoutIsTerminal(): boolean {
  return Deno.stdout.isTerminal();
}
