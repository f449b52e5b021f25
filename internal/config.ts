/**
 * Declarative command-line configuration: describe each setting once as a
 * field, then parse flags and environment variables into a value whose type
 * is inferred from that description.
 *
 * Built on `node:util` `parseArgs` for tokenizing, with validation done here.
 *
 * @example Parse a port from flags or the environment
 * ```ts
 * import assert from "node:assert/strict";
 * import { field, parseConfig } from "./config.ts";
 *
 * const spec = { port: field.integer({ env: "ECHO_PORT", default: 8080 }) };
 * const result = parseConfig(spec, {
 *   args: ["--port", "9000"],
 *   env: {},
 *   name: "echo",
 * });
 * assert.equal(result.kind === "config" && result.config.port, 9000);
 * ```
 *
 * @module
 */

import { parseArgs } from "#runtime";
import type { Field, HasValue } from "./field.ts";

export {
  type Field,
  field,
  type FieldBuilders,
  type FieldKind,
  type FieldOptions,
  type HasValue,
} from "./field.ts";

/**
 * A configuration spec: spec keys become the keys of the parsed value.
 *
 * @example
 * ```ts
 * import { type ConfigSpec, field } from "./config.ts";
 * const spec = { port: field.integer(), verbose: field.boolean() } satisfies ConfigSpec;
 * console.assert(Object.keys(spec).length === 2);
 * ```
 */
export type ConfigSpec = Record<string, Field<unknown>>;

/**
 * The parsed configuration type for a spec: fields with a default, `required: true`,
 * booleans and lists are never `undefined`.
 *
 * @typeParam S The configuration spec.
 * @example
 * ```ts
 * import { type ConfigValue, field } from "./config.ts";
 * const spec = { port: field.integer({ default: 80 }), host: field.string() };
 * const value: ConfigValue<typeof spec> = { port: 80, host: undefined };
 * console.assert(value.port === 80);
 * ```
 */
export type ConfigValue<S extends ConfigSpec> = {
  [K in keyof S]: S[K] extends Field<infer T, infer D> ? (D extends true ? T : T | undefined)
    : never;
};

/**
 * Inputs to {@linkcode parseConfig}.
 *
 * @example
 * ```ts
 * import { field, parseConfig, type ParseConfigOptions } from "./config.ts";
 * const options: ParseConfigOptions = { args: ["--port=1"], env: {}, name: "echo", description: "Echo server." };
 * console.assert(parseConfig({ port: field.integer() }, options).kind === "config");
 * ```
 */
export interface ParseConfigOptions {
  /** Command-line arguments, excluding the program name. */
  readonly args: readonly string[];
  /** Environment variables to read, such as a snapshot of the process environment. */
  readonly env: Record<string, string | undefined>;
  /** Program name shown in the usage line. */
  readonly name: string;
  /** Description shown under the usage line. */
  readonly description?: string;
}

/**
 * The outcome of {@linkcode parseConfig}: a parsed configuration, or usage text
 * because help was requested.
 *
 * @typeParam S The configuration spec.
 * @example
 * ```ts
 * import { field, parseConfig, type ParseConfigResult } from "./config.ts";
 * const spec = { port: field.integer() };
 * const result: ParseConfigResult<typeof spec> = parseConfig(spec, { args: ["-h"], env: {}, name: "echo" });
 * console.assert(result.kind === "help");
 * ```
 */
export type ParseConfigResult<S extends ConfigSpec> =
  | { kind: "config"; config: ConfigValue<S> }
  | { kind: "help"; text: string };

/**
 * Invalid command-line or environment input; the message is a single line and
 * the caller should print it with the usage text and exit with `exitCode`.
 *
 * @example Catch a bad value
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError, field, parseConfig } from "./config.ts";
 *
 * assert.throws(
 *   () => parseConfig({ port: field.number() }, { args: ["--port=x"], env: {}, name: "echo" }),
 *   (e: unknown) => e instanceof ConfigError && e.exitCode === 2,
 * );
 * ```
 */
export class ConfigError extends Error {
  /** Conventional exit status for usage errors. */
  readonly exitCode: 2 = 2;
  /** Usage text for the program, to print alongside the message. */
  readonly usage: string;

  /**
   * Creates a configuration error.
   *
   * @param message One-line description of the problem.
   * @param usage Usage text for the program.
   */
  constructor(message: string, usage: string) {
    super(message);
    this.name = "ConfigError";
    this.usage = usage;
  }
}

interface Entry {
  key: string;
  field: Field<unknown>;
  flag: string;
}

