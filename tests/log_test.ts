import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  decodeLogEntry,
  encodeLogEntry,
  errorText,
  formatLogText,
  type LogEntry,
  Logger,
  type LoggerOptions,
  LogLevel,
  logLevelName,
  parseLogLevel,
} from "../internal/log.ts";

const GO_LINE =
  '{"level":13,"attributes":{"scope":"x"},"message":"m","time":"2024-11-20T11:30:04.123456789-07:00","error":"boom"}';
const FIXED = new Date("2024-11-20T18:30:04.123Z");

function capture(
  options: Partial<LoggerOptions> = {},
): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = new Logger({
    now: () => FIXED,
    ...options,
    write: (line) => lines.push(line),
  });
  return { logger, lines };
}

function entries(lines: string[]): (LogEntry | undefined)[] {
  return lines.map((line) => decodeLogEntry(line));
}

describe("encodeLogEntry and decodeLogEntry", () => {
  it("round-trips an entry with every field", () => {
    const entry: LogEntry = {
      level: LogLevel.Info,
      attributes: { scope: "echo", key: "value" },
      message: "hello",
      time: "2024-11-20T18:30:04.123000000Z",
      error: "boom",
    };
    assert.deepEqual(decodeLogEntry(encodeLogEntry(entry)), entry);
  });

  it("encodes keys in Go's order without a trailing newline", () => {
    const line = encodeLogEntry({
      error: "e",
      time: "t",
      message: "m",
      attributes: { a: "b" },
      level: 9,
    });
    assert.equal(
      line,
      '{"level":9,"attributes":{"a":"b"},"message":"m","time":"t","error":"e"}',
    );
  });

  it("decodes a line exactly as Go writes it with every field", () => {
    assert.deepEqual(decodeLogEntry(GO_LINE), {
      level: 13,
      attributes: { scope: "x" },
      message: "m",
      time: "2024-11-20T11:30:04.123456789-07:00",
      error: "boom",
    });
  });

  it("leaves absent optional fields absent", () => {
    const entry = decodeLogEntry('{"level":9,"message":"m"}');
    assert.deepEqual(entry, { level: 9, message: "m" });
    assert.equal(
      encodeLogEntry({ level: 9, message: "m" }),
      '{"level":9,"message":"m"}',
    );
  });

  it("returns undefined for lines that are not entries", () => {
    const garbage = [
      "",
      "not json",
      "[1]",
      '{"level":"x"}',
      "null",
      "42",
      '"string"',
      '{"level":9}',
      '{"message":"m"}',
      '{"level":9,"message":1}',
      '{"level":1e999,"message":"m"}',
      '{"level":-1e999,"message":"m"}',
    ];
    for (const line of garbage) {
      assert.equal(decodeLogEntry(line), undefined, line);
    }
  });

  it("accepts a huge but finite level", () => {
    assert.equal(decodeLogEntry('{"level":1e300,"message":"m"}')?.level, 1e300);
  });

  it("stringifies non-string attribute values", () => {
    const line =
      '{"level":9,"message":"m","attributes":{"n":1,"b":true,"z":null,"o":{"a":[1]},"s":"s"}}';
    assert.deepEqual(decodeLogEntry(line)?.attributes, {
      n: "1",
      b: "true",
      z: "null",
      o: '{"a":[1]}',
      s: "s",
    });
  });

  it("ignores unknown keys and malformed optional fields", () => {
    const line = '{"level":9,"message":"m","extra":1,"attributes":[1],"time":5}';
    assert.deepEqual(decodeLogEntry(line), { level: 9, message: "m" });
  });

  it("stringifies a non-string error", () => {
    assert.equal(
      decodeLogEntry('{"level":9,"message":"m","error":3}')?.error,
      "3",
    );
    assert.equal(
      decodeLogEntry('{"level":9,"message":"m","error":{"code":1}}')?.error,
      '{"code":1}',
    );
  });

  it("keeps a __proto__ attribute as plain data", () => {
    const entry = decodeLogEntry(
      '{"level":9,"message":"m","attributes":{"__proto__":"x"}}',
    );
    assert.equal(Object.getPrototypeOf(entry?.attributes), Object.prototype);
    assert.equal(Object.keys(entry?.attributes ?? {}).join(), "__proto__");
  });
});

