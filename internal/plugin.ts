/**
 * What a host holds of a plugin, however it got it (spawned, supervised or attached):
 * the {@linkcode Plugin} handle, its errors, and the service shape every plugin has.
 * `host.ts` and `guest.ts` re-export these.
 *
 * @module
 */
import type { DescService } from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import type { Client, Transport } from "@connectrpc/connect";
import type { PingRequestSchema, PingResponseSchema } from "../gen/xyz/block/ftl/v1/ftl_pb.ts";
import type { ProcessExit } from "./runtime/types.ts";
import type { WireProtocol } from "./transport.ts";

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

/**
 * A running plugin, as {@linkcode spawn} returns it.
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

/**
 * How a process ended, in words: `exited with code 2`, `was killed by SIGKILL`.
 *
 * @param exit The exit.
 * @returns The words.
 */
export function describeExit(exit: ProcessExit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}
