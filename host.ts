/**
 * The host half: {@linkcode spawn} starts a plugin executable, hands it an address
 * in `FTL_BIND`, waits until it answers `Ping`, mirrors its logs and gives back typed
 * Connect clients. The host owns the plugin's whole life: a stale copy is killed
 * first, a plugin that dies during startup is reported with its last lines, and
 * stopping reaches its whole process group.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spawn } from "@ftl-ts/plugin/host";
 * import { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * const echoPlugin = import.meta.resolve("./examples/echo/plugin.ts");
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using plugin = await spawn({
 *     name: "echo",
 *     dir,
 *     exe: Deno.execPath(),
 *     args: ["run", "--allow-net=127.0.0.1", "--allow-env", echoPlugin],
 *     service: EchoService,
 *   });
 *   const { message } = await plugin.client.echo({ message: "hi" });
 *   assert.equal(message, "hi");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @module
 */
import type { DescService } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { PingableService } from "./guest.ts";
import { bindUrl } from "./internal/bind.ts";
import { decodeLogEntry, errorText, Logger, type LogLevel, logLevelName } from "./internal/log.ts";
import { RecentLines, streamLogLines } from "./internal/log_lines.ts";
import { type NotReady, waitUntilReady } from "./internal/readiness.ts";
import {
  allocatePort as allocateRuntimePort,
  type Child,
  makeDirectory,
  ownPid,
  processCommandLine,
  processEnv,
  type ProcessExit,
  readTextFile,
  realPath,
  removeFile,
  signalGroup,
  signalPid,
  spawnChild,
  stderrIsTerminal,
  writeStderr,
  writeTextFile,
} from "#runtime";

import { PluginConnection, randomToken, type WireProtocol } from "./internal/transport.ts";

export type { ProcessExit } from "#runtime";
export type { WireProtocol } from "./internal/transport.ts";
// A host is where one configures the logger that spawn() and the mirrored lines use.
export { Logger, LogLevel, parseLogLevel } from "./internal/log.ts";
export type { LogEntry, LogFormat, LoggerOptions, LogLevelName } from "./internal/log.ts";

/**
 * A TCP port on 127.0.0.1 that was free when this returned, and that this process
 * has not handed out in the last minute.
 *
 * It is racy, as every such helper is: the port is closed again before the caller
 * uses it, so another process may take it in between. Within this process it is not:
 * the system may offer a just-closed port again (50 plugins spawned at once were
 * given the same port here), so recent ports are remembered and skipped.
 * {@linkcode spawn} lives with the remaining race (the plugin then fails to listen and
 * spawn rejects with its output).
 *
 * @returns The port number.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allocatePort } from "@ftl-ts/plugin/host";
 *
 * const port = await allocatePort();
 * assert.ok(port > 0 && port < 65536);
 * ```
 */
export async function allocatePort(): Promise<number> {
  const now = Date.now();
  for (const [port, at] of recentPorts) if (now - at > RECENT_PORT_MS) recentPorts.delete(port);
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await allocateRuntimePort();
    if (!recentPorts.has(port)) {
      recentPorts.set(port, now);
      return port;
    }
  }
  throw new Error("no free port that was not just handed out: is the port range exhausted?");
}

/** Ports handed out recently, with when. */
const recentPorts = new Map<number, number>();
const RECENT_PORT_MS = 60_000;

/**
 * How {@linkcode spawn} talks to a plugin: `auto` pings with Connect and falls back to
 * gRPC.
 *
 * @example
 * ```ts
 * import type { Protocol } from "@ftl-ts/plugin/host";
 * const protocol: Protocol = "auto";
 * ```
 */
export type Protocol = "auto" | WireProtocol;

/**
 * Options for {@linkcode spawn}.
 *
 * @example
 * ```ts
 * import type { SpawnOptions } from "@ftl-ts/plugin/host";
 * import { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * const options: SpawnOptions<typeof EchoService> = {
 *   name: "echo",
 *   dir: "/srv/echo",
 *   exe: "/usr/local/bin/echo-plugin",
 *   service: EchoService,
 *   startTimeout: 10_000,
 * };
 * ```
 */