describe("parseLogLevel", () => {
  it("parses every level name case-insensitively", () => {
    assert.equal(parseLogLevel("trace"), LogLevel.Trace);
    assert.equal(parseLogLevel("Debug"), LogLevel.Debug);
    assert.equal(parseLogLevel("INFO"), LogLevel.Info);
    assert.equal(parseLogLevel(" wArN "), LogLevel.Warn);
    assert.equal(parseLogLevel("error"), LogLevel.Error);
  });

  it("reads `default`, in any case, as the caller's default level (info unless given)", () => {
    for (const text of ["default", "DEFAULT", "Default", " default "]) {
      assert.equal(parseLogLevel(text), LogLevel.Info, text);
      assert.equal(parseLogLevel(text, LogLevel.Warn), LogLevel.Warn, text);
    }
  });

  it("throws an error naming the bad value and the valid ones", () => {
    assert.throws(() => parseLogLevel("verbose"), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.match(error.message, /"verbose"/);
      assert.match(error.message, /trace, debug, info, warn, error, default/);
      return true;
    });
  });
});

describe("logLevelName", () => {
  it("names exact levels", () => {
    assert.equal(logLevelName(LogLevel.Default), "default");
    assert.equal(logLevelName(LogLevel.Trace), "trace");
    assert.equal(logLevelName(LogLevel.Debug), "debug");
    assert.equal(logLevelName(LogLevel.Info), "info");
    assert.equal(logLevelName(LogLevel.Warn), "warn");
    assert.equal(logLevelName(LogLevel.Error), "error");
  });

  it("rounds in-between levels down to the nearest named level", () => {
    assert.equal(logLevelName(4), "trace");
    assert.equal(logLevelName(10), "info");
    assert.equal(logLevelName(100), "error");
    assert.equal(logLevelName(-3), "default");
    assert.equal(logLevelName(Number.NaN), "default");
  });
});

describe("formatLogText", () => {
  const entry: LogEntry = {
    level: LogLevel.Info,
    attributes: { scope: "echo", key: "value", key2: "quoted value" },
    message: "message",
    error: "boom",
  };

  it("formats a plain line with scope prefix, attributes and error last", () => {
    assert.equal(
      formatLogText(entry),
      'info  echo: message key=value key2="quoted value" error=boom',
    );
  });

  it("quotes values containing quotes and empty values", () => {
    const text = formatLogText({
      level: LogLevel.Warn,
      message: "m",
      attributes: { q: 'a"b', e: "" },
      error: "two words",
    });
    assert.equal(text, 'warn  m q="a\\"b" e="" error="two words"');
  });

  it("colours only the level name when color is true", () => {
    const text = formatLogText(entry, { color: true });
    assert.ok(text.startsWith("\x1b[36minfo\x1b[0m  echo: message"));
    assert.equal(text.split("\x1b[").length, 3);
  });

  it("uses a distinct colour per severity", () => {
    const colour = (level: number) =>
      formatLogText({ level, message: "m" }, { color: true }).slice(0, 5);
    assert.equal(colour(LogLevel.Trace), "\x1b[2mt");
    assert.equal(colour(LogLevel.Debug), "\x1b[2md");
    assert.equal(colour(LogLevel.Warn), "\x1b[33m");
    assert.equal(colour(LogLevel.Error), "\x1b[31m");
  });

  it("writes no escape codes without color", () => {
    assert.ok(!formatLogText(entry).includes("\x1b"));
  });
});

