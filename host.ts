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
import { createClient, type Transport } from "@connectrpc/connect";
import { bindUrl } from "./internal/bind.ts";
import {
  checkProtocol,
  defaultHostLogger,
  extraClients,
  type PingableService,
  type Plugin,
  type Protocol,
} from "./internal/plugin.ts";
import { type Logger, LogLevel, logLevelName } from "./internal/log.ts";
import { claimChild, isSafeFileName, PidFile } from "./internal/pid_file.ts";
import { launch, type LaunchPlan } from "./internal/launch.ts";
import { type RestartOptions, restartPolicy, superviseLife } from "./internal/supervise.ts";
import { PluginConnection, randomToken } from "./internal/transport.ts";
import { attachInfoOf } from "./internal/attach.ts";
import {
  checkHostServices,
  type HostService,
  startHostServices,
} from "./internal/host_services.ts";
import { type Checksum, verifyChecksum } from "./internal/checksum.ts";
import {
  allocatePort as allocateRuntimePort,
  makeDirectory,
  ownPid,
  processEnv,
  spawnChild,
} from "#runtime";
import type { Child } from "./internal/runtime/types.ts";

export type { ProcessExit } from "./internal/runtime/types.ts";
export {
  type PingableService,
  type Plugin,
  PluginExitError,
  PluginGaveUpError,
  PluginStartError,
  type Protocol,
} from "./internal/plugin.ts";
export type { RestartEvent, RestartOptions } from "./internal/supervise.ts";
export type { WireProtocol } from "./internal/transport.ts";
export { attach, type AttachedPlugin, type AttachOptions } from "./internal/attach.ts";
export type { AttachInfo } from "./internal/plugin.ts";
export { type HostService, hostService } from "./internal/host_services.ts";
export { type Checksum, PluginChecksumError } from "./internal/checksum.ts";
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
  /**
   * Let the plugin outlive this host: our guests then stay up when their host is gone
   * (`FTL_PLUGIN_DETACHED=1`; they exit with it otherwise, as FTL's do), so another host
   * can {@linkcode attach} with what `plugin.attachInfo()` gave. `stop()` and `signal`
   * still stop it; a later spawn() of the same name and dir takes it for stale.
   * @default {false}
   */
  detach?: boolean;
  /**
   * Supervision: start the plugin again each time it dies unexpectedly (any exit that
   * `stop()` or `signal` did not ask for, code 0 included), after a backoff, until it
   * has failed `maxRestarts` times in a row; see {@linkcode RestartOptions}. Clients
   * follow each new process; while it is down, calls fail UNAVAILABLE at once.
   * Without it, the plugin's handle ends with its first process.
   */
  restart?: RestartOptions;
  /**
   * Services the host serves to the plugin (its `ctx.host(Service)` clients), on the
   * unix socket `<dir>/.ftl/<name>.host.sock` (mode 0600; in a private temporary
   * directory without `workingDir`) named in `FTL_HOST_BIND`, with a fresh token in
   * `FTL_HOST_TOKEN`. Served from before the start until the plugin is stopped.
   */
  hostServices?: readonly HostService[];
  /**
   * Start only a plugin whose file has this digest, else reject with a
   * {@linkcode PluginChecksumError} and start nothing. `"sha256:<hex>"` checks `exe`
   * (found as the start finds it: from `dir`, or through `PATH`); `{ file, digest }`
   * checks `file` (from `dir`, or absolute), e.g. the script `deno` or `node` runs.
   */
  checksum?: Checksum;
}

const DEFAULT_START_TIMEOUT_MS = 30_000;

