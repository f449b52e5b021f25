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

import { parseArgs } from "node:util";

/**
 * The value kinds a field can hold; the kind decides parsing and the usage placeholder.
 *
 * @example
 * ```ts
 * import { field, type FieldKind } from "./config.ts";
 * const kind: FieldKind = field.url().kind;
 * console.assert(kind === "url");
 * ```
 */
export type FieldKind =
  | "string"
  | "number"
  | "integer"
  | "boolean"
  | "url"
  | "enum"
  | "list";

/**
 * Options shared by every field builder.
 *
 * @typeParam T The parsed value type, which `default` must match.
 * @example
 * ```ts
 * import { field, type FieldOptions } from "./config.ts";
 * const options: FieldOptions<number> = { env: "PORT", short: "p", help: "Port to listen on." };
 * console.assert(field.integer(options).options.env === "PORT");
 * ```
 */
export interface FieldOptions<T> {
  /** Long flag name without dashes; defaults to the kebab-case spec key. */
  readonly flag?: string;
  /** Environment variable consulted when the flag is absent. */
  readonly env?: string;
  /** Value used when neither the flag nor the environment variable is set. */
  readonly default?: T;
  /** Whether parsing fails when no flag, environment variable or default supplies a value. */
  readonly required?: boolean;
  /** One-line description shown in the usage text. */
  readonly help?: string;
  /** Usage heading this field is listed under; ungrouped fields appear under `Flags:`. */
  readonly group?: string;
  /** Single-letter short flag, such as `p` for `-p`. */
  readonly short?: string;
  /** Placeholder shown after `=` in the usage text instead of the type name. */
  readonly placeholder?: string;
}

/**
 * A typed field descriptor produced by the {@linkcode field} builders.
 *
 * @typeParam T The parsed value type.
 * @typeParam D `true` when the parsed value can never be `undefined`.
 * @example
 * ```ts
 * import { type Field, field } from "./config.ts";
 * const port: Field<number, true> = field.integer({ default: 8080 });
 * console.assert(port.parse("80") === 80);
 * ```
 */
export interface Field<T, D extends boolean = boolean> {
  /** Which kind of value the field holds. */
  readonly kind: FieldKind;
  /** The options the field was declared with. */
  readonly options: FieldOptions<T>;
  /** Usage placeholder for the value, or `""` for booleans that take none. */
  readonly placeholder: string;
  /** Whether the parsed value can never be `undefined`; it carries `D` for type inference. */
  readonly defined: D;
  /** Converts one raw string, throwing an `Error` whose message is the reason it is invalid. */
  readonly parse: (raw: string) => T;
}

/**
 * Resolves to `true` when options guarantee a value, via `required: true` or a `default`.
 *
 * @typeParam O The options object passed to a field builder.
 * @example
 * ```ts
 * import type { FieldOptions, HasValue } from "./config.ts";
 * const always: HasValue<{ required: true }> = true;
 * const maybe: HasValue<FieldOptions<string>> = false;
 * console.assert(always && !maybe);
 * ```
 */
export type HasValue<O> = O extends { readonly required: true } ? true
  : O extends { readonly default: NonNullable<unknown> } ? true
  : false;

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

function make<T, D extends boolean>(
  kind: FieldKind,
  options: FieldOptions<T> = {},
  placeholder: string,
  parse: (raw: string) => T,
): Field<T, D> {
  // Booleans and lists always fall back to false / [] so they are always defined.
  const defined = kind === "boolean" || kind === "list" ||
    options.required === true || options.default !== undefined;
  return { kind, options, placeholder, defined: defined as D, parse };
}

function toNumber(raw: string, integer: boolean): number {
  const trimmed = raw.trim();
  const n = Number(trimmed);
  if (trimmed === "" || !Number.isFinite(n)) throw new Error("is not a number");
  if (integer && !Number.isSafeInteger(n)) throw new Error("is not an integer");
  return n;
}

const TRUTHY = ["true", "1", "yes"];
const FALSY = ["false", "0", "no"];

/**
 * Builders for typed field descriptors, one per value kind; {@linkcode field} implements it.
 *
 * @example
 * ```ts
 * import { field, type FieldBuilders } from "./config.ts";
 * const builders: FieldBuilders = field;
 * console.assert(builders.list().kind === "list");
 * ```
 */