describe("errorText", () => {
  it("renders an Error as its message", () => {
    assert.equal(errorText(new Error("boom")), "boom");
  });

  it("appends the cause chain", () => {
    const error = new Error("a", { cause: new Error("b", { cause: "c" }) });
    assert.equal(errorText(error), "a: b: c");
  });

  it("says a cause once when its wrapper's message already ends with it", () => {
    const refused = new Error("Connection refused (os error 111)");
    const error = new Error("[unavailable] Connection refused (os error 111)", { cause: refused });
    assert.equal(errorText(error), "[unavailable] Connection refused (os error 111)");
    assert.equal(errorText(new Error("a: b", { cause: new Error("c") })), "a: b: c");
  });

  it("stops on a cyclic cause chain", () => {
    const error = new Error("loop");
    error.cause = error;
    assert.equal(errorText(error), "loop");
  });

  it("renders non-errors with String", () => {
    assert.equal(errorText("plain"), "plain");
    assert.equal(errorText(42), "42");
    assert.equal(errorText(undefined), "undefined");
  });

  it("does not throw for values String cannot convert", () => {
    assert.equal(errorText(Object.create(null)), "[object Object]");
  });
});

describe("Logger", () => {
  it("writes one JSON line with a nanosecond UTC timestamp", () => {
    const { logger, lines } = capture();
    logger.info("hello", { key: "value" });
    assert.deepEqual(lines, [
      '{"level":9,"attributes":{"key":"value"},"message":"hello","time":"2024-11-20T18:30:04.123000000Z"}\n',
    ]);
  });

  it("omits attributes when there are none", () => {
    const { logger, lines } = capture();
    logger.warn("hello");
    assert.equal(entries(lines)[0]?.attributes, undefined);
  });

  it("defaults to the info level", () => {
    const { logger, lines } = capture();
    assert.equal(logger.level, LogLevel.Info);
    logger.debug("hidden");
    logger.info("shown");
    assert.deepEqual(entries(lines).map((e) => e?.message), ["shown"]);
  });

  it("drops entries below the configured level", () => {
    const { logger, lines } = capture({ level: LogLevel.Warn });
    logger.trace("t");
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.error("e");
    logger.log(15, "between");
    assert.deepEqual(entries(lines).map((e) => e?.message), [
      "w",
      "e",
      "between",
    ]);
  });

  it("reports which levels are enabled", () => {
    const { logger } = capture({ level: LogLevel.Debug });
    assert.equal(logger.isEnabled(LogLevel.Trace), false);
    assert.equal(logger.isEnabled(LogLevel.Debug), true);
    assert.equal(logger.isEnabled(LogLevel.Error), true);
  });

  it("writes every level at the trace level", () => {
    const { logger, lines } = capture({ level: LogLevel.Trace });
    logger.trace("t");
    logger.debug("d");
    assert.deepEqual(entries(lines).map((e) => e?.level), [1, 5]);
  });

  it("merges sub-logger attributes with the child winning", () => {
    const { logger, lines } = capture({ attributes: { a: "1", b: "1" } });
    logger.with({ b: "2", c: "2" }).info("m", { c: "3" });
    assert.deepEqual(entries(lines)[0]?.attributes, { a: "1", b: "2", c: "3" });
  });

  it("adds a scope attribute with scope()", () => {
    const { logger, lines } = capture();
    logger.scope("outer").scope("inner").info("m");
    assert.deepEqual(entries(lines)[0]?.attributes, { scope: "inner" });
  });

  it("does not change the parent when creating a sub-logger", () => {
    const { logger, lines } = capture({ attributes: { a: "1" } });
    logger.with({ b: "2" });
    logger.info("m");
    assert.deepEqual(entries(lines)[0]?.attributes, { a: "1" });
  });

  it("forwards an entry keeping its level, message, error and time", () => {
    const { logger, lines } = capture();
    logger.scope("host").forward(decodeLogEntry(GO_LINE)!);
    assert.deepEqual(entries(lines)[0], {
      level: 13,
      attributes: { scope: "host" },
      message: "m",
      time: "2024-11-20T11:30:04.123456789-07:00",
      error: "boom",
    });
  });

  it("forwards an entry merging its attributes with the logger's", () => {
    const { logger, lines } = capture();
    logger.scope("host").forward({
      level: 9,
      message: "m",
      attributes: { scope: "guest", module: "echo" },
    });
    assert.deepEqual(entries(lines)[0], {
      level: 9,
      attributes: { scope: "host", module: "echo" },
      message: "m",
      time: "2024-11-20T18:30:04.123000000Z",
    });
  });

  it("filters forwarded entries by level", () => {
    const { logger, lines } = capture({ level: LogLevel.Warn });
    logger.forward({ level: LogLevel.Info, message: "m" });
    assert.deepEqual(lines, []);
  });

  it("writes text lines when the format is text", () => {
    const { logger, lines } = capture({ format: "text" });
    logger.scope("echo").error("failed", new Error("boom"), { id: "7" });
    assert.deepEqual(lines, ["error echo: failed id=7 error=boom\n"]);
  });

  it("colours text lines when color is set", () => {
    const { logger, lines } = capture({ format: "text", color: true });
    logger.warn("careful");
    assert.deepEqual(lines, ["\x1b[33mwarn\x1b[0m  careful\n"]);
  });

  it("does not throw when the write function throws", () => {
    const logger = new Logger({
      write: () => {
        throw new Error("sink closed");
      },
    });
    assert.doesNotThrow(() => logger.error("m", new Error("e")));
  });

  it("does not throw when the clock throws", () => {
    const { logger, lines } = capture({ now: () => new Date(Number.NaN) });
    assert.doesNotThrow(() => logger.info("m"));
    assert.deepEqual(lines, []);
  });

  it("logs an Error with its cause chain", () => {
    const { logger, lines } = capture();
    const cause = new Error("refused");
    logger.error("connect failed", new Error("dial", { cause }));
    const entry = entries(lines)[0];
    assert.equal(entry?.level, LogLevel.Error);
    assert.equal(entry?.error, "dial: refused");
  });

  it("logs a string error as is", () => {
    const { logger, lines } = capture();
    logger.error("failed", "plain reason");
    assert.equal(entries(lines)[0]?.error, "plain reason");
  });

  it("omits the error field when no error is given", () => {
    const { logger, lines } = capture();
    logger.error("failed");
    assert.equal(entries(lines)[0]?.error, undefined);
    assert.ok(!lines[0].includes('"error"'));
  });
});

