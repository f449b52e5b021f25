/**
 * Starting a plugin for `run` and `call`: spawn() with the CLI's readiness check, its
 * token, a spinner while it starts, and Ctrl-C ending the wait.
 *
 * @module
 */
import type { Transport } from "@connectrpc/connect";
import { type Plugin, spawn } from "../host.ts";
import type { PingableService } from "../internal/plugin.ts";
import type { Logger } from "../internal/log.ts";
import { type WireProtocol, withToken } from "../internal/transport.ts";
import { onTerminationSignal } from "#runtime";
import { CliError } from "./failure.ts";
import { unavailable } from "./unavailable.ts";
import { type Found, readiness } from "./readiness.ts";
import { pingService } from "./ping_schema.ts";
import { waiting } from "./status.ts";

/** What to start, and how. */
export interface StartOptions {
  /** The plugin's name in logs. */
  name: string;
  /** Its working directory. */
  dir: string;
  /** The executable. */
  exe: string;
  /** Its arguments. */
  args: string[];
  /** The service whose Ping tells readiness; by reflection if absent. */
  service: string | undefined;
  /** Filled with what readiness learnt. */
  found: Found;
  /** Mirrors the plugin's logs. */
  logger: Logger;
  /** How long to wait until it is ready, in ms. */
  timeout: number;
  /** The protocol to speak, or `auto`. */
  protocol: WireProtocol | "auto";
  /** Where it listens: a free TCP port, or a socket in its directory. */
  bind: "tcp" | "unix";
  /** The plugin's token, made here (not by spawn) so that run can hand it out; none: no auth. */
  token: string | undefined;
  /** Whether the command was given `--json` (no spinner then). */
  json: boolean;
  /** The executable's digest (`sha256:<hex>`), checked before it starts. */
  checksum?: string;
  /** Called on SIGINT or SIGTERM, also once the plugin is ready. */
  onSignal?: () => void;
}

/** A started plugin, or none if Ctrl-C came first. */
export interface Started {
  /** The plugin, unless interrupted. */
  plugin?: Plugin<PingableService>;
  /** The plugin's transport, its token included. */
  transport?: Transport;
  /** Aborted on SIGINT or SIGTERM. */
  interrupted: AbortSignal;
  /** Stops listening for those signals. */
  removeSignals: () => void;
}

/**
 * Spawns the plugin with a spinner while it starts. Resolves without a plugin if
 * Ctrl-C came first; a plugin that can never be found ready fails at once.
 *
 * @param options What to start, and how.
 * @returns The plugin and its transport, or none if interrupted.
 * @throws {CliError} When it cannot be started or found ready.
 * @example
 * ```ts ignore
 * const { plugin, transport, removeSignals } = await startPlugin(options);
 * ```
 */
export async function startPlugin(options: StartOptions): Promise<Started> {
  const interrupted = new AbortController();
  const giveUp = new AbortController();
  const removeSignals = onTerminationSignal(() => {
    interrupted.abort(new Error("interrupted"));
    options.onSignal?.();
  });
  const done = waiting(`starting ${options.name}`, options.json);
  const authorized = (transport: Transport) =>
    options.token === undefined ? transport : withToken(transport, options.token);
  try {
    const plugin = await spawn({
      name: options.name,
      dir: options.dir,
      exe: options.exe,
      args: options.args,
      // Readiness is checked below, so the typed client's service is only a placeholder.
      service: pingService(options.service ?? "ftl.plugin.cli.Unknown") as PingableService,
      readiness: async (transport, signal) => {
        try {
          return await readiness(authorized(transport), signal, options.service, options.found);
        } catch (error) {
          // Waiting longer would not help: stop now, with the reason.
          if (error instanceof CliError) giveUp.abort(error);
          throw error;
        }
      },
      logger: options.logger,
      startTimeout: options.timeout,
      protocol: options.protocol,
      bind: options.bind,
      // The token goes as spawn's own would; an empty one also keeps a token in this
      // process's environment (for call) from reaching a plugin started without one.
      auth: false,
      env: { FTL_PLUGIN_TOKEN: options.token ?? "" },
      signal: AbortSignal.any([interrupted.signal, giveUp.signal]),
      checksum: options.checksum,
    });
    return {
      plugin,
      transport: authorized(plugin.transport),
      interrupted: interrupted.signal,
      removeSignals,
    };
  } catch (error) {
    removeSignals();
    if (giveUp.signal.aborted) throw giveUp.signal.reason;
    if (interrupted.signal.aborted) return { interrupted: interrupted.signal, removeSignals };
    throw unavailable(error);
  } finally {
    done();
  }
}
