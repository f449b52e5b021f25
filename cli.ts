/**
 * `ftl-plugin`: run a plugin and see what it serves, call its methods with JSON, and
 * ask a running one whether it is ready. Built on this library's host, so a plugin
 * behaves here as it will under a real host.
 *
 * ```sh
 * deno run -A jsr:@ftl-ts/plugin/cli run -- ./my-plugin
 * npx ftl-plugin call http://127.0.0.1:8080 echo.v1.EchoService/Echo '{"message":"hi"}'
 * ```
 *
 * Each command lives in `cli/`; their command-line specs, from which help is made, live
 * apart in `cli/specs.ts`.
 *
 * @module
 */
import { errorText } from "./internal/log.ts";
import { enableCompileCache, exitProcess, isMainModule, processArgs, writeStdout } from "#runtime";
import { CliError, ExitCode, reportFailure, usage } from "./cli/failure.ts";
import { helpCommand, overview } from "./cli/help.ts";

export { ExitCode } from "./cli/failure.ts";
export { parseDuration } from "./internal/duration.ts";

/**
 * A command's module, loaded when the command runs: importing them all (connect-es,
 * protobuf, the host) was most of the CLI's start, and help or a version needs none of it.
 * The path is no literal so that Deno leaves it out of the graph it builds at start, where
 * with a node_modules directory it resolved each npm package reached this way on its own,
 * which cost more than the imports saved; the npm build's tsc rewrites `.ts` at run time.
 */
function command<M>(path: string): Promise<M> {
  return import(path);
}

const COMMANDS: Record<string, (args: string[]) => number | Promise<number>> = {
  run: async (args) =>
    (await command<typeof import("./cli/run.ts")>("./cli/run.ts")).runCommand(args),
  call: async (args) =>
    (await command<typeof import("./cli/call.ts")>("./cli/call.ts")).callCommand(args),
  ping: async (args) =>
    (await command<typeof import("./cli/ping.ts")>("./cli/ping.ts")).pingCommand(args),
  version: (args) => versionCommand(args),
  "--version": (args) => versionCommand(args),
  help: helpCommand,
};

async function versionCommand(args: string[]): Promise<number> {
  return (await command<typeof import("./cli/version.ts")>("./cli/version.ts"))
    .versionCommand(args);
}

/**
 * Runs `ftl-plugin` with `args` (without the program name) and resolves its exit code.
 *
 * @param args The command line, e.g. `["ping", "http://127.0.0.1:8080"]`.
 * @returns The exit code; see {@linkcode ExitCode}.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * console.assert((await main(["frobnicate"])) === 2);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  // Only the CLI's own arguments count: after `--` they are the plugin's.
  const dash = args.indexOf("--");
  const json = (dash === -1 ? args : args.slice(0, dash)).includes("--json");
  try {
    if (command === undefined || command === "-h" || command === "--help") {
      writeStdout(overview() + "\n");
      return command === undefined ? ExitCode.Usage : ExitCode.Ok;
    }
    const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (!run) throw usage(`unknown command ${JSON.stringify(command)}`, "ftl-plugin");
    return await run(rest);
  } catch (error) {
    const failure = error instanceof CliError
      ? error
      : new CliError(errorText(error), ExitCode.Unavailable);
    reportFailure(failure, json, "ftl-plugin: ");
    return failure.code;
  }
}

if (isMainModule(import.meta)) {
  // An application may use Node's compile cache (a library must not choose it for its
  // users): the commands' modules, loaded after this, compile once and then come from it.
  enableCompileCache();
  await exitProcess(await main(processArgs()));
}
