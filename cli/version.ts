/**
 * `ftl-plugin version` (or `--version`): print this package's version.
 *
 * @module
 */
import type { CommandSpec } from "../internal/config.ts";
import { writeStdout } from "#runtime";
import { packageVersion } from "../internal/version.ts";
import { ExitCode, FAILURE_HELP } from "./failure.ts";
import * as flags from "./flags.ts";
import { readCommand } from "./command_line.ts";

/**
 * The command line of `ftl-plugin version`.
 *
 * @example
 * ```ts
 * import { versionSpec } from "./version.ts";
 * console.assert(versionSpec.name === "ftl-plugin version");
 * ```
 */
export const versionSpec = {
  name: "ftl-plugin version",
  description: "Print this package's version (also: ftl-plugin --version).",
  flags: { json: flags.json('{"version":…} on stdout.') },
  footer: FAILURE_HELP,
} satisfies CommandSpec;

/**
 * Runs `ftl-plugin version` with the arguments after `version`.
 *
 * @param args The arguments after `version`.
 * @returns The exit code.
 * @throws {CliError} For bad usage.
 * @example
 * ```ts ignore
 * versionCommand(["--json"]);
 * ```
 */
export function versionCommand(args: string[]): number {
  const parsed = readCommand(versionSpec, args);
  if (!parsed) return ExitCode.Ok;
  const version = packageVersion();
  writeStdout(
    parsed.config.json ? JSON.stringify({ version }) + "\n" : `ftl-plugin ${version}\n`,
  );
  return ExitCode.Ok;
}
