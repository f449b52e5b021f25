/**
 * What a failure to start or reach a plugin means to the CLI: apart from failure.ts, since
 * telling the failures apart needs connect-es and the host, which help and bad usage do
 * not load.
 *
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { PluginStartError } from "../host.ts";
import { tokenHint } from "../internal/transport.ts";
import { CliError, ExitCode } from "./failure.ts";

/**
 * `error` as the failure it means to the CLI: a plugin that could not be started or
 * reached (exit 3), options spawn() refused (exit 2), or a refusal (exit 1).
 *
 * @param error Whatever starting or reaching the plugin threw.
 * @returns The failure to throw.
 * @example
 * ```ts
 * import { ExitCode } from "./failure.ts";
 * import { unavailable } from "./unavailable.ts";
 * console.assert(unavailable(new Error("gone")).code === ExitCode.Unavailable);
 * ```
 */
export function unavailable(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof PluginStartError) return new CliError(error.message, ExitCode.Unavailable);
  // spawn() refusing its options (a name that cannot name a socket, say) is bad usage.
  if (error instanceof TypeError && error.message.startsWith("spawn: ")) {
    return new CliError(error.message.slice("spawn: ".length), ExitCode.Usage);
  }
  // Not an RPC's failure (an executable that is not there): its message says it all.
  if (!(error instanceof ConnectError)) {
    return new CliError(
      error instanceof Error ? error.message : String(error),
      ExitCode.Unavailable,
    );
  }
  const message = `${codeToString(error.code)}: ${error.rawMessage}`;
  // The plugin answered, and refused: that is the call failing (exit 1), not a plugin
  // out of reach, whether reflection or the call itself met the refusal.
  if (error.code === Code.Unauthenticated || error.code === Code.PermissionDenied) {
    const code = codeToString(error.code);
    return new CliError(message + tokenHint(error.code), ExitCode.CallFailed, undefined, code);
  }
  return new CliError(message, ExitCode.Unavailable);
}
