/**
 * What a host holds of a plugin, however it got it (spawned, supervised or attached):
 * the {@linkcode Plugin} handle, its errors, and the service shape every plugin has.
 * `host.ts` and `guest.ts` re-export these.
 *
 * @module
 */
import type { DescService } from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import type { PingRequestSchema, PingResponseSchema } from "../gen/xyz/block/ftl/v1/ftl_pb.ts";
import { Logger, LogLevel } from "./log.ts";
import type { ProcessExit } from "./runtime/types.ts";
import type { WireProtocol } from "./transport.ts";
import { stderrIsTerminal, writeStderr } from "#runtime";

/**
 * A service whose methods include FTL's `Ping`: every plugin's main service.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PingableService } from "@ftl-ts/plugin/guest";
 * import { EchoService } from "../gen/echo/v1/echo_pb.ts";
 *
 * const main: PingableService = EchoService;
 * assert.equal(main.method.ping.name, "Ping");
 * ```
 */
export type PingableService = GenService<{
  ping: {
    methodKind: "unary";
    input: typeof PingRequestSchema;
    output: typeof PingResponseSchema;
  };
}>;

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

const PROTOCOLS: readonly Protocol[] = ["auto", "connect", "grpc", "grpc-web"];

/**
 * Refuses a `protocol` option that names no protocol (a typo would otherwise pass as
 * Connect and fail later, far from its cause).
 *
 * @param caller `spawn` or `attach`, for the message.
 * @param protocol The option as given.
 * @throws {TypeError} Naming the protocols there are.
 */
export function checkProtocol(caller: string, protocol: unknown): void {
  if (protocol !== undefined && !PROTOCOLS.includes(protocol as Protocol)) {
    throw new TypeError(
      `${caller}: protocol must be auto, connect, grpc or grpc-web, not ${
        typeof protocol === "string" ? JSON.stringify(protocol) : String(protocol)
      }`,
    );
  }
}

/**
 * A running plugin, as {@linkcode spawn} returns it ({@linkcode attach} gives the same
 * for one already running, as an `AttachedPlugin`, whose pid may be unknown).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spawn } from "@ftl-ts/plugin/host";
 * import { EchoService } from "../gen/echo/v1/echo_pb.ts";
 *
 * const echoPlugin = import.meta.resolve("../examples/echo/plugin.ts");
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
  /**
   * The plugin's pid (also its process group id). Under supervision, the current
   * process's, or the last one's while it is down.
   */
  readonly pid: number;
  /**
   * The URL it serves on (its `FTL_BIND`): `http://127.0.0.1:<port>` or
   * `unix:///…/.ftl/<name>.sock`. Under supervision, the current process's: a restart
   * gets a new port (a unix socket keeps its path).
   */
  readonly endpoint: URL;
  /** How many restarts supervision has begun (`spawn()`'s `restart`); 0 without it. */
  readonly restarts: number;
  /** The wire protocol its clients use. */
  readonly protocol: WireProtocol;
  /** A typed client of its main service. */
  readonly client: Client<S>;
  /** Typed clients of the `extraClients` services. */
  readonly clients: { readonly [K in keyof E]: Client<E[K]> };
  /**
   * The Connect transport its clients use, token included: for clients of services
   * known only at run time (`createClient(desc, plugin.transport)`). Under supervision
   * it (and every client made on it) follows the plugin to each new process.
   */
  readonly transport: Transport;
  /**
   * Aborted when the process ends; the reason is a {@linkcode PluginExitError}. Under
   * supervision, when supervision ends: at `stop()` (or the `signal` option), or on
   * giving up, with a {@linkcode PluginGaveUpError}.
   */
  readonly signal: AbortSignal;
  /**
   * Resolves when the process has ended and its output has been mirrored. Under
   * supervision, when supervision has ended, with the last process's exit.
   */
  readonly exited: Promise<ProcessExit>;
  /**
   * SIGTERM to the plugin's process group, SIGKILL after `graceMs`; resolves once it
   * is reaped. Idempotent. Under supervision it also ends supervision, at any point (a
   * backoff wait, a restart's startup).
   */
  stop(options?: { graceMs?: number }): Promise<ProcessExit>;
  /** Stops with the default grace. */
  [Symbol.asyncDispose](): Promise<void>;
  /**
   * What {@linkcode attach} needs to reach this plugin from another host, as data that
   * survives `JSON.stringify`. It holds the token: keep it as private as the plugin.
   */
  attachInfo(): AttachInfo;
}

/**
 * What {@linkcode attach} needs to reach a running plugin, as {@linkcode Plugin.attachInfo}
 * and `ftl-plugin run --json` give it: `attach({ ...info, service: EchoService })`.
 *
 * @example
 * ```ts
 * import type { AttachInfo } from "@ftl-ts/plugin/host";
 * const info: AttachInfo = {
 *   name: "echo",
 *   endpoint: "http://127.0.0.1:40123",
 *   service: "echo.v1.EchoService",
 *   protocol: "connect",
 *   pid: 4242,
 *   token: "d3b07384d113edec49eaa6238ad5ff00",
 * };
 * ```
 */
