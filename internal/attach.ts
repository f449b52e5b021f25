/**
 * Reattaching (go-plugin's ReattachConfig): {@linkcode attach} gives a host the handle of
 * a plugin that is already running, started by an earlier host (`spawn({ detach: true })`)
 * or by `ftl-plugin run`. Such a plugin is not this process's child, so it cannot be
 * waited on: with its pid, the process is watched by polling (its start time tells a
 * reused pid apart) and stopped by signals; without one, only its answers tell.
 *
 * @module
 */
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { bindUrl, endpointText, parseBindUrl } from "./bind.ts";
import { errorText, type Logger } from "./log.ts";
import {
  type AttachInfo,
  checkProtocol,
  defaultHostLogger,
  extraClients,
  type PingableService,
  type Plugin,
  PluginExitError,
  PluginStartError,
  type Protocol,
} from "./plugin.ts";
import {
  type FinalRefusal,
  isFinalFailure,
  permissionError,
  readinessProbe,
  waitUntilReady,
} from "./readiness.ts";
import { PluginConnection, type WireProtocol } from "./transport.ts";
import { everyUnref, ownPid, processInfo, signalGroup, signalPid } from "#runtime";
import type { ProcessExit } from "./runtime/types.ts";

/**
 * Options for {@linkcode attach}: what {@linkcode Plugin.attachInfo} or
 * `ftl-plugin run --json` printed, with the service's descriptor in place of its name.
 *
 * @example
 * ```ts
 * import type { AttachOptions } from "@ftl-ts/plugin/host";
 * import { EchoService } from "../gen/echo/v1/echo_pb.ts";
 *
 * const options: AttachOptions<typeof EchoService> = {
 *   name: "echo",
 *   endpoint: "http://127.0.0.1:40123",
 *   service: EchoService,
 *   token: "d3b07384d113edec49eaa6238ad5ff00",
 *   pid: 4242,
 * };
 * ```
 */
export interface AttachOptions<
  S extends PingableService,
  E extends Record<string, DescService> = Record<never, never>,
> {
  /** The plugin's name, for messages and log lines. */
  name: string;
  /** Where it serves: `http://127.0.0.1:<port>` or `unix:///path/to/socket`. */
  endpoint: string | URL;
  /** Its main service (it must have Ping): `plugin.client` calls it. */
  service: S;
  /** Its token (`FTL_PLUGIN_TOKEN`), sent on every call; none for a plugin without one. */
  token?: string;
  /**
   * Its pid. With it, `signal` aborts and `exited` resolves when the process ends, and
   * `stop()` can end it; without it, `stop()` rejects and only the plugin's answers tell
   * whether it is still there.
   */
  pid?: number;
  /** More clients on the same connection: `{ name: Service }` → `plugin.clients.name`. */
  extraClients?: E;
  /**
   * The wire protocol (what `attachInfo()` says it answered). `auto` pings with Connect
   * and switches to gRPC if the plugin answers like a pure gRPC server.
   * @default {"auto"}
   */
  protocol?: Protocol;
  /**
   * Where the attach notes go (never the token).
   * @default {a text logger on stderr at info}
   */
  logger?: Logger;
  /**
   * Milliseconds to wait for it to answer Ping: short, as it should be running already.
   * @default {10_000}
   */
  startTimeout?: number;
  /**
   * Aborting it fails an attach still waiting, and afterwards releases the handle
   * (as `release()`): it never stops the plugin.
   */
  signal?: AbortSignal;
}

