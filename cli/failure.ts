/**
 * How `ftl-plugin` fails: its exit codes, the error that carries one, and how a failure
 * is reported (a line on stderr for people, a JSON object on stdout with `--json`). It
 * imports no RPC code: help and bad usage need it before any command's module loads.
 *
 * @module
 */
import { writeStderr, writeStdout } from "#runtime";

/**
 * The exit codes of `ftl-plugin`.
 *
 * @example
 * ```ts
 * import { ExitCode } from "./failure.ts";
 * console.assert(ExitCode.Usage === 2);
 * ```
 */
export const ExitCode = {
  /** Success; for `run`, the plugin was stopped or exited 0. */
  Ok: 0,
  /** The plugin answered with an error; for `run`, it exited non-zero. */
  CallFailed: 1,
  /** Bad usage: an unknown command or flag, bad JSON, an unknown method. */
  Usage: 2,
  /** The plugin could not be started or reached, or was not ready. */
  Unavailable: 3,
  /** Interrupted (Ctrl-C) before the plugin was ready. */
  Interrupted: 130,
} as const;

/**
 * The end of every help text: what `--json` prints on failure, and the exit codes.
 *
 * @example
 * ```ts
 * import { FAILURE_HELP } from "./failure.ts";
 * console.assert(FAILURE_HELP.includes("Exit codes:\n  0 "));
 * ```
 */
export const FAILURE_HELP: string =
  `With --json, a failure is one line on stdout too: {"error":{"code":C,"message":M}},
where C is the plugin's RPC code when it answered with an error (exit 1, e.g.
"not_found"), "usage" for bad usage (exit 2) or "unavailable" (exit 3). Only options
before -- count: a --json after it is the plugin's.

Exit codes:
  0    success (run: the plugin was stopped, or exited 0)
  1    the call failed: the plugin answered with an error (run: it exited non-zero)
  2    bad usage: unknown command or flag, bad JSON, unknown method
  3    the plugin could not be started or reached, or was not ready
  130  interrupted before the plugin was ready`;

/**
 * A failure that ends the command with `code` after printing `message` (and `hint`,
 * on a terminal's line of its own; JSON output leaves it out).
 *
 * @example
 * ```ts
 * import { CliError, ExitCode } from "./failure.ts";
 * const failure = new CliError("no such plugin", ExitCode.Unavailable);
 * console.assert(failure.code === 3);
 * ```
 */
export class CliError extends Error {
  /**
   * @param message The one line that says what went wrong.
   * @param code The exit code, one of {@linkcode ExitCode}.
   * @param hint What to do about it, for people (not in JSON).
   * @param rpcCode The plugin's RPC code, when the failure is its answer.
   */
  constructor(
    message: string,
    readonly code: number,
    readonly hint?: string,
    readonly rpcCode?: string,
  ) {
    super(message);
  }
}

/**
 * A bad-usage failure (exit 2), hinting at the help of `command`.
 *
 * @param message What is wrong with the command line.
 * @param command The command as typed, such as `ftl-plugin call`.
 * @returns The failure to throw.
 * @example
 * ```ts
 * import { usage } from "./failure.ts";
 * console.assert(usage("no plugin", "ftl-plugin run").hint === 'Run "ftl-plugin run --help".');
 * ```
 */
export function usage(message: string, command: string): CliError {
  return new CliError(message, ExitCode.Usage, `Run "${command} --help".`);
}

/**
 * Prints a failure: `{"error":{"code":…,"message":…}}` on stdout with `--json`, where
 * `code` is the plugin's RPC code or names the exit code; else `prefix` and the message,
 * and the hint on a line of its own, on stderr.
 *
 * @param failure What went wrong.
 * @param json Whether the command was given `--json`.
 * @param prefix What the stderr line starts with.
 * @example
 * ```ts
 * import { CliError, reportFailure } from "./failure.ts";
 * reportFailure(new CliError("bad", 2, "Run it with --help."), false, "ftl-plugin: ");
 * ```
 */
export function reportFailure(failure: CliError, json: boolean, prefix: string): void {
  if (json) {
    const code = failure.rpcCode ??
      (failure.code === ExitCode.Usage ? "usage" : "unavailable");
    writeStdout(JSON.stringify({ error: { code, message: failure.message } }) + "\n");
  } else {
    const hint = failure.hint ? `\n${failure.hint}` : "";
    writeStderr(`${prefix}${failure.message}${hint}\n`);
  }
}
