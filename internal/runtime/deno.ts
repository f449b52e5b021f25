/**
 * The Deno side of the runtime seam: the only place in the library that touches
 * `Deno.*`. The npm build swaps this file for `node.ts`, which exports the same names.
 *
 * @module
 */

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

/** Ends the process at once with `code`. */
export function exitProcess(code: number): never {
  Deno.exit(code);
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
  while (bytes.length > 0) {
    const written = stream.writeSync(bytes);
    bytes = bytes.subarray(written);
  }
}

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

/** A fetch-style handler; `signal` aborts when the call is over or the client left. */
export type HttpHandler = (
  request: Request,
  signal: AbortSignal,
) => Response | Promise<Response>;

/** What {@linkcode serveHttp} needs. */
export interface ServeHttpOptions {
  /** Address to listen on: TCP host and port (0 = any free port). */
  hostname: string;
  /** TCP port; 0 lets the system choose. */
  port: number;
  /** Answers every request. */
  handler: HttpHandler;
  /** Turns a handler's throw into a response (it must not throw). */
  onError: (error: unknown) => Response;
}

/** A listening HTTP server. */
export interface HttpServer {
  /** The host the server listens on. */
  readonly hostname: string;
  /** The port the server listens on (the chosen one when 0 was asked for). */
  readonly port: number;
  /** Stops accepting and resolves once every in-flight request has finished. */
  shutdown(): Promise<void>;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
}

/**
 * Serves HTTP/1.1 and h2c (prior knowledge) with `Deno.serve`.
 *
 * The handler never sees `request.signal`: reading it makes Deno print a one-time
 * warning, so the per-call signal comes from the handler info's `completed` promise.
 */
export function serveHttp(options: ServeHttpOptions): Promise<HttpServer> {
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      // Deno.serve prints "Listening on …" to stdout unless told otherwise.
      onListen: () => {},
      onError: options.onError,
    }, (request, info) => {
      const call = new AbortController();
      info.completed.then(
        () => call.abort(),
        (error) => call.abort(error),
      );
      return options.handler(request, call.signal);
    });
  } catch (error) {
    const where = `${options.hostname}:${options.port}`;
    return Promise.reject(explainPermission(error, "--allow-net", `listen on ${where}`));
  }
  return Promise.resolve({
    hostname: server.addr.hostname,
    port: server.addr.port,
    shutdown: () => server.shutdown(),
    finished: server.finished,
  });
}

/** Turns Deno's permission error into one that names the missing flag. */
function explainPermission(error: unknown, flag: string, what: string): unknown {
  if (error instanceof Deno.errors.NotCapable) {
    return new Error(
      `permission denied: run Deno with ${flag} to ${what} (${error.message})`,
      { cause: error },
    );
  }
  return error;
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Another process can take it
 * before the caller binds it: the race every "find a free port" helper has.
 */
export function allocatePort(): number {
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  } catch (error) {
    throw explainPermission(error, "--allow-net", "find a free port");
  }
  const { port } = listener.addr;
  listener.close();
  return port;
}