/**
 * A plugin {@linkcode attach} reached: a {@linkcode Plugin}, but its pid may be unknown,
 * and it can be let go of without stopping it.
 *
 * - `pid`: as given; `undefined` without it.
 * - `signal` / `exited`: with a pid, abort / resolve once that process is gone (polled
 *   every second; a pid now held by another process counts as gone). Without one, once
 *   3 pings 2 s apart in a row found nobody listening. The exit is always
 *   `{ code: null, signal: null }`: how a process that is not our child ended is not
 *   knowable.
 * - `stop()`: with a pid, SIGTERM to its process group (to the pid if it leads none),
 *   SIGKILL after the grace, resolving once it is gone; without one, it rejects.
 * - `release()` and `[Symbol.asyncDispose]`: close the connection and stop watching,
 *   leaving the plugin running.
 *
 * @example
 * ```ts
 * import type { AttachedPlugin } from "@ftl-ts/plugin/host";
 * import type { EchoService } from "../gen/echo/v1/echo_pb.ts";
 *
 * function describe(plugin: AttachedPlugin<typeof EchoService>): string {
 *   return `${plugin.name} at ${plugin.endpoint.href} (pid ${plugin.pid ?? "unknown"})`;
 * }
 * ```
 */
export interface AttachedPlugin<
  S extends PingableService = PingableService,
  E extends Record<string, DescService> = Record<never, never>,
> extends Omit<Plugin<S, E>, "pid" | "restarts"> {
  /** The pid given to {@linkcode attach}, if any. */
  readonly pid: number | undefined;
  /**
   * Closes the connection and stops watching, leaving the plugin running: what a host
   * that is done with it (and exits) calls. Idempotent; later calls fail UNAVAILABLE.
   */
  release(): Promise<void>;
}

const DEFAULT_ATTACH_TIMEOUT_MS = 10_000;
const DEFAULT_STOP_GRACE_MS = 5_000;
/** How often the watch asks after the process (with a pid). */
const WATCH_PID_MS = 1_000;
/** How often the watch pings (without a pid), and how many misses in a row end it. */
const WATCH_PING_MS = 2_000;
const WATCH_PING_MISSES = 3;
/** How often stop() looks whether the process is gone yet. */
const STOP_POLL_MS = 50;
/** How long stop() waits for a SIGKILLed process to go before it gives up. */
const KILL_WAIT_MS = 10_000;
const UNKNOWN_EXIT: ProcessExit = Object.freeze({ code: null, signal: null });