function kebab(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .replace(/([A-Z])([A-Z][a-z])/g, "$1-$2").replace(/_/g, "-").toLowerCase();
}

// Spec mistakes are programming errors, so they throw TypeError rather than ConfigError.
function resolve(spec: ConfigSpec): Entry[] {
  const seen = new Set(["--help", "-h"]);
  return Object.entries(spec).map(([key, field]) => {
    const { flag = kebab(key), short } = field.options;
    for (const name of short === undefined ? [flag] : [flag, short]) {
      const dashed = name === short ? `-${name}` : `--${name}`;
      if (seen.has(dashed)) {
        throw new TypeError(`config: ${dashed} is declared twice or reserved`);
      }
      seen.add(dashed);
    }
    if (short !== undefined && !/^[A-Za-z0-9]$/.test(short)) {
      throw new TypeError(`config: short flag for ${key} must be one letter`);
    }
    return { key, field, flag };
  });
}

function label({ flag, field }: Entry): string {
  return field.options.env ? `--${flag} (env ${field.options.env})` : `--${flag}`;
}

function showDefault({ options: { default: value }, format }: Field<unknown>): string {
  if (value === undefined || value === null) return "";
  if (format) return format(value);
  if (Array.isArray(value)) return value.join(",");
  return value instanceof URL ? value.href : String(value);
}

/**
 * One positional argument of a command, for {@linkcode parseCommand}.
 *
 * @example
 * ```ts
 * import type { Positional } from "./config.ts";
 * const url: Positional = { usage: "<URL>", required: true, help: "The plugin's URL." };
 * console.assert(url.required);
 * ```
 */
export interface Positional {
  /** How it shows in the usage line, such as `<URL>` or `[JSON|-]`. */
  readonly usage: string;
  /** One-line description, listed under `Arguments:` in the usage text. */
  readonly help?: string;
  /** Whether parsing fails when it is absent. */
  readonly required?: boolean;
  /** Its value when absent. */
  readonly default?: string;
  /** The message when a required one is absent; `missing <usage>` if not given. */
  readonly missing?: string;
}

/**
 * A command's positional arguments, in order: spec keys become the keys of the parsed value.
 *
 * @example
 * ```ts
 * import type { PositionalSpec } from "./config.ts";
 * const spec = { target: { usage: "<URL>", required: true } } satisfies PositionalSpec;
 * console.assert(spec.target.usage === "<URL>");
 * ```
 */
export type PositionalSpec = Record<string, Positional>;

/**
 * The parsed positional arguments for a spec: required ones and those with a default
 * are never `undefined`.
 *
 * @typeParam P The positional spec.
 * @example
 * ```ts
 * import type { PositionalValue } from "./config.ts";
 * const spec = { url: { usage: "<URL>", required: true as const }, json: { usage: "[JSON]" } };
 * const value: PositionalValue<typeof spec> = { url: "http://x", json: undefined };
 * console.assert(value.url === "http://x");
 * ```
 */
export type PositionalValue<P extends PositionalSpec> = {
  [K in keyof P]: HasValue<P[K]> extends true ? string : string | undefined;
};

/**
 * The arguments after `--`, which a command hands on untouched (to a program it runs).
 *
 * @example
 * ```ts
 * import type { Passthrough } from "./config.ts";
 * const exe: Passthrough = { usage: "<exe> [args…]", required: true };
 * console.assert(exe.required);
 * ```
 */
export interface Passthrough {
  /** How they show in the usage line after `--`, such as `<exe> [args…]`. */
  readonly usage: string;
  /** One-line description, listed under `Arguments:` in the usage text. */
  readonly help?: string;
  /** Whether parsing fails when there are none. */
  readonly required?: boolean;
  /** The message when required ones are absent; `missing -- <usage>` if not given. */
  readonly missing?: string;
  /** Said after `unexpected argument "x":` when an extra argument comes before `--`. */
  readonly misplaced?: string;
}

/**
 * What the usage text of a program or command shows besides its flags.
 *
 * @example
 * ```ts
 * import { field, formatUsage, type UsageOptions } from "./config.ts";
 * const options: UsageOptions = { name: "t", footer: "Exit codes: 0 ok." };
 * console.assert(formatUsage({ n: field.integer() }, options).endsWith("Exit codes: 0 ok."));
 * ```
 */
export interface UsageOptions {
  /** Program name shown in the usage line (a command's includes the program's). */
  readonly name: string;
  /** Description shown under the usage line. */
  readonly description?: string;
  /** Positional arguments, shown in the usage line and, with help, under `Arguments:`. */
  readonly positionals?: PositionalSpec;
  /** The arguments after `--`, shown in the usage line and, with help, under `Arguments:`. */
  readonly passthrough?: Passthrough;
  /** Text after the flags, such as notes and exit codes. */
  readonly footer?: string;
}