describe("Logger.forwardLine", () => {
  // What forwardLine must write: the line decoded, its level 0 made the default, and
  // forwarded. forwardLine reads plain lines with its own scanner, so every line here
  // is written both ways and the bytes compared.
  function reference(logger: Logger, line: string, defaultLevel: number): boolean {
    const entry = decodeLogEntry(line);
    if (!entry) return false;
    logger.forward(entry.level === 0 ? { ...entry, level: defaultLevel } : entry);
    return true;
  }

  const LINES = [
    GO_LINE,
    '{"level":9,"message":"m"}',
    '{"level":0,"message":"unset level"}',
    '{"level":9,"attributes":{},"message":"m"}',
    '{"level":9,"attributes":{"scope":"guest"},"message":"m","time":"t"}',
    '{"level":9,"attributes":{"scope":"x","a":"1"},"message":"m","error":"e"}',
    '{"level":9,"attributes":{"a":"1","a":"2","b":"3"},"message":"m"}',
    '{"level":9,"attributes":{"__proto__":"p"},"message":"m"}',
    '{"level":9,"attributes":{"2":"two","1":"one"},"message":"m"}',
    '{"level":9,"attributes":{"n":1,"o":{"k":true}},"message":"m"}',
    '{"level":9,"message":"quote \\" backslash \\\\ newline \\n tab \\t"}',
    '{"level":9,"message":"\\u00e9 \\u2028 \\ud83d\\ude00 \\/"}',
    '{"level":9,"message":"é \u2028 😀 ✓"}',
    '{"level":9,"message":"lone \ud800 surrogate"}',
    '{"level":9,"message":"raw \u0001 control"}',
    '{"level":09,"message":"m"}',
    '{"level":9.5,"message":"m"}',
    '{"level":-1,"message":"m"}',
    '{"level":1e3,"message":"m"}',
    '{"level":1234567890123456789,"message":"m"}',
    '{"level":17,"message":"m","error":null}',
    '{"level":17,"message":"m","error":{"code":3}}',
    '{"level":17,"message":"m","time":5}',
    '{"level":9,"message":"m","extra":"x"}',
    '{"level":9,"message":"m","message":"again"}',
    '{"level":9,"attributes":{"a":"1"},"message":"m","attributes":{"b":"2"}}',
    '{"message":"m","level":9}',
    '{ "level": 9, "message": "m" }',
    '{"level":9,"message":"m"} ',
    '{"level":9,"message":"m"}}',
    '{"level":9,"message":"m",}',
    '{"level":9,"message":"m',
    '{"level":9,"attributes":{"a":"1"',
    '{"level":9,"attributes":{"a":"1",},"message":"m"}',
    '{"level":"9","message":"m"}',
    '{"level":9}',
    "[1,2]",
    "panic: oops",
    "",
  ];

  // A seeded generator of lines put together from the pieces a plugin might print.
  function* generated(count: number): Generator<string> {
    let seed = 7;
    const pick = <T>(items: readonly T[]): T => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return items[seed % items.length];
    };
    const plain = ['"s"', '""', '"a b"', '"é"', '"{,}:[]"'];
    const strings = [...plain, ...plain, '"\\""', '"\\n"', "1", "null", '"\\u0041"'];
    for (let n = 0; n < count; n++) {
      let line = pick(['{"level":', '{"level":', '{"level": ', '{"lvl":']) +
        pick(["0", "5", "9", "17", "13", "010", "2.5"]);
      const attributes = pick(["", "", "{}", '{"scope":"guest"}', '{"k":' + pick(strings) + "}"]);
      if (attributes) line += ',"attributes":' + attributes;
      line += pick([',"message":', ',"message":', ', "message":']) + pick(strings);
      if (pick([true, false])) line += ',"time":' + pick(strings);
      if (pick([true, false])) line += ',"error":' + pick(strings);
      line += pick(["}", "}", "}", "} ", ""]);
      yield line;
    }
  }

  const loggers: Array<[string, Partial<LoggerOptions>, (l: Logger) => Logger]> = [
    ["a scoped logger", {}, (l) => l.scope("host")],
    ["a logger without attributes", {}, (l) => l],
    ["a logger with two attributes", { attributes: { scope: "h", b: "2" } }, (l) => l],
    ["a logger at warn", { level: LogLevel.Warn }, (l) => l.scope("host")],
    ["a text logger", { format: "text" }, (l) => l.scope("host")],
  ];
  for (const [name, options, derive] of loggers) {
    it(`writes what decoding and forwarding write, for ${name}`, () => {
      for (const line of [...LINES, ...generated(2000)]) {
        const ours = capture(options);
        const theirs = capture(options);
        const taken = derive(ours.logger).forwardLine(line, LogLevel.Info);
        assert.equal(taken, reference(derive(theirs.logger), line, LogLevel.Info), line);
        assert.deepEqual(ours.lines, theirs.lines, line);
      }
    });
  }

  it("stamps a line without a time, before its error", () => {
    const { logger, lines } = capture();
    assert.ok(logger.forwardLine('{"level":17,"message":"m","error":"e"}', 9));
    assert.deepEqual(lines, [
      '{"level":17,"message":"m","time":"2024-11-20T18:30:04.123000000Z","error":"e"}\n',
    ]);
  });

  it("keeps the entry's other attributes under the logger's scope", () => {
    const { logger, lines } = capture();
    logger.scope("host").forwardLine(
      '{"level":9,"attributes":{"scope":"guest","id":"7"},"message":"m","time":"t"}',
      9,
    );
    assert.deepEqual(lines, [
      '{"level":9,"attributes":{"scope":"host","id":"7"},"message":"m","time":"t"}\n',
    ]);
  });
});
