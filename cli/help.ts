/**
 * `ftl-plugin help [command]`, `--help` and no command at all: the overview of every
 * command, made from their specs' usage lines, or one command's help.
 *
 * @module
 */
import { type CommandSpec, formatUsage, usageLine } from "../internal/config.ts";
import { writeStdout } from "#runtime";
import { ExitCode, FAILURE_HELP, usage } from "./failure.ts";
import { readCommand } from "./command_line.ts";
import { callSpec, pingSpec, runSpec, versionSpec } from "./specs.ts";

const COMMANDS: Record<string, CommandSpec> = {
  run: runSpec,
  call: callSpec,
  ping: pingSpec,
  version: versionSpec,
};

/**
 * The command line of `ftl-plugin help`.
 *
 * @example
 * ```ts
 * import { helpSpec } from "./help.ts";
 * console.assert(helpSpec.positionals.command.usage === "[command]");
 * ```
 */
export const helpSpec = {
  name: "ftl-plugin help",
  description: "Show the overview of every command, or one command's help.",
  flags: {},
  positionals: { command: { usage: "[command]", help: "The command whose help to show." } },
} satisfies CommandSpec;

/**
 * The overview of `ftl-plugin`: every command's usage line, then how failures end.
 *
 * @returns The text, without a trailing newline.
 * @example
 * ```ts
 * import { overview } from "./help.ts";
 * console.assert(overview().includes("ftl-plugin ping [flags] <URL>"));
 * ```
 */
export function overview(): string {
  const lines = [
    ...Object.values(COMMANDS).map(usageLine),
    usageLine(helpSpec),
  ].map((line) => `  ${line}`);
  return `ftl-plugin: run, inspect and call FTL plugins.

Usage:
${lines.join("\n")}

Run "ftl-plugin <command> --help" for a command's options.

${FAILURE_HELP}`;
}

/**
 * Runs `ftl-plugin help` with the arguments after `help`.
 *
 * @param args The arguments after `help`.
 * @returns The exit code.
 * @throws {CliError} For bad usage, such as an unknown command.
 * @example
 * ```ts ignore
 * helpCommand(["call"]);
 * ```
 */
export function helpCommand(args: string[]): number {
  const parsed = readCommand(helpSpec, args);
  if (!parsed) return ExitCode.Ok;
  const { command } = parsed.args;
  if (command === undefined) {
    writeStdout(overview() + "\n");
    return ExitCode.Ok;
  }
  const spec = COMMANDS[command] ?? (command === "help" ? helpSpec : undefined);
  if (!spec) throw usage(`unknown command ${JSON.stringify(command)}`, "ftl-plugin");
  writeStdout(formatUsage(spec.flags, spec) + "\n");
  return ExitCode.Ok;
}