/**
 * The usage line of a program or command without its `Usage:` label: its name, `[flags]`,
 * its positional arguments and those after `--`.
 *
 * @param options Program name, and optionally its arguments.
 * @returns Such as `tool call [flags] <URL> [JSON] [-- args…]`.
 * @example
 * ```ts
 * import { usageLine } from "./config.ts";
 * const line = usageLine({ name: "t", passthrough: { usage: "<exe>", required: true } });
 * console.assert(line === "t [flags] -- <exe>");
 * ```
 */
export function usageLine(options: UsageOptions): string {
  const { positionals = {}, passthrough } = options;
  const line = [`${options.name} [flags]`, ...Object.values(positionals).map((p) => p.usage)];
  if (passthrough) {
    line.push(passthrough.required ? `-- ${passthrough.usage}` : `[-- ${passthrough.usage}]`);
  }
  return line.join(" ");
}

/**
 * Renders usage text: the usage line, the description, the arguments that have help,
 * then flags grouped by heading with a final `Built-in:` group for `--help`, then the
 * footer. It has no trailing newline.
 *
 * @param spec The configuration spec.
 * @param options Program name, and optionally description, arguments and footer.
 * @returns The usage text.
 * @example
 * ```ts
 * import { field, formatUsage } from "./config.ts";
 * const text = formatUsage({ port: field.integer({ env: "PORT" }) }, { name: "echo" });
 * console.assert(text.startsWith("Usage: echo [flags]"));
 * ```
 */
export function formatUsage(spec: ConfigSpec, options: UsageOptions): string {
  const { positionals = {}, passthrough } = options;
  const args: [string, string | undefined][] = Object.values(positionals).map((p) => [
    p.usage,
    p.help,
  ]);
  if (passthrough) args.push([`-- ${passthrough.usage}`, passthrough.help]);
  // Seeding "Arguments" and "Flags" first keeps them ahead of named groups.
  const groups = new Map<string, [string, string][]>([
    ["Arguments", args.flatMap(([left, help]) => help ? [[left, help]] : [])],
    ["Flags", []],
  ]);
  for (const entry of resolve(spec)) {
    const { options: o, placeholder, kind } = entry.field;
    const ph = kind === "boolean" ? "" : `=${o.placeholder ?? placeholder}`;
    const left = `${o.short ? `-${o.short}, ` : "    "}--${entry.flag}${ph}`;
    const def = showDefault(entry.field);
    const right = [
      o.help,
      o.env && `($${o.env})`,
      def && `[default: ${def}]`,
      o.required && "(required)",
    ].filter(Boolean).join(" ");
    const group = o.group ?? "Flags";
    groups.set(group, [...(groups.get(group) ?? []), [left, right]]);
  }
  const help: [string, string] = ["-h, --help", "Show this help and exit."];
  groups.set("Built-in", [...(groups.get("Built-in") ?? []), help]);
  const rows = [...groups.values()].flat();
  const width = Math.max(...rows.map(([left]) => left.length));
  const lines = [`Usage: ${usageLine(options)}`];
  if (options.description) lines.push("", options.description);
  for (const [heading, group] of groups) {
    if (group.length === 0) continue;
    lines.push("", `${heading}:`);
    for (const [left, right] of group) {
      lines.push(`  ${left.padEnd(width)}  ${right}`.trimEnd());
    }
  }
  if (options.footer) lines.push("", options.footer);
  return lines.join("\n");
}

/**
 * Reads flags and environment into the values of `entries`, or `undefined` when help
 * was asked for; hands every positional argument to `positional`.
 */
