/**
 * Typed field descriptors for `config.ts`: one builder per kind of value
 * (`field.integer`, `field.url`, `field.duration`, …), each carrying its flag, env var,
 * default and help, and the parser that turns a raw string into the field's type.
 *
 * @example
 * ```ts
 * import { field } from "./field.ts";
 * console.assert(field.integer({ default: 80 }).parse("8080") === 8080);
 * ```
 *
 * @module
 */
import { durationMs, formatDuration } from "./duration.ts";

/**
 * The value kinds a field can hold; the kind decides parsing and the usage placeholder.
 *
 * @example
 * ```ts
 * import { field, type FieldKind } from "./field.ts";
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
  | "list"
  | "duration"
  | "custom";

/**
 * Options shared by every field builder.
 *
 * @typeParam T The parsed value type, which `default` must match.
 * @example
 * ```ts
 * import { field, type FieldOptions } from "./field.ts";
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
  /**
   * What a valid value is, in words (`tcp or unix`); given, an invalid value is
   * reported as `--flag must be <accepts>, not "<value>"` instead of with the kind's reason.
   */
  readonly accepts?: string;
}

/**
 * A typed field descriptor produced by the {@linkcode field} builders.
 *
 * @typeParam T The parsed value type.
 * @typeParam D `true` when the parsed value can never be `undefined`.
 * @example
 * ```ts
 * import { type Field, field } from "./field.ts";
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
  /**
   * Writes a value as a user would type it, for the default shown in usage; `String` if
   * absent. (A method, so that a `Field<number>` is still a `Field<unknown>`.)
   */
  format?(value: T): string;
}

/**
 * Resolves to `true` when options guarantee a value, via `required: true` or a `default`.
 *
 * @typeParam O The options object passed to a field builder.
 * @example
 * ```ts
 * import type { FieldOptions, HasValue } from "./field.ts";
 * const always: HasValue<{ required: true }> = true;
 * const maybe: HasValue<FieldOptions<string>> = false;
 * console.assert(always && !maybe);
 * ```
 */
export type HasValue<O> = O extends { readonly required: true } ? true
  : O extends { readonly default: NonNullable<unknown> } ? true
  : false;

function make<T, D extends boolean>(
  kind: FieldKind,
  options: FieldOptions<T> = {},
  placeholder: string,
  parse: (raw: string) => T,
  format?: (value: T) => string,
): Field<T, D> {
  // Booleans and lists always fall back to false / [] so they are always defined.
  const defined = kind === "boolean" || kind === "list" ||
    options.required === true || options.default !== undefined;
  return {
    kind,
    options,
    placeholder,
    defined: defined as D,
    parse,
    ...(format ? { format } : {}),
  };
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
 * import { field, type FieldBuilders } from "./field.ts";
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
  /**
   * Declares a Go-style duration (`500ms`, `30s`, `1m30s`), parsed into milliseconds; a
   * default is shown in usage as a duration too.
   *
   * @param options Field options; `default` is in milliseconds.
   * @returns A duration field descriptor.
   * @example
   * ```ts
   * import { field, parseConfig } from "./config.ts";
   * const r = parseConfig({ wait: field.duration() }, { args: ["--wait=1m30s"], env: {}, name: "x" });
   * if (r.kind === "config") console.assert(r.config.wait === 90_000);
   * ```
   */
  duration<const O extends FieldOptions<number> = FieldOptions<number>>(
    options?: O,
  ): Field<number, HasValue<O>>;
  /**
   * Declares a field of any type, read by `how.parse` (which throws an `Error` whose
   * message is the reason a value is invalid) and shown in usage with `how.placeholder`.
   *
   * @param how The placeholder, the parser and, for a default that `String` would not
   *   show as typed, its formatter.
   * @param options Field options.
   * @returns A field descriptor of the parser's type.
   * @example
   * ```ts
   * import { field, parseConfig } from "./config.ts";
   * const upper = field.custom({ placeholder: "WORD", parse: (raw) => raw.toUpperCase() });
   * const r = parseConfig({ word: upper }, { args: ["--word=hi"], env: {}, name: "x" });
   * if (r.kind === "config") console.assert(r.config.word === "HI");
   * ```
   */
  custom<T, const O extends FieldOptions<T> = FieldOptions<T>>(
    how: { placeholder: string; parse: (raw: string) => T; format?: (value: T) => string },
    options?: O,
  ): Field<T, HasValue<O>>;
}

/**
 * The field builders; see {@linkcode FieldBuilders} for each one.
 *
 * @example
 * ```ts
 * import { field } from "./field.ts";
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
  duration: (options) =>
    make("duration", options, "DURATION", (raw) => {
      const ms = durationMs(raw);
      if (ms === undefined) throw new Error("is not a duration (try 500ms, 30s, 2m or 1m30s)");
      return ms;
    }, formatDuration),
  custom: (how, options) => make("custom", options, how.placeholder, how.parse, how.format),
};