export interface AttachInfo {
  /** The plugin's name. */
  name: string;
  /** Its URL, as text: `http://127.0.0.1:<port>` or `unix:///…`. */
  endpoint: string;
  /** Its main service's full name (`package.Service`): pass that descriptor as `service`. */
  service: string;
  /** The wire protocol it answers. */
  protocol: WireProtocol;
  /** Its pid, when known: without it the attaching host cannot watch or stop it. */
  pid?: number;
  /** Its token, when it has one. */
  token?: string;
}

/**
 * How a plugin's process ended: the reason of {@linkcode Plugin.signal}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PluginExitError, spawn } from "@ftl-ts/plugin/host";
 * import { EchoService } from "../gen/echo/v1/echo_pb.ts";
 *
 * const echoPlugin = import.meta.resolve("../examples/echo/plugin.ts");
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
 * Why a supervised plugin's {@linkcode Plugin.signal} aborted when supervision gave up:
 * it kept dying after `maxRestarts` restarts. `exit` is the last process's exit and
 * `lastLines` what it printed last; `cause` is the last failure (a
 * {@linkcode PluginExitError}, or a {@linkcode PluginStartError} of a restart that
 * never became ready).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PluginGaveUpError } from "@ftl-ts/plugin/host";
 *
 * const error = new PluginGaveUpError("echo", { code: 3, signal: null }, {
 *   restarts: 2,
 *   lastLines: ["fatal: no config"],
 * });
 * assert.equal(error.message, "plugin echo exited with code 3; gave up after 2 restarts");
 * assert.equal(error.exit.code, 3);
 * ```
 */
export class PluginGaveUpError extends PluginExitError {
  /** How many restarts were begun before giving up. */
  readonly restarts: number;
  /** The last lines (at most 20) the last process printed. */
  readonly lastLines: readonly string[];

  /**
   * Describes supervision giving up on the plugin `name`.
   *
   * @param name The plugin's name.
   * @param exit How its last process ended.
   * @param details The restarts begun, the last lines, and the last failure (`cause`).
   */
  constructor(
    name: string,
    exit: ProcessExit,
    details: { restarts: number; lastLines: readonly string[]; cause?: unknown },
  ) {
    super(name, exit);
    this.message += `; gave up after ${details.restarts} restart${
      details.restarts === 1 ? "" : "s"
    }`;
    // A restart can fail before any process runs (a checksum refused, say): say so.
    const { cause } = details;
    if (cause instanceof Error && !(cause instanceof PluginExitError && cause.exit === exit)) {
      this.message += ` (the last: ${cause.message.split("\n")[0]})`;
    }
    this.name = "PluginGaveUpError";
    this.restarts = details.restarts;
    this.lastLines = details.lastLines;
    if (details.cause !== undefined) this.cause = details.cause;
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
 * import { EchoService } from "../gen/echo/v1/echo_pb.ts";
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
   * repeated in the message. All of them unless given. `started: false`: no process
   * was started, so nothing is said of its output.
   */
  constructor(
    message: string,
    lastLines: readonly string[],
    options: {
      exit?: ProcessExit;
      cause?: unknown;
      unshown?: readonly string[];
      started?: boolean;
    } = {},
  ) {
    const unshown = options.unshown ?? lastLines;
    // No process of ours ran (a pid file or a checksum refused, or attach() found none):
    // "it printed nothing" would suggest one ran and stayed silent.
    const tail = options.started === false
      ? ""
      : lastLines.length === 0
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

/**
 * How a process ended, in words: `exited with code 2`, `was killed by SIGKILL`.
 *
 * @param exit The exit.
 * @returns The words.
 */
export function describeExit(exit: ProcessExit): string {
  if (exit.signal) return `was killed by ${exit.signal}`;
  // Neither is known of a process that is not this one's child (an attached plugin).
  return exit.code === null ? "ended (how is not known)" : `exited with code ${exit.code}`;
}

/**
 * The clients of a handle's `extraClients` option, on the handle's transport: what
 * `spawn()` and `attach()` both give as `plugin.clients`.
 *
 * @param services The option: `{ name: Service }`.
 * @param transport The plugin's transport.
 * @returns `{ name: Client<Service> }`.
 */
export function extraClients<E extends Record<string, DescService>>(
  services: E | undefined,
  transport: Transport,
): { [K in keyof E]: Client<E[K]> } {
  return Object.fromEntries(
    Object.entries(services ?? {}).map(([key, desc]) => [key, createClient(desc, transport)]),
  ) as { [K in keyof E]: Client<E[K]> };
}

/**
 * The logger of a host given none (`spawn()`, `attach()`): text on stderr at info, in
 * colour on a terminal.
 *
 * @returns The logger.
 */
export function defaultHostLogger(): Logger {
  return new Logger({
    level: LogLevel.Info,
    format: "text",
    color: stderrIsTerminal(),
    write: writeStderr,
  });
}
