/**
 * `ftl-plugin version` (or `--version`): print this package's version.
 *
 * @module
 */
import { writeStdout } from "#runtime";
import { packageVersion } from "../internal/version.ts";
import { ExitCode } from "./failure.ts";
import { readCommand } from "./command_line.ts";
import { versionSpec } from "./specs.ts";

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
