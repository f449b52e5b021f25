/**
 * Structured logging compatible with FTL's Go logger: numeric levels, one JSON
 * object per line on the wire, and an optional human-readable text format. The
 * logger never touches runtime globals; callers supply the sink, which keeps
 * it usable unchanged under Deno, Node and in tests.
 *
 * @module
 */

/**
 * Log levels as the numbers FTL writes on the wire.
 *
 * @example Compare levels
 * ```ts
 * import { LogLevel } from "./log.ts";
 * console.assert(LogLevel.Warn > LogLevel.Info);
 * ```
 */
export const LogLevel = {
  /** Unset: whoever reads the entry gives it its own default level. */
  Default: 0,
  Trace: 1,
  Debug: 5,
  Info: 9,
  Warn: 13,
  Error: 17,
} as const;

/** One of the numeric values of {@linkcode LogLevel}. */
export type LogLevel = typeof LogLevel[keyof typeof LogLevel];

/**
 * Textual level names accepted by `LOG_LEVEL` and `--log-level` (in any case, as FTL's
 * Go parser lowercases them); `default` stands for the program's own default level.
 *
 * @example
 * ```ts
 * import { LogLevel, type LogLevelName, parseLogLevel } from "./log.ts";
 * const name: LogLevelName = "warn";
 * console.assert(parseLogLevel(name) === LogLevel.Warn);
 * ```
 */
export type LogLevelName = "trace" | "debug" | "info" | "warn" | "error" | "default";

/**
 * Every name {@linkcode parseLogLevel} accepts, least severe first, for usage texts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LOG_LEVEL_NAMES } from "./log.ts";
 * assert.ok(LOG_LEVEL_NAMES.includes("default"));
 * ```
 */
export const LOG_LEVEL_NAMES: readonly LogLevelName[] = [
  "trace",
  "debug",
  "info",
  "warn",
  "error",
  "default",
];

// Highest first, so the first level at or below a number is the nearest.
const NAMED: ReadonlyArray<readonly [Exclude<LogLevelName, "default">, LogLevel]> = [
  ["error", LogLevel.Error],
  ["warn", LogLevel.Warn],
  ["info", LogLevel.Info],
  ["debug", LogLevel.Debug],
  ["trace", LogLevel.Trace],
];

/**
 * Parses a textual level name, ignoring case and surrounding whitespace, as FTL's Go
 * parser does: `trace`, `debug`, `info`, `warn`, `error`, or `default`, which gives
 * `defaultLevel`.
 *
 * @param text The level name, e.g. the value of `LOG_LEVEL`.
 * @param defaultLevel What `default` means to the caller.
 * @returns The matching numeric level.
 * @throws {Error} If `text` is not a known level name.
 *
 * @example Parse a level from the environment
 * ```ts
 * import assert from "node:assert/strict";
 * import { LogLevel, parseLogLevel } from "./log.ts";
 * assert.equal(parseLogLevel("WARN"), LogLevel.Warn);
 * assert.equal(parseLogLevel("Default"), LogLevel.Info);
 * assert.equal(parseLogLevel("default", LogLevel.Warn), LogLevel.Warn);
 * assert.throws(() => parseLogLevel("verbose"), /Invalid log level "verbose"/);
 * ```
 */
export function parseLogLevel(text: string, defaultLevel: LogLevel = LogLevel.Info): LogLevel {
  const wanted = text.trim().toLowerCase();
  if (wanted === "default") return defaultLevel;
  const found = NAMED.find(([name]) => name === wanted);
  if (found) return found[1];
  throw new Error(
    `Invalid log level ${JSON.stringify(text)}: use ${LOG_LEVEL_NAMES.join(", ")} (any case)`,
  );
}

/**
 * Names a numeric level, rounding down so in-between values still get a name.
 *
 * @param level Any numeric level.
 * @returns The level's name, or `"default"` below {@linkcode LogLevel.Trace}.
 *
 * @example Name an in-between level
 * ```ts
 * import { LogLevel, logLevelName } from "./log.ts";
 * console.assert(logLevelName(LogLevel.Info + 1) === "info");
 * ```
 */
export function logLevelName(level: number): LogLevelName {
  return NAMED.find(([, value]) => level >= value)?.[0] ?? "default";
}