export interface FieldBuilders {
  /**
   * Declares a free-form string field.
   *
   * @param options Field options.
   * @returns A string field descriptor.
   * @example
   * ```ts
   * import { field, parseConfig } from "./config.ts";
   * const r = parseConfig({ bind: field.string({ default: "127.0.0.1" }) }, { args: [], env: {}, name: "x" });
   * if (r.kind === "config") console.assert(r.config.bind === "127.0.0.1");
   * ```
   */
  string<const O extends FieldOptions<string> = FieldOptions<string>>(
    options?: O,
  ): Field<string, HasValue<O>>;
  /**
   * Declares a finite number field.
   *
   * @param options Field options.
   * @returns A number field descriptor.
   * @example
   * ```ts
   * import { field, parseConfig } from "./config.ts";
   * const r = parseConfig({ ratio: field.number() }, { args: ["--ratio=0.5"], env: {}, name: "x" });
   * if (r.kind === "config") console.assert(r.config.ratio === 0.5);
   * ```
   */
  number<const O extends FieldOptions<number> = FieldOptions<number>>(
    options?: O,
  ): Field<number, HasValue<O>>;
  /**
   * Declares a safe-integer field.
   *
   * @param options Field options.
   * @returns An integer field descriptor.
   * @example
   * ```ts
   * import { field, parseConfig } from "./config.ts";
   * const r = parseConfig({ port: field.integer({ env: "PORT" }) }, { args: [], env: { PORT: "80" }, name: "x" });
   * if (r.kind === "config") console.assert(r.config.port === 80);
   * ```
   */
  integer<const O extends FieldOptions<number> = FieldOptions<number>>(
    options?: O,
  ): Field<number, HasValue<O>>;
  /**
   * Declares an on/off switch, set by `--flag`, `--no-flag` or `--flag=true|false`; it defaults to `false`.
   *
   * @param options Field options.
   * @returns A boolean field descriptor.
   * @example
   * ```ts
   * import { field, parseConfig } from "./config.ts";
   * const r = parseConfig({ verbose: field.boolean() }, { args: ["--verbose"], env: {}, name: "x" });
   * if (r.kind === "config") console.assert(r.config.verbose);
   * ```
   */
  boolean(options?: FieldOptions<boolean>): Field<boolean, true>;
  /**
   * Declares an absolute URL field, parsed into a `URL` object.
   *
   * @param options Field options.
   * @returns A URL field descriptor.
   * @example
   * ```ts
   * import { field, parseConfig } from "./config.ts";
   * const r = parseConfig({ endpoint: field.url() }, { args: ["--endpoint", "http://h:1/"], env: {}, name: "x" });
   * if (r.kind === "config") console.assert(r.config.endpoint?.port === "1");
   * ```
   */
  url<const O extends FieldOptions<URL> = FieldOptions<URL>>(
    options?: O,
  ): Field<URL, HasValue<O>>;
  /**
   * Declares a field restricted to fixed values, typed as their literal union.
   *
   * @param values The allowed values.
   * @param options Field options.
   * @returns An enum field descriptor.
   * @example
   * ```ts
   * import { field, parseConfig } from "./config.ts";
   * const r = parseConfig({ mode: field.enum(["a", "b"], { default: "a" }) }, { args: [], env: {}, name: "x" });
   * if (r.kind === "config") console.assert(r.config.mode === "a");
   * ```
   */
  enum<
    const V extends readonly string[],
    const O extends FieldOptions<V[number]> = FieldOptions<V[number]>,
  >(values: V, options?: O): Field<V[number], HasValue<O>>;
  /**
   * Declares a string list, filled by repeating the flag or comma-separating values; it defaults to `[]`.
   *
   * @param options Field options.
   * @returns A list field descriptor.
   * @example
   * ```ts
   * import { field, parseConfig } from "./config.ts";
   * const r = parseConfig({ tag: field.list() }, { args: ["--tag", "a,b", "--tag", "c"], env: {}, name: "x" });
   * if (r.kind === "config") console.assert(r.config.tag.length === 3);
   * ```
   */
  list(options?: FieldOptions<string[]>): Field<string[], true>;
}

/**
 * The field builders; see {@linkcode FieldBuilders} for each one.
 *
 * @example
 * ```ts
 * import { field } from "./config.ts";
 * const spec = { port: field.integer({ env: "PORT", default: 80 }), tags: field.list() };
 * console.assert(spec.port.kind === "integer");
 * ```
 */