/**
 * Attaches to a plugin that is already running and waits until it answers Ping.
 * It never starts, kills or restarts anything on its own, and never touches a pid file.
 *
 * @param options Where the plugin is, its token and pid (see {@linkcode AttachOptions}).
 * @returns The plugin's handle.
 * @throws {TypeError} For bad options, before anything is tried.
 * @throws {PluginStartError} When the pid names no running process, or the plugin does
 * not answer within `startTimeout`, refuses Ping (a wrong token: UNAUTHENTICATED), or
 * the process ends meanwhile, or `signal` aborts.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { attach, type AttachInfo, spawn } from "@ftl-ts/plugin/host";
 * import { EchoService } from "../gen/echo/v1/echo_pb.ts";
 *
 * const echoPlugin = import.meta.resolve("../examples/echo/plugin.ts");
 * const dir = await Deno.makeTempDir();
 * try {
 *   // Another host would have this from a file the first one wrote.
 *   await using first = await spawn({
 *     name: "echo",
 *     dir,
 *     exe: Deno.execPath(),
 *     args: ["run", "--allow-net=127.0.0.1", "--allow-env", echoPlugin],
 *     service: EchoService,
 *   });
 *   const info: AttachInfo = JSON.parse(JSON.stringify(first.attachInfo()));
 *   await using plugin = await attach({ ...info, service: EchoService });
 *   assert.equal((await plugin.client.echo({ message: "again" })).message, "again");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function attach<
  S extends PingableService,
  E extends Record<string, DescService> = Record<never, never>,
>(options: AttachOptions<S, E>): Promise<AttachedPlugin<S, E>> {
  const endpoint = checkAttachOptions(options);
  const { name, pid, token } = options;
  const logger = (options.logger ?? defaultHostLogger()).scope(name);
  const timeoutMs = options.startTimeout ?? DEFAULT_ATTACH_TIMEOUT_MS;
  const target = pid === undefined ? undefined : await findProcess(name, pid);
  const connection = new PluginConnection(endpoint, { protocol: options.protocol, token });
  const pingable: PingableService = options.service;
  const pinger = createClient(pingable, connection.transport);
  const lifetime = new AbortController();
  let settle: (exit: ProcessExit) => void = () => {};
  const exited = new Promise<ProcessExit>((resolve) => (settle = resolve));
  // Ends the handle once the plugin is gone (how is never known): `why` for the reason.
  const end = (why?: string) => {
    if (lifetime.signal.aborted) return;
    stopWatch();
    connection.close();
    const reason = new PluginExitError(name, UNKNOWN_EXIT);
    if (why) reason.message = `plugin ${name} ${why}`;
    lifetime.abort(reason);
    settle(UNKNOWN_EXIT);
  };
  const isGone = async () =>
    target !== undefined && (await processInfo(target.pid))?.started !== target.started;
  let stopWatch = () => {};
  const watchGone = target === undefined
    ? new Promise<never>(() => {})
    : new Promise<void>((resolve) => {
      stopWatch = watch(WATCH_PID_MS, async () => {
        if (await isGone()) resolve();
      });
    });

  const notReady = await waitUntilReady({
    ping: readinessProbe({
      connection,
      check: async (signal) => (await pinger.ping({}, { signal })).notReady,
      judged: true,
      logger,
    }),
    isFinal: isFinalFailure,
    exited: watchGone,
    timeoutMs,
    signal: options.signal,
  });
  stopWatch();
  if (notReady) {
    connection.close();
    const where = `plugin ${name} at ${endpointText(endpoint)}`;
    const say = (message: string, cause?: unknown) =>
      new PluginStartError(message, [], { cause, started: false });
    switch (notReady.kind) {
      case "exited":
        throw say(`cannot attach: ${where} (pid ${pid}) ended before it answered Ping`);
      case "aborted":
        throw say(`attaching to ${where} was aborted`, notReady.reason);
      case "timeout":
        throw say(
          `cannot attach: ${where} did not answer Ping within ${timeoutMs} ms (last ping: ${
            errorText(notReady.lastError)
          }); is it running there?`,
          notReady.lastError,
        );
      case "refused": {
        const denied = permissionError(notReady.error);
        if (denied) throw say(`cannot attach: ${where}: ${denied.message}`, notReady.error);
        const refusal = notReady.error as FinalRefusal;
        const hint = refusal.error.code === Code.Unauthenticated
          ? token === undefined ? " (it wants a token: pass token)" : " (a wrong token?)"
          : "";
        throw say(`cannot attach: ${where} refused Ping: ${refusal.text}${hint}`, refusal.error);
      }
    }
  }
  logger.debug(`attached to ${endpointText(endpoint)}${pid ? ` (pid ${pid})` : ""}`);

  if (target) {
    stopWatch = watch(WATCH_PID_MS, async () => {
      if (await isGone()) end();
    });
  } else {
    let misses = 0;
    stopWatch = watch(WATCH_PING_MS, async () => {
      try {
        await pinger.ping({}, { signal: AbortSignal.timeout(WATCH_PING_MS) });
        misses = 0;
      } catch (error) {
        // Only nobody listening counts: a slow or busy plugin is still there.
        const unavailable = error instanceof ConnectError && error.code === Code.Unavailable;
        misses = unavailable ? misses + 1 : 0;
        if (misses >= WATCH_PING_MISSES) {
          end(
            `stopped answering: ${misses} pings in a row found nobody at ${
              endpointText(endpoint)
            } (how it ended is not known without its pid)`,
          );
        }
      }
    });
  }

  // A caller's long-lived signal must not keep a released handle (and its connection) alive.
  const forgetSignal = () => options.signal?.removeEventListener("abort", onAbort);
  const release = () => {
    forgetSignal();
    stopWatch();
    connection.close();
    return Promise.resolve();
  };
  const onAbort = () => release();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  lifetime.signal.addEventListener("abort", forgetSignal, { once: true });

  let stopping: Promise<ProcessExit> | undefined;
  const stop: AttachedPlugin["stop"] = ({ graceMs = DEFAULT_STOP_GRACE_MS } = {}) => {
    if (!target) {
      return Promise.reject(
        new Error(
          `stop: plugin ${name} was attached without a pid, so it cannot be stopped from ` +
            "here: attach with its pid, or stop it where it was started",
        ),
      );
    }
    if (!(graceMs >= 0)) {
      return Promise.reject(new TypeError(`stop: graceMs must be 0 or more, not ${graceMs}`));
    }
    stopping ??= (async () => {
      stopWatch();
      connection.close();
      await terminate(target, graceMs, isGone);
      end();
      return UNKNOWN_EXIT;
    })();
    return stopping;
  };

  const info: AttachInfo = {
    name,
    endpoint: endpointText(endpoint),
    service: options.service.typeName,
    protocol: connection.protocol,
    ...(pid === undefined ? {} : { pid }),
    ...(token === undefined ? {} : { token }),
  };
  return {
    name,
    pid,
    endpoint,
    protocol: connection.protocol,
    client: createClient(options.service, connection.transport),
    clients: extraClients(options.extraClients, connection.transport),
    transport: connection.transport,
    signal: lifetime.signal,
    exited,
    stop,
    release,
    [Symbol.asyncDispose]: release,
    attachInfo: () => ({ ...info, protocol: connection.protocol }),
  };
}

/**
 * What {@linkcode attach} needs to reach a plugin this host spawned: the spawned
 * handle's `attachInfo()`.
 *
 * @param plugin The spawned plugin's name, endpoint, main service, connection (for its
 * protocol now), pid and token.
 * @returns The data, ready for `JSON.stringify`.
 */
