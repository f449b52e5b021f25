/**
 * The guest half: a plugin serving its Connect service on the address its host gave
 * it in `FTL_BIND`.
 *
 * - {@linkcode start} is a plugin's `main`: config from flags and env, JSON logs on
 *   stderr, graceful exit on SIGINT/SIGTERM or when the host dies. It never returns.
 * - {@linkcode serve} is the same server without the process wiring, for tests and
 *   embedding; it returns a handle.
 *
 * @example A complete plugin
 * ```ts
 * import { field, start } from "@ftl-ts/plugin/guest";
 * import { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * // start() takes over the process: run it only as the main module, as a host does.
 * if (import.meta.main) {
 *   await start({
 *     name: "echo",
 *     service: EchoService,
 *     config: { greeting: field.string({ env: "ECHO_GREETING", default: "hello" }) },
 *     create: (_ctx, config) => ({
 *       ping: () => ({}),
 *       echo: (req) => ({ message: `${config.greeting} ${req.message}` }),
 *       async *count() {},
 *       fail: () => ({}),
 *     }),
 *   });
 * }
 * ```
 *
 * @module
 */
import type { DescService } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { bindUrl, parseBindUrl } from "./internal/bind.ts";
import {
  ConfigError,
  type ConfigSpec,
  type ConfigValue,
  field,
  formatUsage,
  parseConfig,
} from "./internal/config.ts";
import {
  errorText,
  LOG_LEVEL_NAMES,
  Logger,
  LogLevel,
  type LogLevelName,
  parseLogLevel,
} from "./internal/log.ts";
import { createPluginHandler, type ExtraHandler } from "./internal/router.ts";
import { hostClients } from "./internal/host_client.ts";
import {
  everyUnref,
  exitProcess,
  ignoreBrokenPipes,
  onTerminationSignal,
  parentPid,
  processArgs,
  processEnv,
  serverSendsTrailers,
  writeStderr,
  writeStdout,
} from "#runtime";
import { defaultServer, serveHttp, settledWithin } from "./internal/server/serve.ts";
import type { PingableService } from "./internal/plugin.ts";
import type { HttpServerKind } from "./internal/runtime/types.ts";

export { field } from "./internal/config.ts";
export type {
  ConfigSpec,
  ConfigValue,
  Field,
  FieldBuilders,
  FieldKind,
  FieldOptions,
  HasValue,
} from "./internal/config.ts";
export { Logger, LogLevel, parseLogLevel } from "./internal/log.ts";
export type { LogEntry, LogFormat, LoggerOptions, LogLevelName } from "./internal/log.ts";
export type { ExtraHandler } from "./internal/router.ts";
export type { HttpServerKind } from "./internal/runtime/types.ts";
export type { PingableService } from "./internal/plugin.ts";
export {
  type PingRequest,
  PingRequestSchema,
  type PingResponse,
  PingResponseSchema,
} from "./gen/xyz/block/ftl/v1/ftl_pb.ts";

/**
 * The one object implementing the main service and every additional service: a
 * missing method in any of them is a compile error.
 *
 * @example
 * ```ts
 * import type { PluginImpl } from "@ftl-ts/plugin/guest";
 * import type { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * const implementation: PluginImpl<typeof EchoService> = {
 *   ping: () => ({}),
 *   echo: (req) => ({ message: req.message }),
 *   async *count() {},
 *   fail: () => ({}),
 * };
 * ```
 */
export type PluginImpl<
  S extends DescService,
  X extends readonly DescService[] = [],
> = ServiceImpl<S> & ServiceImpls<X>;

/**
 * The intersection of the implementations of every service in `X`.
 *
 * @example
 * ```ts
 * import type { ServiceImpls } from "@ftl-ts/plugin/guest";
 * import type { EchoService } from "./gen/echo/v1/echo_pb.ts";
 * import type { Health } from "./gen/grpc/health/v1/health_pb.ts";
 *
 * type Both = ServiceImpls<[typeof EchoService, typeof Health]>;
 * const check: Both["check"] = () => ({ status: 1 }); // SERVING
 * ```
 */
export type ServiceImpls<X extends readonly DescService[]> = X extends readonly [
  infer Head extends DescService,
  ...infer Rest extends readonly DescService[],
] ? ServiceImpl<Head> & ServiceImpls<Rest>
  // A non-tuple array (`DescService[]`) cannot be checked method by method.
  : X extends readonly [] ? unknown
  : Record<string, unknown>;

