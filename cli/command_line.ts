/**
 * Reading a command's line against its spec: bad usage becomes a `CliError` (exit 2), and
 * help, when asked for, is printed.
 *
 * @module
 */
import {
  type CommandSpec,
  ConfigError,
  type ConfigSpec,
  parseCommand,
  type ParseCommandResult,
  type PositionalSpec,
} from "../internal/config.ts";
import { processEnv, writeStdout } from "#runtime";
import { usage } from "./failure.ts";

/**
 * Reads `args` (after the command's name) against the command's spec; prints its help
 * when asked for.
 *
 * @param command The command's spec; its `name` is the command as typed.
 * @param args The arguments after the command's name.
 * @returns The parsed command, or `undefined` when help was printed.
 * @throws {CliError} (usage) For bad usage.
 * @example
 * ```ts
 * import { field } from "../internal/config.ts";
 * import { readCommand } from "./command_line.ts";
 * const parsed = readCommand({ name: "ftl-plugin x", flags: { json: field.boolean() } }, []);
 * console.assert(parsed?.config.json === false);
 * ```
 */
export function readCommand<S extends ConfigSpec, const P extends PositionalSpec>(
  command: CommandSpec<S, P>,
  args: readonly string[],
): Extract<ParseCommandResult<S, P>, { kind: "config" }> | undefined {
  let parsed;
  try {
    parsed = parseCommand(command, { args, env: processEnv() });
  } catch (error) {
    if (error instanceof ConfigError) throw usage(error.message, command.name);
    throw error;
  }
  if (parsed.kind === "config") return parsed;
  writeStdout(parsed.text + "\n");
  return undefined;
}