export interface SpawnOptions<
  S extends PingableService,
  E extends Record<string, DescService> = Record<never, never>,
> {
  /** The plugin's name: the `scope` of its mirrored log lines. */
  name: string;
  /** Its working directory; `<dir>/.ftl` holds the pid file and is `FTL_WORKING_DIR`. */
  dir: string;
  /** The executable. */
  exe: string;
  /** Arguments for the executable. */
  args?: readonly string[];
  /** The plugin's main service (it must have Ping): `plugin.client` calls it. */
  service: S;
  /** More clients on the same connection: `{ name: Service }` → `plugin.clients.name`. */
  extraClients?: E;
  /** Extra environment variables for the plugin, on top of the host's own. */
  env?: Record<string, string>;
  /**
   * Level for the plugin's stdout lines and for JSON lines at level 0.
   * @default {LogLevel.Info}
   */
  defaultLevel?: LogLevel;
  /**
   * Where the host logs, and the plugin's mirrored lines go. Its level is passed to
   * the plugin as `LOG_LEVEL`.
   * @default {a text logger on stderr at info}
   */
  logger?: Logger;
  /**
   * Milliseconds to wait for the plugin to answer Ping.
   * @default {30_000}
   */
  startTimeout?: number;
  /**
   * Create `<dir>/.ftl` (mode 0700), pass it as `FTL_WORKING_DIR` and keep a pid file
   * there; `false` does none of that.
   * @default {true}
   */
  workingDir?: boolean;
  /**
   * The wire protocol. `auto` pings with Connect and switches to gRPC if the plugin
   * answers like a pure gRPC server.
   * @default {"auto"}
   */
  protocol?: Protocol;
  /** Aborting it stops the plugin (and fails a spawn still waiting for readiness). */
  signal?: AbortSignal;
  /**
   * `tcp`: a free 127.0.0.1 port (what FTL's Go code does). `unix`: the socket
   * `<dir>/.ftl/<name>.sock` (mode 0600, no TCP port at all); needs `workingDir`.
   * @default {"tcp"}
   */
  bind?: "tcp" | "unix";
  /**
   * Give the plugin a fresh random token in `FTL_PLUGIN_TOKEN` and send it as
   * `authorization: Bearer <token>` on every call; our guests then refuse calls
   * without it. Guests that ignore it (FTL's Go ones) still work. Never logged.
   * @default {true}
   */
  auth?: boolean;
  /**
   * Checks readiness in place of `Ping` on `service`, for hosts that learn what a
   * plugin serves only once it runs (a CLI, say). Resolves `undefined` when the plugin
   * is ready or why it is not; throws while it cannot answer yet. It is retried as
   * Ping would be.
   */
  readiness?: (transport: Transport, signal: AbortSignal) => Promise<string | undefined>;
}