/** Default largest request message, as gRPC's default. */
const DEFAULT_READ_MAX_BYTES = 4 * 1024 * 1024;
/** Default time a connection gets to send its first request's headers. */
const DEFAULT_HEADER_TIMEOUT_MS = 30_000;
/** Default time in-flight calls get to finish on shutdown. */
const DEFAULT_GRACE_MS = 5_000;
/** How long cancelled calls get to wind down before shutdown stops waiting. */
const CANCEL_WAIT_MS = 1_000;

/**
 * Options for {@linkcode serve}.
 *
 * @example
 * ```ts
 * import type { ServeOptions } from "@ftl-ts/plugin/guest";
 * import { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * const options: ServeOptions<typeof EchoService> = {
 *   service: EchoService,
 *   implementation: {
 *     ping: () => ({}),
 *     echo: (req) => ({ message: req.message }),
 *     async *count() {},
 *     fail: () => ({}),
 *   },
 *   bind: "http://127.0.0.1:0",
 * };
 * ```
 */
export interface ServeOptions<
  S extends PingableService,
  X extends readonly DescService[] = [],
> {
  /** The plugin's main service; it must have `Ping`. */
  service: S;
  /** More services implemented by the same object. */
  services?: X;
  /** The object implementing `service` and every one of `services`. */
  implementation: PluginImpl<S, X>;
  /** Where to listen: `http://host:port` (port 0 picks a free one) or `unix:///path.sock`. */
  bind: string | URL;
  /** Fetch-style handlers for extra paths, e.g. `{ "/metrics": () => new Response("") }`. */
  handlers?: Record<string, ExtraHandler>;
  /**
   * Where errors thrown by handlers are logged.
   * @default {a JSON logger on stderr at info}
   */
  logger?: Logger;
  /**
   * Largest request message accepted, in bytes; larger ones fail RESOURCE_EXHAUSTED.
   * @default {4_194_304}
   */
  readMaxBytes?: number;
  /**
   * How long {@linkcode PluginServer.shutdown} lets in-flight calls finish before it
   * cancels them, in milliseconds.
   * @default {5_000}
   */
  shutdownGraceMs?: number;
  /** Aborting it shuts the server down gracefully. */
  signal?: AbortSignal;
  /**
   * A connection whose first request's headers are not all in within this many
   * milliseconds is closed (slowloris), as Go's servers do. Honoured by every server but
   * Deno's native one (`server: "native"` on Deno), which has no such setting.
   * @default {30_000}
   */
  headerTimeoutMs?: number;
  /**
   * Which HTTP server answers. On both runtimes a connection's first bytes decide its
   * path: an HTTP/1 request line goes to the runtime's HTTP/1.1 server, anything else is
   * taken as HTTP/2 (prior knowledge).
   *
   * - `"engine"` (the default on Deno and on Node): this package's own HTTP/2 engine
   *   answers h2c, gRPC, Connect and gRPC-Web on one port, with its defences (header and
   *   idle timeouts, stream and header-size limits, flood and rapid-reset guards); a
   *   bad preface gets GOAWAY PROTOCOL_ERROR. HTTP/1.1 goes to `Deno.serve` on Deno
   *   and to node:http on Node.
   * - `"native"`: the runtime's own servers. On Deno that is `Deno.serve` alone, which
   *   cannot send HTTP trailers, so gRPC calls are refused UNIMPLEMENTED (Connect and
   *   gRPC-Web work) and {@linkcode ServeOptions.headerTimeoutMs} is not honoured. On
   *   Node it is node:http2 (nghttp2) for HTTP/2 and node:http for HTTP/1.1; gRPC is
   *   served. The engine measured faster than both (docs/BENCHMARKS.md); `"native"`
   *   stays for comparison and as a fallback.
   * @default {"engine"}
   */
  server?: HttpServerKind;
  /**
   * When set, every call but health checks must carry `authorization: Bearer <token>`
   * or fails UNAUTHENTICATED. {@linkcode start} takes it from `FTL_PLUGIN_TOKEN`.
   */
  token?: string;
}

/**
 * A running plugin server, as {@linkcode serve} returns it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serve } from "@ftl-ts/plugin/guest";
 * import { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * const server = await serve({
 *   service: EchoService,
 *   implementation: {
 *     ping: () => ({}),
 *     echo: (req) => ({ message: req.message }),
 *     async *count() {},
 *     fail: () => ({}),
 *   },
 *   bind: "http://127.0.0.1:0",
 * });
 * assert.notEqual(server.url.port, "0");
 * await server.shutdown({ graceMs: 1_000 });
 * await server.finished;
 * ```
 */