/**
 * Spawns a plugin and waits until it answers Ping.
 *
 * The plugin gets the host's environment plus `FTL_BIND` (a free loopback port),
 * `FTL_WORKING_DIR`, `LOG_LEVEL` and `env`; runs in `dir`, in its own process group.
 * Its stderr lines that are FTL JSON log entries are re-logged at their level under
 * `scope: name`; other stderr lines at error; stdout lines at `defaultLevel`. With
 * `restart`, a plugin that dies later is started again (see {@linkcode RestartOptions}).
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
  checkSpawnOptions(options);
  checkHostServices(options.hostServices);
  const policy = restartPolicy(options.restart);
  // Before the stale kill and the port: a refused plugin leaves no trace.
  await verifyChecksum(options);
  const { name } = options;
  const logger = options.logger ?? defaultHostLogger();
  const pluginLogger = logger.scope(name);

  // Prepared once: what lives across every process this handle starts.
  const { workingDir, pidFile } = await prepareWorkingDir(options, pluginLogger);
  const token = options.auth === false ? undefined : randomToken();
  const hostServer = await startHostServices(options, pluginLogger);
  const plan: LaunchPlan = {
    name,
    logger: pluginLogger,
    defaultLevel: options.defaultLevel ?? LogLevel.Info,
    timeoutMs: options.startTimeout ?? DEFAULT_START_TIMEOUT_MS,
    pidFile,
    // Only Ping's own answer is judged: a custom check may fail for other reasons.
    judged: !options.readiness,
    // Each process gets a fresh port (or the same socket path).
    endpoint: async () =>
      workingDir && options.bind === "unix"
        ? bindUrl({ kind: "unix", path: `${workingDir}/${name}.sock` })
        : bindUrl({ kind: "tcp", hostname: "127.0.0.1", port: await allocatePort() }),
    // Each process, the first and every restart's: the environment FTL gives plugins.
    start: (endpoint) =>
      startProcess(
        { ...options, env: { ...options.env, ...hostServer.env } },
        { endpoint, workingDir, token, level: logger.level },
      ),
    // Each restart checks again what it is about to run (the first was checked above).
    beforeRestart: () => verifyChecksum(options),
    check: (transport) => readinessCheck(options, transport),
  };

  // The first process: failing, it rejects spawn() (nothing is restarted before it was
  // ever ready) and whatever was prepared is released.
  const endpoint = await plan.endpoint().catch((error) => hostServer.closeAndThrow(error));
  const connection = new PluginConnection(endpoint, { protocol: options.protocol, token });
  const first = await launch(plan, endpoint, connection, options.signal).catch((error) => {
    connection.close();
    return hostServer.closeAndThrow(error);
  });
  if ("failed" in first) {
    connection.close();
    await hostServer.close();
    throw first.failed;
  }
  const life = superviseLife(first.launched, {
    plan,
    connection,
    policy,
    token,
    signal: options.signal,
    // Once the plugin has ended for good (stopped, or given up on).
    onEnd: () => hostServer.close(),
  });
  return {
    name,
    get pid() {
      return life.pid;
    },
    get endpoint() {
      return life.endpoint;
    },
    get restarts() {
      return life.restarts;
    },
    protocol: connection.protocol,
    client: createClient(options.service, connection.transport),
    clients: extraClients(options.extraClients, connection.transport),
    transport: connection.transport,
    signal: life.signal,
    exited: life.exited,
    stop: (stopOptions) => life.stop(stopOptions),
    [Symbol.asyncDispose]: async () => {
      await life.stop();
    },
    attachInfo: () =>
      attachInfoOf({ ...options, endpoint: life.endpoint, connection, pid: life.pid, token }),
  };
}

/** Refuses options spawn() cannot work with, before anything is started. */
function checkSpawnOptions(
  options: Pick<
    SpawnOptions<PingableService>,
    "name" | "exe" | "dir" | "startTimeout" | "bind" | "workingDir" | "protocol"
  >,
): void {
  if (!options.name) throw new TypeError("spawn: name is required");
  if (!options.exe) throw new TypeError("spawn: exe is required");
  if (!options.dir) throw new TypeError("spawn: dir is required");
  if (options.startTimeout !== undefined && !(options.startTimeout > 0)) {
    throw new TypeError(
      `spawn: startTimeout must be a positive number of ms, not ${options.startTimeout}`,
    );
  }
  checkProtocol("spawn", options.protocol);
  if (options.bind === "unix" && !isSafeFileName(options.name)) {
    // The name becomes a file name (<dir>/.ftl/<name>.sock): no path tricks.
    throw new TypeError(
      `spawn: name ${
        JSON.stringify(options.name)
      } cannot name a socket file: use letters, digits, ".", "_" or "-"`,
    );
  }
  if (options.bind === "unix" && options.workingDir === false) {
    throw new TypeError(
      'spawn: bind "unix" puts the socket in <dir>/.ftl, so it needs workingDir',
    );
  }
}

/**
 * Creates `<dir>/.ftl` and kills the stale process its pid file names; nothing when
 * `workingDir` is off.
 */
async function prepareWorkingDir(
  options: {
    dir: string;
    name: string;
    exe: string;
    args?: readonly string[];
    workingDir?: boolean;
  },
  logger: Logger,
): Promise<{ workingDir?: string; pidFile?: PidFile }> {
  if (options.workingDir === false) return {};
  const workingDir = `${options.dir}/.ftl`;
  await makeDirectory(workingDir, 0o700);
  const pidFile = PidFile.of(workingDir, options.name);
  await pidFile.killStale(options, logger);
  return { workingDir, pidFile };
}

/** Starts the plugin's process in its own group, with the environment FTL gives plugins. */
async function startProcess(
  options: {
    exe: string;
    args?: readonly string[];
    dir: string;
    env?: Record<string, string>;
    detach?: boolean;
  },
  plugin: { endpoint: URL; workingDir?: string; token?: string; level: number },
): Promise<Child> {
  const { workingDir, token } = plugin;
  const levelName = logLevelName(plugin.level);
  const child = await spawnChild({
    exe: options.exe,
    args: options.args ?? [],
    cwd: options.dir,
    env: {
      ...processEnv(),
      FTL_BIND: plugin.endpoint.href.replace(/\/$/, ""),
      ...(workingDir ? { FTL_WORKING_DIR: workingDir } : {}),
      LOG_LEVEL: levelName === "default" ? "trace" : levelName,
      // Lets our guest notice a host that died before the guest could look (see start()).
      FTL_PLUGIN_HOST_PID: String(ownPid()),
      ...(options.detach ? { FTL_PLUGIN_DETACHED: "1" } : {}),
      ...options.env,
      ...(token ? { FTL_PLUGIN_TOKEN: token } : {}),
    },
  });
  claimChild(child);
  return child;
}

/** What one readiness probe runs: Ping on the main service, or the host's own check. */
function readinessCheck(
  options: Pick<SpawnOptions<PingableService>, "service" | "readiness">,
  transport: Transport,
): (signal: AbortSignal) => Promise<string | undefined> {
  const { readiness } = options;
  if (readiness) return (signal) => readiness(transport, signal);
  // Typed as the Ping-only view of the service, which TypeScript can see through.
  const pingable: PingableService = options.service;
  const pinger = createClient(pingable, transport);
  return async (signal) => (await pinger.ping({}, { signal })).notReady;
}