function readFlags(
  entries: Entry[],
  args: readonly string[],
  env: Record<string, string | undefined>,
  fail: (message: string) => never,
  positional: (value: string) => void,
): Record<string, unknown> | undefined {
  const convert = (entry: Entry, raw: string, source: string): unknown => {
    try {
      return entry.field.parse(raw);
    } catch (e) {
      const { accepts, env } = entry.field.options;
      if (accepts !== undefined) {
        const from = source === `$${env}` ? ` (from ${source})` : "";
        return fail(`${label(entry)} must be ${accepts}, not ${JSON.stringify(raw)}${from}`);
      }
      const reason = e instanceof Error ? e.message : String(e);
      return fail(
        `${label(entry)}: ${JSON.stringify(raw)} ${reason} (from ${source})`,
      );
    }
  };

  const byFlag = new Map(entries.map((e) => [e.flag, e]));
  const { tokens } = parseArgs({
    args: [...args],
    strict: false,
    allowPositionals: true,
    tokens: true,
    options: {
      help: { type: "boolean", short: "h" },
      ...Object.fromEntries(
        entries.map(({ flag, field: { kind, options: o } }) => [
          flag,
          // parseArgs rejects an explicit `short: undefined`, so the key is omitted instead.
          {
            type: kind === "boolean" ? "boolean" : "string",
            ...(o.short ? { short: o.short } : {}),
          } as const,
        ]),
      ),
    },
  });
  // A flag that takes a value would otherwise swallow a following --help as its value.
  const asksHelp = (t: (typeof tokens)[number]): boolean =>
    t.kind === "option" &&
    (t.name === "help" ||
      (!t.inlineValue && (t.value === "--help" || t.value === "-h")));
  if (tokens.some(asksHelp)) return undefined;

  const fromFlags = new Map<string, unknown>();
  for (const token of tokens) {
    if (token.kind === "positional") positional(token.value);
    if (token.kind !== "option") continue;
    const { name, rawName, value, inlineValue } = token;
    const entry = byFlag.get(name);
    // parseArgs only negates when asked to, and not in all runtimes, so --no-x is matched here.
    const negated = name.startsWith("no-") ? byFlag.get(name.slice(3)) : undefined;
    if (!entry && negated?.field.kind === "boolean") {
      if (value !== undefined) fail(`${rawName} does not take a value`);
      fromFlags.set(negated.key, false);
    } else if (!entry) {
      fail(`unknown flag ${rawName}`);
    } else if (entry.field.kind === "boolean") {
      fromFlags.set(
        entry.key,
        value === undefined ? true : convert(entry, value, rawName),
      );
    } else if (
      value === undefined || (!inlineValue && /^(--|-[A-Za-z])/.test(value))
    ) {
      // Without strict mode parseArgs swallows the next flag as the value; reject that.
      fail(`${rawName} needs a value`);
    } else {
      const parsed = convert(entry, value, rawName);
      const prior = fromFlags.get(entry.key);
      fromFlags.set(
        entry.key,
        Array.isArray(prior) && Array.isArray(parsed) ? [...prior, ...parsed] : parsed,
      );
    }
  }

  const config: Record<string, unknown> = {};
  for (const entry of entries) {
    const { kind, options: o } = entry.field;
    // Empty variables are treated as unset, since shells and compose files export them that way.
    const fromEnv = o.env === undefined ? undefined : env[o.env] || undefined;
    let value = fromFlags.has(entry.key)
      ? fromFlags.get(entry.key)
      : fromEnv !== undefined
      ? convert(entry, fromEnv, `$${o.env}`)
      : Array.isArray(o.default)
      ? [...o.default]
      : o.default;
    if (value === undefined && kind === "boolean") value = false;
    if (value === undefined && kind === "list") value = [];
    if (value === undefined && o.required) fail(`${label(entry)} is required`);
    config[entry.key] = value;
  }
  return config;
}

/** A function that throws the {@linkcode ConfigError} of `message` with `usage`. */
function failWith(usage: string): (message: string) => never {
  return (message) => {
    throw new ConfigError(message, usage);
  };
}

/**
 * Parses arguments and environment against a spec; flags beat environment
 * variables, which beat defaults.
 *
 * @param spec The configuration spec.
 * @param options Arguments, environment, program name and description.
 * @returns The parsed configuration, or usage text when `--help` or `-h` was given.
 * @throws {ConfigError} On unknown flags, positional arguments, missing or invalid values.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { field, parseConfig } from "./config.ts";
 *
 * const spec = {
 *   bind: field.string({ env: "BIND", required: true }),
 *   verbose: field.boolean({ short: "v" }),
 * };
 * const r = parseConfig(spec, { args: ["-v"], env: { BIND: ":80" }, name: "echo" });
 * assert.deepEqual(r, { kind: "config", config: { bind: ":80", verbose: true } });
 * ```
 */
export function parseConfig<S extends ConfigSpec>(
  spec: S,
  options: ParseConfigOptions,
): ParseConfigResult<S> {
  const entries = resolve(spec);
  const usage = formatUsage(spec, options);
  const fail = failWith(usage);
  const config = readFlags(entries, options.args, options.env, fail, (value) => {
    fail(`unexpected argument ${JSON.stringify(value)}`);
  });
  if (config === undefined) return { kind: "help", text: usage };
  // The mapped type is what the spec promises; readFlags enforces it.
  return { kind: "config", config: config as ConfigValue<S> };
}

