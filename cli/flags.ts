/**
 * The flags several `ftl-plugin` commands share, as config.ts fields, each with the help
 * its command gives it; and the token a caller's flags name.
 *
 * @example
 * ```ts
 * import * as flags from "./flags.ts";
 * const spec = { json: flags.json("JSON lines."), protocol: flags.protocol };
 * console.assert(spec.protocol.options.default === "auto");
 * ```
 *
 * @module
 */
import { type Field, field } from "../internal/config.ts";
import { errorText, type LogLevel, logLevelName, parseLogLevel } from "../internal/log.ts";
import { processEnv, readTextFile } from "#runtime";
import type { WireProtocol } from "../internal/transport.ts";
import { usage } from "./failure.ts";

/**
 * `--json`: output for scripts.
 *
 * @param help What it prints, for this command.
 * @returns The field.
 * @example
 * ```ts
 * import { json } from "./flags.ts";
 * console.assert(json("JSON lines.").kind === "boolean");
 * ```
 */
export function json(help: string): Field<boolean, true> {
  return field.boolean({ help });
}

/**
 * `--protocol`: which protocol to speak, or `auto` to find out.
 *
 * @example
 * ```ts
 * import { protocol } from "./flags.ts";
 * console.assert(protocol.parse("grpc") === "grpc");
 * ```
 */
export const protocol: Field<"auto" | WireProtocol, true> = field.enum(
  ["auto", "connect", "grpc", "grpc-web"],
  {
    default: "auto",
    placeholder: "PROTOCOL",
    accepts: "auto, connect, grpc or grpc-web",
    help: "auto, connect, grpc or grpc-web; auto finds out.",
  },
);

/**
 * `--service`: the service whose Ping tells readiness, instead of asking reflection.
 *
 * @param help What it is for, in this command.
 * @returns The field.
 * @example
 * ```ts
 * import { service } from "./flags.ts";
 * console.assert(service("").parse("echo.v1.EchoService") === "echo.v1.EchoService");
 * ```
 */
export function service(help: string): Field<string, false> {
  return field.custom({
    placeholder: "SERVICE",
    parse: (raw) => {
      if (!/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/.test(raw)) throw new Error("is no service name");
      return raw;
    },
  }, { accepts: "a fully qualified name like echo.v1.EchoService", help });
}

/**
 * `--timeout`, 30 s unless given.
 *
 * @param help What it bounds, in this command.
 * @returns The field, in milliseconds.
 * @example
 * ```ts
 * import { timeout } from "./flags.ts";
 * console.assert(timeout("").options.default === 30_000);
 * ```
 */
export function timeout(help: string): Field<number, true> {
  return field.duration({ default: 30_000, help });
}

/**
 * `--dir`: an executable plugin's directory.
 *
 * @param help What it is, in this command.
 * @returns The field.
 * @example
 * ```ts
 * import { dir } from "./flags.ts";
 * console.assert(dir("").options.default === ".");
 * ```
 */
export function dir(help: string): Field<string, true> {
  return field.string({ default: ".", placeholder: "DIR", help });
}

/**
 * The notes on durations and log levels, for the help of commands with such flags.
 *
 * @example
 * ```ts
 * import { DURATIONS_AND_LEVELS } from "./flags.ts";
 * console.assert(DURATIONS_AND_LEVELS.includes("1m30s"));
 * ```
 */
export const DURATIONS_AND_LEVELS: string = `Durations are Go-style: 500ms, 30s, 2m, 1m30s.
Log levels: trace, debug, info, warn, error, or default (the command's own), in any case.`;

/**
 * `--log-level`: the least severe level of the plugin's logs that is shown; `default`
 * is the command's own default.
 *
 * @param fallback The command's default level.
 * @param help The flag's help.
 * @returns The field.
 * @example
 * ```ts
 * import { LogLevel } from "../internal/log.ts";
 * import { logLevel } from "./flags.ts";
 * console.assert(logLevel(LogLevel.Warn, "").parse("DEFAULT") === LogLevel.Warn);
 * ```
 */
export function logLevel(fallback: LogLevel, help: string): Field<LogLevel, true> {
  return field.custom({
    placeholder: "LEVEL",
    parse: (raw): LogLevel => parseLogLevel(raw, fallback),
    format: logLevelName,
  }, {
    default: fallback,
    accepts: "trace, debug, info, warn, error or default, in any case",
    help,
  });
}

/**
 * `--token` and `--token-file`: how a caller gives a running plugin its token.
 *
 * @example
 * ```ts
 * import { tokens } from "./flags.ts";
 * console.assert(tokens.tokenFile.options.placeholder === "FILE");
 * ```
 */
export const tokens: { token: Field<string, false>; tokenFile: Field<string, false> } = {
  token: field.string({
    placeholder: "TOKEN",
    help: "The plugin's token (default: $FTL_PLUGIN_TOKEN).",
  }),
  tokenFile: field.string({
    placeholder: "FILE",
    help: "Read the token from FILE (as run --token-file writes it).",
  }),
};

/**
 * The token a caller passes: `--token`, the file of `--token-file`, or
 * `$FTL_PLUGIN_TOKEN`.
 *
 * @param given The command's `token` and `tokenFile` flags.
 * @param command The command as typed, for the usage hint.
 * @returns The token, or `undefined` for none.
 * @throws {CliError} (usage) For both flags, or a file that is missing or empty.
 * @example
 * ```ts
 * import { callerToken } from "./flags.ts";
 * console.assert((await callerToken({ token: "t" }, "ftl-plugin ping")) === "t");
 * ```
 */
export async function callerToken(
  given: { token?: string; tokenFile?: string },
  command: string,
): Promise<string | undefined> {
  const file = given.tokenFile;
  if (file === undefined) return given.token ?? (processEnv().FTL_PLUGIN_TOKEN || undefined);
  if (given.token !== undefined) {
    throw usage("--token and --token-file do not go together: give one", command);
  }
  let text;
  try {
    text = await readTextFile(file);
  } catch (error) {
    throw usage(`--token-file: cannot read ${file}: ${errorText(error)}`, command);
  }
  const token = text?.trim();
  if (!token) {
    throw usage(
      `--token-file: ${file} ${text === undefined ? "does not exist" : "is empty"}` +
        " (run --token-file writes it once the plugin is ready, and removes it when run ends)",
      command,
    );
  }
  return token;
}