export const field: FieldBuilders = {
  string: (options) => make("string", options, "STRING", (raw) => raw),
  number: (options) => make("number", options, "NUMBER", (raw) => toNumber(raw, false)),
  integer: (options) => make("integer", options, "INT", (raw) => toNumber(raw, true)),
  boolean: (options) =>
    make("boolean", options, "", (raw) => {
      const lower = raw.trim().toLowerCase();
      if (TRUTHY.includes(lower)) return true;
      if (FALSY.includes(lower)) return false;
      throw new Error("is not a boolean (want true/false, 1/0 or yes/no)");
    }),
  url: (options) =>
    make("url", options, "URL", (raw) => {
      try {
        return new URL(raw);
      } catch {
        throw new Error("is not a URL");
      }
    }),
  enum: (values, options) =>
    make("enum", options, values.join("|"), (raw) => {
      const found = values.find((v) => v === raw);
      if (found === undefined) {
        throw new Error(`is not one of ${values.join(", ")}`);
      }
      return found;
    }),
  // Trim and drop empties so `a, b` and a trailing comma behave as people expect.
  list: (options) =>
    make(
      "list",
      options,
      "STRING,...",
      (raw) => raw.split(",").map((s) => s.trim()).filter(Boolean),
    ),
};

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

function showDefault(value: unknown): string {
  if (Array.isArray(value)) return value.join(",");
  return value instanceof URL ? value.href : String(value ?? "");
}

/**
 * Renders usage text: the usage line, the description, then flags grouped by
 * heading with a final `Built-in:` group for `--help`. It has no trailing newline.
 *
 * @param spec The configuration spec.
 * @param options Program name and optional description.
 * @returns The usage text.
 * @example
 * ```ts
 * import { field, formatUsage } from "./config.ts";
 * const text = formatUsage({ port: field.integer({ env: "PORT" }) }, { name: "echo" });
 * console.assert(text.startsWith("Usage: echo [flags]"));
 * ```
 */
export function formatUsage(
  spec: ConfigSpec,
  options: { name: string; description?: string },
): string {
  // Seeding "Flags" first keeps ungrouped fields ahead of named groups.
  const groups = new Map<string, [string, string][]>([["Flags", []]]);
  for (const entry of resolve(spec)) {
    const { options: o, placeholder, kind } = entry.field;
    const ph = kind === "boolean" ? "" : `=${o.placeholder ?? placeholder}`;
    const left = `${o.short ? `-${o.short}, ` : "    "}--${entry.flag}${ph}`;
    const def = showDefault(o.default);
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
  const lines = [`Usage: ${options.name} [flags]`];
  if (options.description) lines.push("", options.description);
  for (const [heading, group] of groups) {
    if (group.length === 0) continue;
    lines.push("", `${heading}:`);
    for (const [left, right] of group) {
      lines.push(`  ${left.padEnd(width)}  ${right}`.trimEnd());
    }
  }
  return lines.join("\n");
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
  const fail = (message: string): never => {
    throw new ConfigError(message, usage);
  };
  const convert = (entry: Entry, raw: string, source: string): unknown => {
    try {
      return entry.field.parse(raw);
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      return fail(
        `${label(entry)}: ${JSON.stringify(raw)} ${reason} (from ${source})`,
      );
    }
  };

  const byFlag = new Map(entries.map((e) => [e.flag, e]));
  const { tokens } = parseArgs({
    args: [...options.args],
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
  if (tokens.some(asksHelp)) {
    return { kind: "help", text: usage };
  }

  const fromFlags = new Map<string, unknown>();
  for (const token of tokens) {
    if (token.kind === "positional") {
      fail(`unexpected argument ${JSON.stringify(token.value)}`);
    }
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
    const env = o.env === undefined ? undefined : options.env[o.env] || undefined;
    let value = fromFlags.has(entry.key)
      ? fromFlags.get(entry.key)
      : env !== undefined
      ? convert(entry, env, `$${o.env}`)
      : Array.isArray(o.default)
      ? [...o.default]
      : o.default;
    if (value === undefined && kind === "boolean") value = false;
    if (value === undefined && kind === "list") value = [];
    if (value === undefined && o.required) fail(`${label(entry)} is required`);
    config[entry.key] = value;
  }
  // The mapped type is what the spec promises; the loop above enforces it.
  return { kind: "config", config: config as ConfigValue<S> };
}