export function attachInfoOf(plugin: {
  name: string;
  endpoint: URL;
  service: DescService;
  connection: { readonly protocol: WireProtocol };
  pid: number;
  token: string | undefined;
}): AttachInfo {
  return {
    name: plugin.name,
    endpoint: endpointText(plugin.endpoint),
    service: plugin.service.typeName,
    protocol: plugin.connection.protocol,
    pid: plugin.pid,
    ...(plugin.token === undefined ? {} : { token: plugin.token }),
  };
}

/** The process the pid names, as it is now: it must be running. */
async function findProcess(
  name: string,
  pid: number,
): Promise<{ pid: number; started: string; leadsGroup: boolean }> {
  let found;
  try {
    found = await processInfo(pid);
  } catch (error) {
    // Not knowing whether it runs (Deno without --allow-run, which ps needs).
    throw new PluginStartError(
      `cannot attach: cannot watch process ${pid} (plugin ${name}): ${errorText(error)}`,
      [],
      { cause: error, started: false },
    );
  }
  if (!found) {
    throw new PluginStartError(
      `cannot attach: process ${pid} (plugin ${name}) is not running`,
      [],
      { started: false },
    );
  }
  return { pid, started: found.started, leadsGroup: found.group === pid };
}

/**
 * SIGTERM (to the group it leads, else to the pid), SIGKILL after the grace; resolves
 * once it is gone. A pid that another process holds by now is never signalled.
 */
async function terminate(
  target: { pid: number; leadsGroup: boolean },
  graceMs: number,
  isGone: () => Promise<boolean>,
): Promise<void> {
  const { pid, leadsGroup } = target;
  const send = (signal: "SIGTERM" | "SIGKILL") =>
    leadsGroup ? signalGroup(pid, signal) || signalPid(pid, signal) : signalPid(pid, signal);
  if (await isGone()) return;
  if (graceMs > 0) {
    send("SIGTERM");
    if (await goneWithin(graceMs, isGone)) return reapGroup(target);
  }
  if (await isGone()) return reapGroup(target);
  send("SIGKILL");
  if (await goneWithin(KILL_WAIT_MS, isGone)) return reapGroup(target);
  throw new Error(`stop: process ${pid} still runs ${KILL_WAIT_MS} ms after SIGKILL`);
}