/**
 * One log record as carried on the wire.
 *
 * @example
 * ```ts
 * import { encodeLogEntry, type LogEntry, LogLevel } from "./log.ts";
 * const entry: LogEntry = { level: LogLevel.Info, attributes: { scope: "echo" }, message: "ready" };
 * console.assert(encodeLogEntry(entry).startsWith('{"level":9'));
 * ```
 */
export interface LogEntry {
  /** Numeric level; see {@linkcode LogLevel}. */
  level: number;
  /** String key/value pairs; `scope` names the emitting component. */
  attributes?: Record<string, string>;
  /** The log message. */
  message: string;
  /** RFC 3339 timestamp with nanoseconds. */
  time?: string;
  /** Text of the associated error. */
  error?: string;
}

/**
 * Encodes an entry as one JSON line, in the key order the Go logger uses.
 *
 * @param entry The entry to encode.
 * @returns The JSON text, without a trailing newline.
 *
 * @example Encode an entry
 * ```ts
 * import { encodeLogEntry, LogLevel } from "./log.ts";
 * const line = encodeLogEntry({ level: LogLevel.Info, message: "hi" });
 * console.assert(line === '{"level":9,"message":"hi"}');
 * ```
 */
export function encodeLogEntry(entry: LogEntry): string {
  const { level, attributes, message, time, error } = entry;
  return JSON.stringify({ level, attributes, message, time, error });
}

function stringify(value: unknown): string {
  if (typeof value === "string") return value;
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/**
 * Decodes one line of JSON log output, tolerating anything a plugin may print.
 *
 * @param line One line of output, with or without its newline.
 * @returns The entry, or `undefined` if the line is not a log entry.
 *
 * @example Tell log lines from other output
 * ```ts
 * import { decodeLogEntry } from "./log.ts";
 * console.assert(decodeLogEntry('{"level":9,"message":"hi"}')?.message === "hi");
 * console.assert(decodeLogEntry("panic: oops") === undefined);
 * ```
 */
export function decodeLogEntry(line: string): LogEntry | undefined {
  const raw = parseEntryRecord(line);
  return raw === undefined ? undefined : entryOf(raw);
}

// The parsed line, if it is a JSON object with a numeric level and a string message.
function parseEntryRecord(line: string): EntryRecord | undefined {
  // Most lines that are not entries are not JSON either: skip the throw and catch.
  if (line.charCodeAt(0) !== 123 /* { */ && line.trimStart()[0] !== "{") return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isRecord(raw)) return undefined;
  const { level, message } = raw;
  if (typeof level !== "number" || !Number.isFinite(level)) return undefined;
  if (typeof message !== "string") return undefined;
  return raw as EntryRecord;
}

type EntryRecord = Record<string, unknown> & { level: number; message: string };

function entryOf(raw: EntryRecord): LogEntry {
  const { level, attributes, message, time, error } = raw;
  const entry: LogEntry = { level, message };
  if (isRecord(attributes)) {
    entry.attributes = stringAttributes(attributes);
  }
  if (typeof time === "string") entry.time = time;
  if (error !== undefined && error !== null) entry.error = stringify(error);
  return entry;
}

// JSON.parse made `record`, so every key is an own data property (even "__proto__"): it
// is kept as it is when every value is already a string, as Go writes them.
function stringAttributes(record: Record<string, unknown>): Record<string, string> {
  for (const key in record) {
    if (typeof record[key] !== "string") {
      // fromEntries defines own properties, so a "__proto__" key stays plain data.
      return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, stringify(v)]));
    }
  }
  return record as Record<string, string>;
}

/** Where the parts of a line that {@linkcode scanPlainEntry} accepted are. */
interface PlainEntry {
  level: number;
  attributes: Record<string, string> | undefined;
  /** Index of the `,` before `"message"`. */
  message: number;
  /** Index just past the message's closing quote. */
  messageEnd: number;
  hasTime: boolean;
  /** Index of the closing `}`. */
  end: number;
}

// Characters that JSON.parse would unescape or reject, or that JSON.stringify would
// escape: lines holding any of them take the JSON.parse path.
// deno-lint-ignore no-control-regex -- control characters are what it looks for
const NOT_PLAIN = /[\\\x00-\x1f\ud800-\udfff]/;