export interface PluginServer {
  /** The URL clients use; its port is the real one when port 0 was asked for. */
  readonly url: URL;
  /**
   * Stops accepting calls, lets in-flight ones finish for up to `graceMs`, then
   * cancels them. Idempotent: later calls return the first call's promise.
   */
  shutdown(options?: { graceMs?: number }): Promise<void>;
  /** Resolves once the server has stopped, however that happened. */
  readonly finished: Promise<void>;
  /** Shuts down with the default grace. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Serves a plugin's services over gRPC, Connect and gRPC-Web (h2c, and HTTP/1.1 for
 * Connect and gRPC-Web) on one address, with `grpc.health.v1.Health` and gRPC server
 * reflection v1 and v1alpha beside them.
 *
 * With `server: "native"` on Deno, gRPC requests get a trailers-only UNIMPLEMENTED
 * answer that says so: `Deno.serve` cannot send HTTP trailers.
 *
 * @param options What to serve and where.
 * @returns The running server.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serve } from "@ftl-ts/plugin/guest";
 * import { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * await using server = await serve({
 *   service: EchoService,
 *   bind: "http://127.0.0.1:0",
 *   implementation: {
 *     ping: () => ({}),
 *     echo: (req) => ({ message: req.message }),
 *     async *count() {},
 *     fail: () => ({}),
 *   },
 * });
 * // A Connect call in JSON: plain HTTP, as curl would make it.
 * const response = await fetch(new URL("/echo.v1.EchoService/Echo", server.url), {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ message: "hi" }),
 * });
 * assert.deepEqual(await response.json(), { message: "hi" });
 * ```
 */
export async function serve<
  S extends PingableService,
  const X extends readonly DescService[] = [],
>(options: ServeOptions<S, X>): Promise<PluginServer> {
  assertPingable(options.service);
  for (
    const [key, value] of Object.entries({
      readMaxBytes: options.readMaxBytes,
      shutdownGraceMs: options.shutdownGraceMs,
      headerTimeoutMs: options.headerTimeoutMs,
    })
  ) {
    const least = key === "shutdownGraceMs" ? 0 : 1;
    if (value !== undefined && !(value >= least)) {
      throw new TypeError(`serve: ${key} must be a number of at least ${least}, not ${value}`);
    }
  }
  const address = parseBindUrl(options.bind);
  const serverKind = options.server ?? defaultServer;
  if (serverKind !== "engine" && serverKind !== "native") {
    throw new TypeError(`serve: server must be "engine" or "native", not ${String(serverKind)}`);
  }
  const logger = options.logger ?? stderrLogger(LogLevel.Info);
  const cancelCalls = new AbortController();
  const implementation: object = options.implementation;
  const handler = createPluginHandler({
    services: [options.service, ...(options.services ?? [])].map((
      desc,
    ) => [desc, implementation] as const),
    handlers: options.handlers,
    logger,
    readMaxBytes: options.readMaxBytes ?? DEFAULT_READ_MAX_BYTES,
    shutdownSignal: cancelCalls.signal,
    // The engine sends trailers on every runtime; a native server only where it can.
    trailers: serverKind === "engine" || serverSendsTrailers,
    token: options.token,
  });
  await warmUp(handler, options.service, options.token);
  const server = await serveHttp({
    address,
    headerTimeoutMs: options.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS,
    handler,
    onError: (error) => logger.error("request failed", error),
    server: serverKind,
  });

  const defaultGrace = options.shutdownGraceMs ?? DEFAULT_GRACE_MS;
  let stopping: Promise<void> | undefined;
  const shutdown = ({ graceMs = defaultGrace } = {}): Promise<void> => {
    stopping ??= stopServer(server.shutdown(), cancelCalls, graceMs, logger);
    return stopping;
  };
  options.signal?.addEventListener("abort", () => shutdown(), { once: true });
  if (options.signal?.aborted) shutdown();
  return {
    url: bindUrl(server.address),
    shutdown,
    finished: server.finished,
    [Symbol.asyncDispose]: () => shutdown(),
  };
}

async function stopServer(
  drained: Promise<void>,
  cancelCalls: AbortController,
  graceMs: number,
  logger: Logger,
): Promise<void> {
  const outcome = (ms: number) => settledWithin(drained, ms);
  if (await outcome(graceMs)) return;
  logger.warn(`calls still running after ${graceMs} ms: cancelling them`);
  cancelCalls.abort(new ConnectError("the plugin is shutting down", Code.Unavailable));
  if (await outcome(CANCEL_WAIT_MS)) return;
  logger.warn("calls ignored cancellation: stopped waiting for them");
}

/**
 * Answers one Ping in memory before listening, so that the host's first real Ping
 * does not pay for compiling the request path, which is on the critical path of
 * readiness. A failure here is the real Ping's to report.
 */
async function warmUp(
  handler: ReturnType<typeof createPluginHandler>,
  service: DescService,
  token: string | undefined,
): Promise<void> {
  const header = new Headers({
    "content-type": "application/proto",
    "connect-protocol-version": "1",
  });
  if (token !== undefined) header.set("authorization", `Bearer ${token}`);
  try {
    const response = await handler({
      httpVersion: "",
      method: "POST",
      url: `http://warm-up/${service.typeName}/Ping`,
      header,
      body: (async function* () {})(),
      signal: AbortSignal.timeout(1_000),
    });
    if (response.body) { for await (const _ of response.body) { /* drain */ } }
  } catch {
    // The host's Ping will meet the same error and report it.
  }
}

/**
 * Whether the host that started us died before we first read our parent: our host names
 * itself in `FTL_PLUGIN_HOST_PID`, so a parent that is init (pid 1) instead means we were
 * reparented already, and the parent never changes again for the poll to notice. (Under
 * a subreaper the parent is not 1, and this cannot tell; other hosts set no variable.)
 */
function hostGoneBeforeStart(hostPid: string | undefined, firstParent: number): boolean {
  if (hostPid === undefined || !/^[1-9][0-9]*$/.test(hostPid)) return false;
  return firstParent === 1 && Number(hostPid) !== 1;
}

function assertPingable(service: DescService): void {
  const ping = service.methods.find((m) => m.name === "Ping");
  if (ping?.input.typeName !== "xyz.block.ftl.v1.PingRequest") {
    throw new TypeError(
      `${service.typeName} has no Ping(xyz.block.ftl.v1.PingRequest): a plugin's main service needs it`,
    );
  }
}

function stderrLogger(level: LogLevel): Logger {
  return new Logger({ level, format: "json", write: writeStderr });
}

/**
 * What {@linkcode StartOptions.create} gets besides its config.
 *
 * @example
 * ```ts
 * import type { PluginContext, PluginImpl } from "@ftl-ts/plugin/guest";
 * import type { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * function create(ctx: PluginContext): PluginImpl<typeof EchoService> {
 *   ctx.logger.info("starting", { workingDir: ctx.workingDir ?? "none" });
 *   const seen = new Set<string>();
 *   ctx.signal.addEventListener("abort", () => seen.clear());
 *   return {
 *     ping: () => ({}),
 *     echo: (req) => (seen.add(req.message), { message: req.message }),
 *     async *count() {},
 *     fail: () => ({}),
 *   };
 * }
 * ```
 */
export interface PluginContext {
  /** Aborted when the plugin starts shutting down; the reason says why. */
  readonly signal: AbortSignal;
  /** A JSON logger on stderr scoped with the plugin's name. */
  readonly logger: Logger;
  /** `FTL_WORKING_DIR`, when the host set it. */
  readonly workingDir: string | undefined;
  /** The address the plugin serves on. */
  readonly bind: URL;
  /**
   * A typed client of a service the host serves to this plugin (`spawn()`'s
   * `hostServices`), over the socket in `FTL_HOST_BIND` with the token in
   * `FTL_HOST_TOKEN`. It dials on its first call and closes when the plugin stops.
   *
   * @throws {ConnectError} FAILED_PRECONDITION when the host serves nothing (no
   * `FTL_HOST_BIND`: FTL's Go host, or no `hostServices`).
   */
  host<S extends DescService>(service: S): Client<S>;
}

/**
 * Options for {@linkcode start}.
 *
 * @example
 * ```ts
 * import type { StartOptions } from "@ftl-ts/plugin/guest";
 * import { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * const options: StartOptions<typeof EchoService> = {
 *   name: "echo",
 *   service: EchoService,
 *   shutdownGraceMs: 10_000,
 *   create: () => ({
 *     ping: () => ({}),
 *     echo: (req) => ({ message: req.message }),
 *     async *count() {},
 *     fail: () => ({}),
 *   }),
 * };
 * ```
 */
export interface StartOptions<
  S extends PingableService,
  X extends readonly DescService[] = [],
  C extends ConfigSpec = Record<never, never>,
> {
  /** The plugin's name: the `scope` of its log lines and the program name in usage. */
  name: string;
  /** One line shown under the usage line of `--help`. */
  description?: string;
  /** The plugin's main service; it must have `Ping`. */
  service: S;
  /** More services implemented by the same object. */
  services?: X;
  /** The plugin's own settings, parsed from flags and env beside the built-ins. */
  config?: C;
  /** Builds the implementation; a throw ends the process with exit code 1. */
  create: (
    ctx: PluginContext,
    config: ConfigValue<C>,
  ) => PluginImpl<S, X> | Promise<PluginImpl<S, X>>;
  /** Fetch-style handlers for extra paths. */
  handlers?: Record<string, ExtraHandler>;
  /**
   * Largest request message accepted, in bytes.
   * @default {4_194_304}
   */
  readMaxBytes?: number;
  /**
   * How long in-flight calls may run on after a stop signal, in milliseconds.
   * @default {5_000}
   */
  shutdownGraceMs?: number;
  /**
   * Milliseconds a connection gets to send its first request's headers.
   * @default {30_000}
   */
  headerTimeoutMs?: number;
  /**
   * Which HTTP server answers: see {@linkcode ServeOptions.server}.
   * @default {"engine"}
   */
  server?: HttpServerKind;
}

const logLevelField = field.enum(LOG_LEVEL_NAMES, {
  env: "LOG_LEVEL",
  default: "info",
  group: "Logging",
  placeholder: "LEVEL",
  help:
    "Least severe level logged: trace, debug, info, warn, error or default (info), in any case.",
});
// Listed in the order `--help` shows their groups: Logging, then Built-in.
const builtinConfig = {
  logLevel: {
    ...logLevelField,
    // FTL's host passes its whole environment and its Go parser lowercases, so a
    // LOG_LEVEL=DEBUG meant for the host reaches us and must be understood.
    parse: (raw: string): LogLevelName => {
      const name = raw.trim().toLowerCase();
      return logLevelField.parse(name);
    },
  },
  bind: field.url({
    env: "FTL_BIND",
    required: true,
    group: "Built-in",
    help: "URL to serve on: http://127.0.0.1:8123 or unix:///path/to.sock.",
  }),
};

/**
 * Runs a plugin process: parses its config from flags and env, logs JSON lines to
 * stderr, builds the implementation with `create`, serves it on `FTL_BIND`, and
 * shuts down gracefully (exit 0) on SIGINT, SIGTERM or when its parent process is
 * gone. `--help` prints usage and exits 0; bad config exits 2; a failing `create`
 * exits 1. Never resolves.
 *
 * @param options The plugin.
 * @returns Never: the process exits.
 * @example
 * ```ts
 * import { field, start } from "@ftl-ts/plugin/guest";
 * import { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * // start() takes over the process: run it only as the main module, as a host does.
 * if (import.meta.main) {
 *   await start({
 *     name: "echo",
 *     service: EchoService,
 *     config: { greeting: field.string({ env: "ECHO_GREETING", default: "hello" }) },
 *     create: (_ctx, config) => ({
 *       ping: () => ({}),
 *       echo: (req) => ({ message: `${config.greeting}, ${req.message}` }),
 *       async *count() {},
 *       fail: () => ({}),
 *     }),
 *   });
 * }
 * ```
 */
export async function start<
  S extends PingableService,
  const X extends readonly DescService[] = [],
  C extends ConfigSpec = Record<never, never>,
>(options: StartOptions<S, X, C>): Promise<never> {
  // First thing: a host that dies while we start up must still be noticed.
  const initialParent = parentPid();
  for (const key of Object.keys(options.config ?? {})) {
    if (key in builtinConfig) {
      throw new TypeError(`config key "${key}" is built in; choose another name`);
    }
  }
  const env = processEnv();
  // Asked to outlive its host (spawn's detach): no parent watch, and a stdout or stderr
  // nobody reads any more once the host is gone must not end it.
  const detached = env.FTL_PLUGIN_DETACHED === "1";
  if (detached) ignoreBrokenPipes();
  const spec = { ...options.config, ...builtinConfig } as C & typeof builtinConfig;
  let parsed;
  try {
    parsed = parseConfig(spec, {
      args: processArgs(),
      env,
      name: options.name,
      description: options.description,
    });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    writeStderr(`${options.name}: ${error.message}\n\n${error.usage}\n`);
    return exitProcess(error.exitCode);
  }
  if (parsed.kind === "help") {
    writeStdout(parsed.text.endsWith("\n") ? parsed.text : `${parsed.text}\n`);
    return exitProcess(0);
  }
  const { bind, logLevel, ...own } = parsed.config as
    & ConfigValue<typeof builtinConfig>
    & Record<string, unknown>;
  try {
    parseBindUrl(bind);
  } catch (error) {
    const usage = formatUsage(spec, options);
    writeStderr(`${options.name}: --bind (env FTL_BIND): ${errorText(error)}\n\n${usage}\n`);
    return exitProcess(2);
  }
  const logger = stderrLogger(parseLogLevel(logLevel)).scope(options.name);
  if (!detached && hostGoneBeforeStart(env.FTL_PLUGIN_HOST_PID, initialParent)) {
    logger.warn("the host that started this plugin is already gone: exiting");
    return exitProcess(0);
  }
  const lifetime = new AbortController();
  // Clients of the host's services (`ctx.host`): closed once the server has drained.
  const hosts = hostClients(env);
  const fail = (what: string, error: unknown): Promise<never> => {
    logger.error(what, error);
    return exitProcess(1);
  };
  // Set once serving; a stop before that is finished by the start-up steps below,
  // which look at `lifetime` after each await.
  let server: PluginServer | undefined;
  let stopParentWatch = () => {};
  const stop = async (reason: string, repeatable: boolean) => {
    if (lifetime.signal.aborted) {
      // A second Ctrl-C means "now"; anything else must not cut the grace short.
      if (!repeatable) return;
      logger.warn(`${reason} while stopping: exiting now`);
      await exitProcess(1);
    }
    stopParentWatch();
    // Info: by default, the one line that tells a user why the plugin went away.
    logger.info(`stopping: ${reason}`);
    lifetime.abort(new Error(reason));
    if (server === undefined) {
      // create() got the abort; one that ignores it still gets only the grace.
      const graceMs = options.shutdownGraceMs ?? DEFAULT_GRACE_MS;
      setTimeout(() => {
        logger.warn(`still starting ${graceMs} ms after the stop: exiting`);
        exitProcess(0);
      }, graceMs);
      return;
    }
    await server.shutdown();
    hosts.close();
    await exitProcess(0);
  };
  // Before create(): a stop while starting must end in a clean exit, not the
  // runtime's default for the signal (exit 143), and a host dying meanwhile must
  // still be noticed.
  onTerminationSignal((signal) => stop(`received ${signal}`, true));
  // As Go's guest does: notice within a second that the host is gone. A changed ppid
  // is the tell; probing the old pid could be fooled by pid reuse.
  if (!detached) {
    stopParentWatch = everyUnref(1_000, () => {
      if (parentPid() !== initialParent) stop("parent process is gone", false);
    });
  }

  let implementation: PluginImpl<S, X>;
  try {
    implementation = await options.create({
      signal: lifetime.signal,
      logger,
      workingDir: env.FTL_WORKING_DIR || undefined,
      bind,
      host: hosts.host,
    }, own as unknown as ConfigValue<C>);
  } catch (error) {
    // Throwing on the abort is how a create() that honours ctx.signal gives up.
    if (lifetime.signal.aborted) return exitProcess(0);
    return fail("create failed", error);
  }
  if (lifetime.signal.aborted) return exitProcess(0);

  try {
    server = await serve({
      service: options.service,
      services: options.services,
      implementation,
      bind,
      handlers: options.handlers,
      logger,
      readMaxBytes: options.readMaxBytes,
      shutdownGraceMs: options.shutdownGraceMs,
      headerTimeoutMs: options.headerTimeoutMs,
      server: options.server,
      token: env.FTL_PLUGIN_TOKEN || undefined,
    });
  } catch (error) {
    if (lifetime.signal.aborted) return exitProcess(0);
    return fail(`cannot serve on ${bind.href}`, error);
  }
  // A stop that came while serve() ran found no server to shut down.
  if (lifetime.signal.aborted) {
    await server.shutdown();
    return exitProcess(0);
  }
  logger.debug(`serving on ${server.url.href}`);
  server.finished.then(() => {
    if (!lifetime.signal.aborted) fail("server stopped unexpectedly", undefined);
  });
  return await new Promise<never>(() => {});
}