/**
 * A running plugin, as {@linkcode spawn} returns it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spawn } from "@ftl-ts/plugin/host";
 * import { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * const echoPlugin = import.meta.resolve("./examples/echo/plugin.ts");
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using plugin = await spawn({
 *     name: "echo",
 *     dir,
 *     exe: Deno.execPath(),
 *     args: ["run", "--allow-net=127.0.0.1", "--allow-env", echoPlugin],
 *     service: EchoService,
 *   });
 *   plugin.signal.addEventListener("abort", () => console.log(plugin.signal.reason.message));
 *   await plugin.client.echo({ message: "hi" });
 *   assert.equal((await plugin.stop()).code, 0);
 *   assert.ok(plugin.signal.aborted);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export interface Plugin<
  S extends PingableService = PingableService,
  E extends Record<string, DescService> = Record<never, never>,
> {
  /** The name given to {@linkcode spawn}. */
  readonly name: string;
  /** The plugin's pid (also its process group id). */
  readonly pid: number;
  /** The URL it serves on (its `FTL_BIND`): `http://127.0.0.1:<port>` or `unix:///…/.ftl/<name>.sock`. */
  readonly endpoint: URL;
  /** The wire protocol its clients use. */
  readonly protocol: WireProtocol;
  /** A typed client of its main service. */
  readonly client: Client<S>;
  /** Typed clients of the `extraClients` services. */
  readonly clients: { readonly [K in keyof E]: Client<E[K]> };
  /**
   * The Connect transport its clients use, token included: for clients of services
   * known only at run time (`createClient(desc, plugin.transport)`).
   */
  readonly transport: Transport;
  /** Aborted when the process ends; the reason is a {@linkcode PluginExitError}. */
  readonly signal: AbortSignal;
  /** Resolves when the process has ended and its output has been mirrored. */
  readonly exited: Promise<ProcessExit>;
  /**
   * SIGTERM to the plugin's process group, SIGKILL after `graceMs`; resolves once it
   * is reaped. Idempotent.
   */
  stop(options?: { graceMs?: number }): Promise<ProcessExit>;
  /** Stops with the default grace. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * How a plugin's process ended: the reason of {@linkcode Plugin.signal}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PluginExitError, spawn } from "@ftl-ts/plugin/host";
 * import { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * const echoPlugin = import.meta.resolve("./examples/echo/plugin.ts");
 * const dir = await Deno.makeTempDir();
 * try {
 *   const plugin = await spawn({
 *     name: "echo",
 *     dir,
 *     exe: Deno.execPath(),
 *     args: ["run", "--allow-net=127.0.0.1", "--allow-env", echoPlugin],
 *     service: EchoService,
 *   });
 *   await plugin.stop();
 *   const reason = plugin.signal.reason as PluginExitError;
 *   assert.ok(reason instanceof PluginExitError);
 *   assert.equal(reason.exit.code, 0);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export class PluginExitError extends Error {
  /** The exit code or signal. */
  readonly exit: ProcessExit;

  /**
   * Describes how the plugin `name` ended.
   *
   * @param name The plugin's name.
   * @param exit How it ended.
   */
  constructor(name: string, exit: ProcessExit) {
    super(`plugin ${name} ${describeExit(exit)}`);
    this.name = "PluginExitError";
    this.exit = exit;
  }
}

/**
 * Why {@linkcode spawn} failed: the plugin exited, timed out or was aborted during
 * startup. Its message ends with the last lines the plugin printed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PluginStartError, spawn } from "@ftl-ts/plugin/host";
 * import { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const failed = await spawn({
 *   name: "broken",
 *   dir,
 *   exe: Deno.execPath(),
 *   args: ["eval", "console.log('no database configured'); Deno.exit(2)"],
 *   service: EchoService,
 * }).catch((error: unknown) => error);
 * await Deno.remove(dir, { recursive: true });
 * assert.ok(failed instanceof PluginStartError);
 * assert.equal(failed.exit?.code, 2);
 * assert.deepEqual(failed.lastLines, ["no database configured"]);
 * ```
 */
export class PluginStartError extends Error {
  /** How the process ended, when it ended on its own. */
  readonly exit: ProcessExit | undefined;
  /** The last lines (at most 20) the plugin printed. */
  readonly lastLines: readonly string[];

  /**
   * Builds the error, appending the plugin's last lines to `message`.
   *
   * @param message What went wrong.
   * @param lastLines What the plugin printed last.
   * @param options The process's exit, the underlying cause, and `unshown`: those of
   * `lastLines` that the host's log did not show (below its level); only they are
   * repeated in the message. All of them unless given.
   */
  constructor(
    message: string,
    lastLines: readonly string[],
    options: { exit?: ProcessExit; cause?: unknown; unshown?: readonly string[] } = {},
  ) {
    const unshown = options.unshown ?? lastLines;
    const tail = lastLines.length === 0
      ? "; it printed nothing"
      : unshown.length === 0
      ? "; its last lines are in the log above"
      : `; its last lines${unshown.length < lastLines.length ? " not shown in the log" : ""}:\n${
        unshown.map((l) => `  ${l}`).join("\n")
      }`;
    super(message + tail, { cause: options.cause });
    this.name = "PluginStartError";
    this.exit = options.exit;
    this.lastLines = lastLines;
  }
}