/** What else is left in the group the plugin led (a child that ignored SIGTERM) goes too. */
function reapGroup(target: { pid: number; leadsGroup: boolean }): void {
  if (target.leadsGroup) signalGroup(target.pid, "SIGKILL");
}

async function goneWithin(ms: number, isGone: () => Promise<boolean>): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (await isGone()) return true;
    await new Promise((resolve) => setTimeout(resolve, STOP_POLL_MS));
  }
  return await isGone();
}

/**
 * Runs `check` every `ms` on a timer that does not keep the host running (a host may
 * exit while attached), never two at once.
 */
function watch(ms: number, check: () => Promise<void>): () => void {
  let busy = false;
  return everyUnref(ms, () => {
    if (busy) return;
    busy = true;
    check().catch(() => {}).finally(() => (busy = false));
  });
}

/** Refuses options attach() cannot work with; returns the endpoint as a URL. */
function checkAttachOptions(options: AttachOptions<PingableService>): URL {
  if (typeof options?.name !== "string" || options.name === "") {
    throw new TypeError("attach: name is required");
  }
  const endpoint = parseEndpoint(options.endpoint);
  const { service, token, pid, protocol, startTimeout, signal } = options;
  if (service?.kind !== "service" || !service.methods.some((m) => m.name === "Ping")) {
    throw new TypeError(
      "attach: service must be the plugin's main service descriptor (with Ping), " +
        `not ${typeof service === "string" ? JSON.stringify(service) : typeof service}`,
    );
  }
  if (token !== undefined && (typeof token !== "string" || !/^[\x21-\x7e]+$/.test(token))) {
    throw new TypeError("attach: token must be a non-empty string of visible ASCII characters");
  }
  if (pid !== undefined && (!Number.isSafeInteger(pid) || pid <= 1 || pid === ownPid())) {
    throw new TypeError(
      `attach: pid must be a positive integer naming another process, not ${JSON.stringify(pid)}`,
    );
  }
  checkProtocol("attach", protocol);
  if (startTimeout !== undefined && !(startTimeout > 0)) {
    throw new TypeError(
      `attach: startTimeout must be a positive number of ms, not ${startTimeout}`,
    );
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError("attach: signal must be an AbortSignal");
  }
  return endpoint;
}

function parseEndpoint(given: string | URL): URL {
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    throw new TypeError(
      `attach: endpoint ${JSON.stringify(String(given))} is not a URL ` +
        "(http://127.0.0.1:<port> or unix:///path)",
    );
  }
  if (url.protocol === "unix:") {
    if (url.pathname === "" || url.pathname === "/") {
      throw new TypeError(`attach: endpoint ${url.href} names no socket path`);
    }
    return checkedAsBind(given);
  }
  if (url.protocol !== "http:") {
    throw new TypeError(
      `attach: endpoint must be http:// (h2c) or unix://, not ${url.protocol} (${url.href})`,
    );
  }
  if (url.pathname !== "/" || url.search || url.hash || url.username || url.password) {
    throw new TypeError(`attach: endpoint ${url.href} must be only a scheme, host and port`);
  }
  return checkedAsBind(given);
}

/** The rest (a port given, an absolute socket path) is checked as a plugin's FTL_BIND is. */
function checkedAsBind(given: string | URL): URL {
  try {
    return bindUrl(parseBindUrl(given));
  } catch (error) {
    throw new TypeError(`attach: endpoint: ${errorText(error)}`, { cause: error });
  }
}