/**
 * Reads a line in exactly the shape FTL's loggers write, with nothing escaped:
 * `{"level":9,"attributes":{"k":"v"},"message":"m","time":"t","error":"e"}`, where
 * `attributes`, `time` and `error` may be absent. Anything else (spaces, other keys or
 * order, escapes, non-string values) gives `undefined`, and JSON.parse decides. For the
 * lines it accepts the result is what JSON.parse would give, and each string's JSON is
 * the string in quotes, so it can be copied as it stands. JSON.parse was the largest
 * part of what mirroring a plugin's logs cost (docs/BENCHMARKS.md).
 */
function scanPlainEntry(line: string): PlainEntry | undefined {
  if (!line.startsWith('{"level":') || NOT_PLAIN.test(line)) return undefined;
  let i = 9;
  let level = 0;
  for (let c = line.charCodeAt(i); c >= 48 && c <= 57; c = line.charCodeAt(++i)) {
    level = level * 10 + c - 48;
  }
  const digits = i - 9;
  if (digits === 0 || digits > 15 || (digits > 1 && line.charCodeAt(9) === 48)) return undefined;
  let attributes: Record<string, string> | undefined;
  if (line.startsWith(',"attributes":{', i)) {
    i += 15;
    attributes = {};
    if (line.charCodeAt(i) === 125 /* } */) i++;
    else {
      for (;;) {
        if (line.charCodeAt(i) !== 34 /* " */) return undefined;
        const keyEnd = line.indexOf('"', i + 1);
        if (keyEnd === -1 || !line.startsWith(':"', keyEnd + 1)) return undefined;
        const valueEnd = line.indexOf('"', keyEnd + 3);
        if (valueEnd === -1) return undefined;
        const key = line.slice(i + 1, keyEnd);
        // JSON.parse makes "__proto__" an own property; assigning it would not.
        if (key === "__proto__") return undefined;
        // Assigning keeps a repeated key where it first was, with its last value, as
        // JSON.parse does.
        attributes[key] = line.slice(keyEnd + 3, valueEnd);
        i = valueEnd + 1;
        const c = line.charCodeAt(i++);
        if (c === 125 /* } */) break;
        if (c !== 44 /* , */) return undefined;
      }
    }
  }
  if (!line.startsWith(',"message":"', i)) return undefined;
  const message = i;
  i = line.indexOf('"', i + 12) + 1;
  if (i === 0) return undefined;
  const messageEnd = i;
  const hasTime = line.startsWith(',"time":"', i);
  if (hasTime) {
    i = line.indexOf('"', i + 9) + 1;
    if (i === 0) return undefined;
  }
  if (line.startsWith(',"error":"', i)) {
    i = line.indexOf('"', i + 10) + 1;
    if (i === 0) return undefined;
  }
  if (i !== line.length - 1 || line.charCodeAt(i) !== 125 /* } */) return undefined;
  return { level, attributes, message, messageEnd, hasTime, end: i };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const COLORS = {
  default: "",
  trace: "\x1b[2m",
  debug: "\x1b[2m",
  info: "\x1b[36m",
  warn: "\x1b[33m",
  error: "\x1b[31m",
} as const;

// Quote only when a bare value would be ambiguous to read back.
function quote(value: string): string {
  return value === "" || /[\s"=\\]/.test(value) ? JSON.stringify(value) : value;
}

/**
 * Formats an entry as a single human-readable line.
 *
 * @param entry The entry to format.
 * @param options Set `color` to wrap the level name in ANSI colour codes.
 * @returns The line, without a trailing newline.
 *
 * @example Format an entry for a terminal
 * ```ts
 * import { formatLogText, LogLevel } from "./log.ts";
 * const text = formatLogText({ level: LogLevel.Info, message: "hi", attributes: { scope: "echo" } });
 * console.assert(text === "info  echo: hi");
 * ```
 */
export function formatLogText(
  entry: LogEntry,
  options: { color?: boolean } = {},
): string {
  const name = logLevelName(entry.level);
  const color = options.color ? COLORS[name] : "";
  // Pad outside the escape codes so columns line up with or without colour.
  let text = (color ? `${color}${name}\x1b[0m` : name) +
    " ".repeat(Math.max(1, 6 - name.length));
  const { scope, ...rest } = entry.attributes ?? {};
  if (scope !== undefined) text += `${scope}: `;
  text += entry.message;
  for (const [key, value] of Object.entries(rest)) {
    text += ` ${key}=${quote(value)}`;
  }
  if (entry.error !== undefined) text += ` error=${quote(entry.error)}`;
  return text;
}

/**
 * Renders any thrown value as text, following `Error.cause` chains.
 *
 * @param error The thrown value.
 * @returns The message, with each cause appended as `: cause`.
 *
 * @example Describe a wrapped error
 * ```ts
 * import { errorText } from "./log.ts";
 * const error = new Error("dial failed", { cause: new Error("refused") });
 * console.assert(errorText(error) === "dial failed: refused");
 * ```
 */
export function errorText(error: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  let current = error;
  // Remembering visited errors stops a self-referential cause chain looping.
  while (current instanceof Error && !seen.has(current)) {
    seen.add(current);
    const text = current.message || current.name;
    // A wrapper that already ends with its cause's words (ConnectError does) says them once.
    if (!parts.at(-1)?.endsWith(text)) parts.push(text);
    current = current.cause;
  }
  if (parts.length === 0 || !(current instanceof Error || current == null)) {
    try {
      parts.push(String(current));
    } catch {
      // String() throws for objects without a prototype or a broken toString.
      parts.push(Object.prototype.toString.call(current));
    }
  }
  return parts.join(": ");
}

/**
 * Line encoding used by a {@linkcode Logger}: FTL's JSON lines, or text for people.
 *
 * @example
 * ```ts
 * import { Logger, type LogFormat } from "./log.ts";
 * const format: LogFormat = "text";
 * new Logger({ format, write: () => {} }).info("hello");
 * ```
 */
export type LogFormat = "json" | "text";

/**
 * Options for constructing a {@linkcode Logger}.
 *
 * @example
 * ```ts
 * import { Logger, type LoggerOptions, LogLevel } from "./log.ts";
 * const lines: string[] = [];
 * const options: LoggerOptions = { level: LogLevel.Debug, write: (line) => lines.push(line) };
 * new Logger(options).debug("kept");
 * console.assert(lines.length === 1);
 * ```
 */
export interface LoggerOptions {
  /**
   * Minimum level written.
   *
   * @default {LogLevel.Info}
   */
  level?: LogLevel;
  /**
   * Line encoding.
   *
   * @default {"json"}
   */
  format?: LogFormat;
  /** Receives each whole line, including its trailing `"\n"`. */
  write: (line: string) => void;
  /**
   * Whether text lines colour the level name; ignored for JSON.
   *
   * @default {false}
   */
  color?: boolean;
  /** Attributes added to every entry. */
  attributes?: Record<string, string>;
  /**
   * Clock used to timestamp entries; replaceable for deterministic tests.
   *
   * @default {() => new Date()}
   */
  now?: () => Date;
}

/**
 * Writes structured log entries to a caller-supplied sink.
 *
 * @example Log at several levels
 * ```ts
 * import { Logger, LogLevel } from "./log.ts";
 * const lines: string[] = [];
 * const log = new Logger({ level: LogLevel.Debug, write: (l) => lines.push(l) });
 * log.scope("db").debug("connecting", { host: "localhost" });
 * log.error("connect failed", new Error("refused"));
 * console.assert(lines.length === 2);
 * ```
 */
export class Logger {
  /** Minimum level this logger writes. */
  readonly level: LogLevel;
  #options: LoggerOptions;

  /**
   * Creates a logger.
   *
   * @param options Sink, level, format and base attributes.
   */
  constructor(options: LoggerOptions) {
    this.#options = options;
    this.level = options.level ?? LogLevel.Info;
  }

  /**
   * Reports whether entries at `level` would be written.
   *
   * @param level A numeric level.
   * @returns `true` if `level` is at or above this logger's level.
   */
  isEnabled(level: number): boolean {
    return level >= this.level;
  }

  /**
   * Logs a message at an arbitrary level.
   *
   * @param level A numeric level.
   * @param message The message.
   * @param options Extra attributes, and an error for {@linkcode errorText}.
   */
  log(
    level: number,
    message: string,
    options: { attributes?: Record<string, string>; error?: unknown } = {},
  ): void {
    if (!this.isEnabled(level)) return;
    const { attributes, error } = options;
    this.#emit({
      level,
      attributes: { ...this.#options.attributes, ...attributes },
      message,
      error: error === undefined ? undefined : errorText(error),
    });
  }

  /** Logs `message` at trace level with optional extra `attributes`. */
  trace(message: string, attributes?: Record<string, string>): void {
    this.log(LogLevel.Trace, message, { attributes });
  }

  /** Logs `message` at debug level with optional extra `attributes`. */
  debug(message: string, attributes?: Record<string, string>): void {
    this.log(LogLevel.Debug, message, { attributes });
  }

  /** Logs `message` at info level with optional extra `attributes`. */
  info(message: string, attributes?: Record<string, string>): void {
    this.log(LogLevel.Info, message, { attributes });
  }

  /** Logs `message` at warn level with optional extra `attributes`. */
  warn(message: string, attributes?: Record<string, string>): void {
    this.log(LogLevel.Warn, message, { attributes });
  }

  /**
   * Logs at error level.
   *
   * @param message The message.
   * @param error The cause, rendered with {@linkcode errorText}.
   * @param attributes Extra attributes.
   */
  error(
    message: string,
    error?: unknown,
    attributes?: Record<string, string>,
  ): void {
    this.log(LogLevel.Error, message, { attributes, error });
  }

  /**
   * Creates a sub-logger that shares this one's sink and settings.
   *
   * @param attributes Attributes to add; they win over this logger's.
   * @returns The sub-logger.
   */
  with(attributes: Record<string, string>): Logger {
    const merged = { ...this.#options.attributes, ...attributes };
    return new Logger({ ...this.#options, attributes: merged });
  }

  /**
   * Creates a sub-logger whose entries carry a `scope` attribute.
   *
   * @param name The scope, shown as a prefix in text output.
   * @returns The sub-logger.
   */
  scope(name: string): Logger {
    return this.with({ scope: name });
  }

  /**
   * Re-logs an entry decoded from elsewhere, such as a plugin's output,
   * keeping its level, message, error and time; this logger's attributes
   * (its scope included) override the entry's on conflict.
   *
   * @param entry The entry to mirror; dropped if below this logger's level.
   */
  forward(entry: LogEntry): void {
    if (!this.isEnabled(entry.level)) return;
    this.#write(entry.level, this.#merge(entry.attributes), entry.message, entry.time, entry.error);
  }

  /**
   * Re-logs one line of a plugin's JSON output, as {@linkcode decodeLogEntry}
   * followed by {@linkcode Logger.forward} would, but without the intermediate
   * entry: the host calls it for every line a plugin prints.
   *
   * @param line One line of output, without its newline.
   * @param defaultLevel The level given to an entry whose level is
   *   {@linkcode LogLevel.Default} (unset).
   * @returns `false` if the line is not a log entry; nothing is written then.
   *
   * @example Mirror a plugin's line under the host's scope
   * ```ts
   * import { Logger, LogLevel } from "./log.ts";
   * const lines: string[] = [];
   * const log = new Logger({ write: (l) => lines.push(l) }).scope("echo");
   * console.assert(log.forwardLine('{"level":9,"message":"ready","time":"t"}', LogLevel.Info));
   * console.assert(lines[0] === '{"level":9,"attributes":{"scope":"echo"},"message":"ready","time":"t"}\n');
   * console.assert(!log.forwardLine("panic: oops", LogLevel.Info));
   * ```
   */
  forwardLine(line: string, defaultLevel: number): boolean {
    if (this.#options.format !== "text") {
      const plain = scanPlainEntry(line);
      if (plain !== undefined) {
        const level = plain.level === LogLevel.Default ? defaultLevel : plain.level;
        if (this.isEnabled(level)) this.#writeScanned(line, level, plain);
        return true;
      }
    }
    const raw = parseEntryRecord(line);
    if (raw === undefined) return false;
    const level = raw.level === LogLevel.Default ? defaultLevel : raw.level;
    if (!this.isEnabled(level)) return true;
    const { attributes, time, error } = raw;
    this.#write(
      level,
      this.#merge(isRecord(attributes) ? stringAttributes(attributes) : undefined),
      raw.message,
      typeof time === "string" ? time : undefined,
      error === undefined || error === null ? undefined : stringify(error),
    );
    return true;
  }

  // What #write would write for the entry, with the message, time and error taken
  // as they stand in the line: scanPlainEntry made sure they need no escaping.
  #writeScanned(line: string, level: number, plain: PlainEntry): void {
    try {
      const attributes = this.#merge(plain.attributes);
      let json = '{"level":' + level;
      if (attributes !== undefined && !isEmpty(attributes)) {
        json += ',"attributes":' + this.#attributesJson(attributes);
      }
      if (plain.hasTime) {
        json += line.slice(plain.message, plain.end);
      } else {
        const time = this.#options.now ? rfc3339Nano(this.#options.now()) : nowStamp();
        json += line.slice(plain.message, plain.messageEnd) + ',"time":' + JSON.stringify(time) +
          line.slice(plain.messageEnd, plain.end);
      }
      this.#options.write(json + "}\n");
    } catch {
      // As in #write: logging never takes the caller down.
    }
  }

  // An entry's attributes with this logger's own winning. The common cases, no
  // attributes or only the ones this logger sets (a guest's own scope), come out as
  // this logger's record itself, whose JSON is kept.
  #merge(
    attributes: Record<string, string> | undefined,
  ): Record<string, string> | undefined {
    const own = this.#options.attributes;
    if (own === undefined || attributes === undefined) return attributes ?? own;
    for (const key in attributes) {
      if (!Object.hasOwn(own, key)) return { ...attributes, ...own };
    }
    return own;
  }

  #emit(entry: LogEntry): void {
    this.#write(entry.level, entry.attributes, entry.message, entry.time, entry.error);
  }

  // Called for every line a plugin prints: the JSON is put together here rather than
  // by stringifying an entry object, which costs more (docs/BENCHMARKS.md).
  #write(
    level: number,
    attributes: Record<string, string> | undefined,
    message: string,
    time: string | undefined,
    error: string | undefined,
  ): void {
    // Logging must never take the caller down, whatever the sink or clock does.
    try {
      if (attributes !== undefined && isEmpty(attributes)) attributes = undefined;
      time ??= this.#options.now ? rfc3339Nano(this.#options.now()) : nowStamp();
      if (this.#options.format === "text") {
        const entry = { level, attributes, message, time, error };
        this.#options.write(formatLogText(entry, { color: this.#options.color }) + "\n");
        return;
      }
      let json = '{"level":' + (Number.isFinite(level) ? level : "null");
      if (attributes !== undefined) json += ',"attributes":' + this.#attributesJson(attributes);
      json += ',"message":' + JSON.stringify(message) + ',"time":' + JSON.stringify(time);
      if (error !== undefined) json += ',"error":' + JSON.stringify(error);
      this.#options.write(json + "}\n");
    } catch {
      // Deliberately swallowed: there is nowhere safer to report the failure.
    }
  }

  #ownJson: string | undefined;

  #attributesJson(attributes: Record<string, string>): string {
    if (attributes !== this.#options.attributes) return JSON.stringify(attributes);
    return this.#ownJson ??= JSON.stringify(attributes);
  }
}

function isEmpty(record: Record<string, string>): boolean {
  for (const _ in record) return false;
  return true;
}

function nowStamp(): string {
  const ms = Date.now();
  return ms === lastStampMs ? lastStamp : rfc3339Nano(new Date(ms));
}

// JavaScript clocks stop at milliseconds; pad to the nanosecond width Go emits.
// Formatting costs more than logging the rest of a line: keep the last one.
let lastStampMs = NaN;
let lastStamp = "";
function rfc3339Nano(date: Date): string {
  const ms = date.getTime();
  if (ms !== lastStampMs) {
    lastStampMs = ms;
    lastStamp = date.toISOString().replace(/Z$/, "000000Z");
  }
  return lastStamp;
}