function describeExit(exit: ProcessExit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

const DEFAULT_START_TIMEOUT_MS = 30_000;
const DEFAULT_STOP_GRACE_MS = 5_000;
/** How long output may pause, once the process has exited, before reading stops. */
const DRAIN_AFTER_EXIT_MS = 1_000;

/**
 * Spawns a plugin and waits until it answers Ping.
 *
 * The plugin gets the host's environment plus `FTL_BIND` (a free loopback port),
 * `FTL_WORKING_DIR`, `LOG_LEVEL` and `env`; runs in `dir`, in its own process group.
 * Its stderr lines that are FTL JSON log entries are re-logged at their level under
 * `scope: name`; other stderr lines at error; stdout lines at `defaultLevel`.
 *
 * @param options The plugin and how to run it.
 * @returns The running, ready plugin.
 * @throws {PluginStartError} When it exits, times out or is aborted before it is ready;
 * the process group is killed and reaped first.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spawn } from "@ftl-ts/plugin/host";
 * import { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * const echoPlugin = import.meta.resolve("./examples/echo/plugin.ts");
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using plugin = await spawn({
 *     name: "echo",
 *     dir,
 *     exe: Deno.execPath(),
 *     args: ["run", "--allow-net=127.0.0.1", "--allow-env", echoPlugin],
 *     env: { ECHO_GREETING: "hello," },
 *     service: EchoService,
 *   });
 *   const { message } = await plugin.client.echo({ message: "world" });
 *   assert.equal(message, "hello, world");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function spawn<
  S extends PingableService,
  E extends Record<string, DescService> = Record<never, never>,
>(options: SpawnOptions<S, E>): Promise<Plugin<S, E>> {
  if (!options.name) throw new TypeError("spawn: name is required");
  if (!options.exe) throw new TypeError("spawn: exe is required");
  if (!options.dir) throw new TypeError("spawn: dir is required");
  if (options.startTimeout !== undefined && !(options.startTimeout > 0)) {
    throw new TypeError(
      `spawn: startTimeout must be a positive number of ms, not ${options.startTimeout}`,
    );
  }
  const unsafeFileName = !/^[\w.-]+$/.test(options.name) || /^\.\.?$/.test(options.name);
  const workingDir = options.workingDir === false ? undefined : `${options.dir}/.ftl`;
  if (options.bind === "unix" && unsafeFileName) {
    // The name becomes a file name (<dir>/.ftl/<name>.sock): no path tricks.
    throw new TypeError(
      `spawn: name ${
        JSON.stringify(options.name)
      } cannot name a socket file: use letters, digits, ".", "_" or "-"`,
    );
  }
  if (options.bind === "unix" && !workingDir) {
    throw new TypeError(
      'spawn: bind "unix" puts the socket in <dir>/.ftl, so it needs workingDir',
    );
  }
  const { name } = options;
  const logger = options.logger ?? defaultLogger();
  const pluginLogger = logger.scope(name);
  const defaultLevel = options.defaultLevel ?? 9;

  // Keyed by the plugin's name, not by basename(exe) as in Go: here exe is mostly
  // `deno` or `node`, and two plugins of one folder would take each other for stale.
  // A name that is no safe file name is made one rather than refused, as Go takes any.
  const pidFile = workingDir &&
    `${workingDir}/${
      unsafeFileName ? name.replace(/[^\w.-]/g, "_").replace(/^\./, "_") : name
    }.pid`;
  if (workingDir) await makeDirectory(workingDir, 0o700);
  if (pidFile) await killStalePlugin(pidFile, options, pluginLogger);

  const endpoint = workingDir && options.bind === "unix"
    ? bindUrl({ kind: "unix", path: `${workingDir}/${name}.sock` })
    : bindUrl({ kind: "tcp", hostname: "127.0.0.1", port: await allocatePort() });
  const token = options.auth === false ? undefined : randomToken();
  const levelName = logLevelName(logger.level);
  const child = await spawnChild({
    exe: options.exe,
    args: options.args ?? [],
    cwd: options.dir,
    env: {
      ...processEnv(),
      FTL_BIND: endpoint.href.replace(/\/$/, ""),
      ...(workingDir ? { FTL_WORKING_DIR: workingDir } : {}),
      LOG_LEVEL: levelName === "default" ? "trace" : levelName,
      // Lets our guest notice a host that died before the guest could look (see start()).
      FTL_PLUGIN_HOST_PID: String(ownPid()),
      ...options.env,
      ...(token ? { FTL_PLUGIN_TOKEN: token } : {}),
    },
  });
  ownChildren.add(child.pid);
  child.exited.then(() => ownChildren.delete(child.pid));
  // From here on, whatever throws must not leave the process behind: until stop() is
  // in place, this kills the group and reaps the child.
  let abandon = async (): Promise<unknown> => {
    signalGroup(child.pid, "SIGKILL");
    await Promise.all([child.stdout.cancel(), child.stderr.cancel()]).catch(() => {});
    return await child.exited;
  };
  try {
    if (pidFile) await writeTextFile(pidFile, `${child.pid}\n`);

    const recent = new RecentLines(20);
    const stopReading = new AbortController();
    let lastOutputAt = performance.now();
    // Output often means the plugin has just started listening: ping at once then.
    const nudges = new Set<() => void>();
    const onChunk = () => {
      lastOutputAt = performance.now();
      for (const nudge of nudges) nudge();
    };
    const mirrored = Promise.all([
      streamLogLines(child.stderr, (line) => {
        recent.push(line, "stderr");
        if (!pluginLogger.forwardLine(line, defaultLevel)) pluginLogger.log(17, line);
      }, { signal: stopReading.signal, onChunk }),
      streamLogLines(child.stdout, (line) => {
        recent.push(line, "stdout");
        pluginLogger.log(defaultLevel, line);
      }, { signal: stopReading.signal, onChunk }),
    ]).catch((error) =>
      pluginLogger.warn("reading the plugin's output failed", { error: errorText(error) })
    );

    const lifetime = new AbortController();
    const connection = new PluginConnection(endpoint, { protocol: options.protocol, token });
    const exited = child.exited.then(async (exit) => {
      connection.close();
      lifetime.abort(new PluginExitError(name, exit));
      // Read on while output flows; stop once it has been quiet for a while (a
      // grandchild may hold the pipes open forever).
      const timer = setInterval(() => {
        if (performance.now() - lastOutputAt > DRAIN_AFTER_EXIT_MS) stopReading.abort();
      }, 100);
      await mirrored;
      clearInterval(timer);
      if (pidFile) await forgetPid(pidFile, child.pid);
      if (endpoint.protocol === "unix:") {
        await removeFile(decodeURIComponent(endpoint.pathname)).catch(() => {});
      }
      return exit;
    });

    let stopping: Promise<ProcessExit> | undefined;
    const stop = ({ graceMs = DEFAULT_STOP_GRACE_MS } = {}): Promise<ProcessExit> => {
      if (!(graceMs >= 0)) {
        return Promise.reject(new TypeError(`stop: graceMs must be 0 or more, not ${graceMs}`));
      }
      stopping ??= stopChild(child, exited, connection, graceMs);
      return stopping;
    };
    abandon = () => stop({ graceMs: 0 });
    const onAbort = () => stop();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    lifetime.signal.addEventListener("abort", () => {
      options.signal?.removeEventListener("abort", onAbort);
    });

    // Typed as the Ping-only view of the service, which TypeScript can see through.
    const pingable: PingableService = options.service;
    const pinger = createClient(pingable, connection.transport);

    const notReady = await waitUntilReady({
      ping: async (signal) => {
        try {
          if (options.readiness) return await options.readiness(connection.transport, signal);
          const answer = await pinger.ping({}, { signal });
          return answer.notReady;
        } catch (error) {
          // Not a Connect server's answer: everything goes over gRPC from now on.
          if (connection.switchToGrpcIfDetected()) {
            const detected = connection.switchedFrom;
            pluginLogger.debug(`Connect's Ping got ${detected}: switching to gRPC`);
            throw new Error(`over Connect the plugin answered ${detected}; trying gRPC`, {
              cause: error,
            });
          }
          // Only Ping's own answer is judged: a custom check may fail for other reasons.
          if (!options.readiness && isFinalRefusal(error)) {
            throw new FinalRefusal(error as ConnectError);
          }
          throw error;
        }
      },
      // A permission the host lacks (Deno) will not come by waiting.
      isFinal: (error) => error instanceof FinalRefusal || permissionError(error) !== undefined,
      exited: child.exited,
      nudges: (nudge) => {
        nudges.add(nudge);
        return () => nudges.delete(nudge);
      },
      timeoutMs: options.startTimeout ?? DEFAULT_START_TIMEOUT_MS,
      signal: options.signal,
    });
    if (notReady) {
      const exit = await stop({ graceMs: 0 });
      throw startError({
        name,
        notReady,
        timeoutMs: options.startTimeout ?? DEFAULT_START_TIMEOUT_MS,
        recent,
        exit,
        protocol: connection.protocol,
        switchedFrom: connection.switchedFrom,
        shown: (line, stream) => {
          if (stream === "stdout") return pluginLogger.isEnabled(defaultLevel);
          const entry = decodeLogEntry(line);
          if (entry === undefined) return pluginLogger.isEnabled(17);
          return pluginLogger.isEnabled(entry.level === 0 ? defaultLevel : entry.level);
        },
      });
    }

    const clients = Object.fromEntries(
      Object.entries(options.extraClients ?? {}).map(([key, desc]) => [
        key,
        createClient(desc, connection.transport),
      ]),
    ) as { [K in keyof E]: Client<E[K]> };
    return {
      name,
      pid: child.pid,
      endpoint,
      protocol: connection.protocol,
      client: createClient(options.service, connection.transport),
      clients,
      transport: connection.transport,
      signal: lifetime.signal,
      exited,
      stop,
      [Symbol.asyncDispose]: async () => {
        await stop();
      },
    };
  } catch (error) {
    await abandon();
    throw error;
  }
}

/** Pids of the plugins this process started and has not reaped yet: never stale. */
const ownChildren = new Set<number>();

/** Codes with which a plugin refuses Ping for good: waiting cannot change them. */
const FINAL_CODES: ReadonlySet<Code> = new Set([
  Code.Unimplemented,
  Code.Unauthenticated,
  Code.PermissionDenied,
  Code.InvalidArgument,
]);

function isFinalRefusal(error: unknown): boolean {
  return error instanceof ConnectError && FINAL_CODES.has(error.code);
}

/** The runtime's "permission denied" error somewhere in `error`'s causes, if any. */
function permissionError(error: unknown): Error | undefined {
  for (let at = error, depth = 0; at instanceof Error && depth < 8; depth++) {
    if (at.message.startsWith("permission denied: run Deno with")) return at;
    at = at.cause;
  }
  return undefined;
}

/** A Ping refused with one of {@linkcode FINAL_CODES}. */
class FinalRefusal extends Error {
  constructor(readonly error: ConnectError) {
    super(error.message, { cause: error });
  }
}

function startError(failure: {
  name: string;
  notReady: NotReady;
  timeoutMs: number;
  recent: RecentLines;
  exit: ProcessExit;
  protocol: WireProtocol;
  switchedFrom: string | undefined;
  shown: (line: string, stream: string | undefined) => boolean;
}): PluginStartError {
  const { name, notReady, recent, exit } = failure;
  const lines = recent.lines;
  // The lines the log already showed are not repeated (a usage text would appear twice).
  const unshown = recent.entries.filter((e) => !failure.shown(e.line, e.tag)).map((e) => e.line);
  switch (notReady.kind) {
    case "exited":
      return new PluginStartError(
        `plugin ${name} ${describeExit(exit)} before it was ready`,
        lines,
        { exit, unshown },
      );
    case "timeout":
      return new PluginStartError(
        `plugin ${name} was not ready after ${failure.timeoutMs} ms (last ping: ${
          errorText(notReady.lastError)
        })`,
        lines,
        { cause: notReady.lastError, unshown },
      );
    case "aborted":
      return new PluginStartError(`spawning plugin ${name} was aborted`, lines, {
        cause: notReady.reason,
        unshown,
      });
    case "refused": {
      const denied = permissionError(notReady.error);
      if (denied) {
        return new PluginStartError(
          `cannot reach plugin ${name}: ${denied.message}`,
          lines,
          { cause: notReady.error, unshown },
        );
      }
      const { error } = notReady.error as FinalRefusal;
      const via = failure.switchedFrom
        ? ` over gRPC (over Connect it answered ${failure.switchedFrom})`
        : failure.protocol === "connect"
        ? ""
        : ` over ${failure.protocol}`;
      return new PluginStartError(
        `plugin ${name} refused Ping${via}: ${
          codeToString(error.code).toUpperCase()
        }: ${error.rawMessage}`,
        lines,
        { cause: error, unshown },
      );
    }
  }
}

async function stopChild(
  child: Child,
  exited: Promise<ProcessExit>,
  connection: PluginConnection,
  graceMs: number,
): Promise<ProcessExit> {
  connection.close();
  let done = false;
  const reaped = child.exited.then(() => (done = true));
  if (graceMs > 0 && signalGroup(child.pid, "SIGTERM")) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([reaped, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
  }
  if (!done) signalGroup(child.pid, "SIGKILL");
  await reaped;
  // Whatever else is left in the group (a child that ignored SIGTERM) goes too.
  signalGroup(child.pid, "SIGKILL");
  return await exited;
}

/**
 * Kills the process a stale pid file names, but only if it still runs this plugin's
 * command and is not one this host started: a reused pid belonging to something else
 * is left alone. A pid file never blocks a spawn: what cannot be read or told is
 * warned about and left alone.
 */
async function killStalePlugin(
  pidFile: string,
  options: { exe: string; args?: readonly string[] },
  logger: Logger,
): Promise<void> {
  let text: string | undefined;
  try {
    text = await readTextFile(pidFile);
  } catch (error) {
    logger.warn(`cannot read pid file ${pidFile}: going on`, { error: errorText(error) });
    return;
  }
  if (text === undefined) return;
  const pid = Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid <= 1) {
    logger.warn(`ignoring pid file ${pidFile}: ${JSON.stringify(text.slice(0, 40))} is not a pid`);
    return;
  }
  // A plugin of our own with the same name, still running or not yet reaped.
  if (ownChildren.has(pid) || pid === ownPid()) return;
  let commandLine: string | undefined;
  try {
    commandLine = await processCommandLine(pid);
  } catch (error) {
    logger.warn(
      `pid file ${pidFile} names process ${pid}, and what it runs cannot be told: leaving it alone`,
      { error: errorText(error) },
    );
    return;
  }
  if (commandLine === undefined) return;
  if (!(await runsCommand(commandLine, options.exe, options.args ?? []))) {
    logger.warn(
      `pid file ${pidFile} names process ${pid}, which runs something else (${
        commandLine.slice(0, 200)
      }): leaving it alone`,
    );
    return;
  }
  logger.warn(`killing stale plugin process ${pid} named by ${pidFile}`);
  signalGroup(pid, "SIGKILL");
  signalPid(pid, "SIGKILL");
}

/**
 * Whether a command line (arguments joined by spaces, as `ps` shows them) runs `exe`
 * with `args`: the executable as argv[0], or argv[1] for a script run through its #!
 * interpreter; an interpreter (deno, node) is told apart by its arguments (the script).
 */
async function runsCommand(
  commandLine: string,
  exe: string,
  args: readonly string[],
): Promise<boolean> {
  const words = commandLine.split(" ");
  const exePath = await realPath(exe);
  const heads = words.slice(0, 2);
  const candidates = await Promise.all(heads.map((word) => realPath(word)));
  const sameExe = heads.includes(exe) || candidates.includes(exePath) ||
    // An executable whose path has a space in it.
    commandLine === exe || commandLine.startsWith(`${exe} `);
  const padded = ` ${commandLine} `;
  return sameExe && args.every((arg) => padded.includes(` ${arg} `));
}

async function forgetPid(pidFile: string, pid: number): Promise<void> {
  try {
    if ((await readTextFile(pidFile))?.trim() === String(pid)) await removeFile(pidFile);
  } catch {
    // Another host may have taken the file over; it is theirs now.
  }
}

function defaultLogger(): Logger {
  return new Logger({
    level: 9,
    format: "text",
    color: stderrIsTerminal(),
    write: writeStderr,
  });
}