/**
 * A command of a program with several (`git commit`, `ftl-plugin call`): its flags,
 * positional arguments, arguments after `--` and the texts of its usage.
 *
 * @typeParam S The flags' configuration spec.
 * @typeParam P The positional spec.
 * @example
 * ```ts
 * import { type CommandSpec, field } from "./config.ts";
 * const ping = {
 *   name: "tool ping",
 *   flags: { json: field.boolean() },
 *   positionals: { url: { usage: "<URL>", required: true } },
 * } satisfies CommandSpec;
 * console.assert(ping.positionals.url.required);
 * ```
 */
export interface CommandSpec<
  S extends ConfigSpec = ConfigSpec,
  P extends PositionalSpec = PositionalSpec,
> extends UsageOptions {
  /** The command's flags. */
  readonly flags: S;
  /** The command's positional arguments, in order; none if absent. */
  readonly positionals?: P;
}

/**
 * The outcome of {@linkcode parseCommand}: flags, positional arguments and the
 * arguments after `--`, or usage text because help was requested.
 *
 * @typeParam S The flags' configuration spec.
 * @typeParam P The positional spec.
 * @example
 * ```ts
 * import { field, parseCommand, type ParseCommandResult } from "./config.ts";
 * const command = { name: "t", flags: { n: field.integer() } };
 * const r: ParseCommandResult<typeof command.flags, Record<never, never>> =
 *   parseCommand(command, { args: ["-h"], env: {} });
 * console.assert(r.kind === "help");
 * ```
 */
export type ParseCommandResult<S extends ConfigSpec, P extends PositionalSpec> =
  | { kind: "config"; config: ConfigValue<S>; args: PositionalValue<P>; rest: string[] }
  | { kind: "help"; text: string };

/**
 * Parses a command's arguments and environment against its spec: flags as
 * {@linkcode parseConfig} does, positional arguments in order, and (with a
 * `passthrough`) everything after the first `--` untouched.
 *
 * @param command The command's spec.
 * @param input Its arguments (after the command's name) and the environment.
 * @returns The parsed command, or its usage text when `--help` or `-h` came before `--`.
 * @throws {ConfigError} On unknown flags, missing or invalid values, missing or extra arguments.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { field, parseCommand } from "./config.ts";
 *
 * const run = {
 *   name: "tool run",
 *   flags: { dir: field.string({ default: "." }) },
 *   positionals: { mode: { usage: "[MODE]", default: "fast" } },
 *   passthrough: { usage: "<exe> [args…]", required: true },
 * };
 * const r = parseCommand(run, { args: ["--dir=/tmp", "--", "ls", "-l"], env: {} });
 * assert.deepEqual(r, {
 *   kind: "config",
 *   config: { dir: "/tmp" },
 *   args: { mode: "fast" },
 *   rest: ["ls", "-l"],
 * });
 * ```
 */
export function parseCommand<
  S extends ConfigSpec,
  const P extends PositionalSpec = Record<never, never>,
>(
  command: CommandSpec<S, P>,
  input: { readonly args: readonly string[]; readonly env: Record<string, string | undefined> },
): ParseCommandResult<S, P> {
  const usage = formatUsage(command.flags, command);
  const fail = failWith(usage);
  const { passthrough } = command;
  const dash = passthrough ? input.args.indexOf("--") : -1;
  const positionals = Object.entries(command.positionals ?? {});
  const given: string[] = [];
  const config = readFlags(
    resolve(command.flags),
    dash === -1 ? input.args : input.args.slice(0, dash),
    input.env,
    fail,
    (value) => {
      if (given.length === positionals.length) {
        const hint = passthrough?.misplaced ? `: ${passthrough.misplaced}` : "";
        fail(`unexpected argument ${JSON.stringify(value)}${hint}`);
      }
      given.push(value);
    },
  );
  if (config === undefined) return { kind: "help", text: usage };
  const args: Record<string, string | undefined> = {};
  positionals.forEach(([key, p], i) => {
    args[key] = given[i] ?? p.default;
    if (args[key] === undefined && p.required) fail(p.missing ?? `missing ${p.usage}`);
  });
  const rest = dash === -1 ? [] : input.args.slice(dash + 1);
  if (passthrough?.required && rest.length === 0) {
    fail(passthrough.missing ?? `missing -- ${passthrough.usage}`);
  }
  // The mapped types are what the spec promises; the checks above enforce them.
  return {
    kind: "config",
    config: config as ConfigValue<S>,
    args: args as PositionalValue<P>,
    rest,
  };
}
