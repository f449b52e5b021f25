import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  type CommandSpec,
  ConfigError,
  type ConfigSpec,
  field,
  formatUsage,
  parseCommand,
  parseConfig,
  usageLine,
} from "../internal/config.ts";
import { formatDuration, parseDuration } from "../internal/duration.ts";

const spec = {
  port: field.integer({
    env: "ECHO_PORT",
    default: 8080,
    short: "p",
    help: "Port to listen on.",
  }),
  bind: field.string({
    env: "FTL_BIND",
    required: true,
    help: "Address to bind.",
  }),
  ratio: field.number({ env: "ECHO_RATIO" }),
  mode: field.enum(["a", "b"], { env: "ECHO_MODE", default: "a" }),
  endpoint: field.url({ env: "ECHO_ENDPOINT" }),
  tag: field.list({ env: "ECHO_TAGS" }),
  verbose: field.boolean({ env: "ECHO_VERBOSE", short: "v" }),
  logLevel: field.string({
    group: "Logging",
    placeholder: "LEVEL",
    help: "Log level.",
  }),
};

const base = { FTL_BIND: "127.0.0.1" };

function config(args: string[], env: Record<string, string> = base) {
  const result = parseConfig(spec, { args, env, name: "echo" });
  assert.equal(result.kind, "config");
  if (result.kind !== "config") throw new Error("unreachable");
  return result.config;
}

function errorOf(args: string[], env: Record<string, string> = base): string {
  try {
    parseConfig(spec, { args, env, name: "echo" });
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.exitCode, 2);
    assert.ok(e.usage.startsWith("Usage: echo [flags]"));
    assert.ok(!e.message.includes("\n"), "message must be one line");
    return e.message;
  }
  throw new Error("expected a ConfigError");
}

describe("parseConfig", () => {
  it("uses defaults when neither flag nor env is set", () => {
    const c = config([]);
    assert.equal(c.port, 8080);
    assert.equal(c.mode, "a");
    assert.equal(c.ratio, undefined);
    assert.equal(c.endpoint, undefined);
  });

  it("prefers env over default", () => {
    assert.equal(config([], { ...base, ECHO_PORT: "9000" }).port, 9000);
  });

  it("prefers a flag over env", () => {
    assert.equal(
      config(["--port", "7000"], { ...base, ECHO_PORT: "9000" }).port,
      7000,
    );
  });

  it("accepts the --flag=value form", () => {
    assert.equal(config(["--port=7001"]).port, 7001);
  });

  it("accepts a short flag", () => {
    assert.equal(config(["-p", "7002"]).port, 7002);
  });

  it("derives kebab-case flag names from spec keys", () => {
    assert.equal(config(["--log-level", "debug"]).logLevel, "debug");
  });

  it("treats an empty env var as unset", () => {
    assert.equal(config([], { ...base, ECHO_PORT: "" }).port, 8080);
  });

  it("defaults a boolean to false", () => {
    assert.equal(config([]).verbose, false);
  });

  it("sets a boolean with --flag and a short flag", () => {
    assert.equal(config(["--verbose"]).verbose, true);
    assert.equal(config(["-v"]).verbose, true);
  });

  it("clears a boolean with --no-flag over env", () => {
    assert.equal(
      config(["--no-verbose"], { ...base, ECHO_VERBOSE: "yes" }).verbose,
      false,
    );
  });

  it("accepts --flag=true and --flag=false", () => {
    assert.equal(config(["--verbose=true"]).verbose, true);
    assert.equal(config(["--verbose=false"]).verbose, false);
  });

  it("accepts true/false/1/0/yes/no case-insensitively for env booleans", () => {
    for (const raw of ["true", "1", "YES"]) {
      assert.equal(config([], { ...base, ECHO_VERBOSE: raw }).verbose, true);
    }
    for (const raw of ["False", "0", "no"]) {
      assert.equal(config([], { ...base, ECHO_VERBOSE: raw }).verbose, false);
    }
  });

  it("rejects an invalid env boolean naming the flag and env var", () => {
    assert.equal(
      errorOf([], { ...base, ECHO_VERBOSE: "maybe" }),
      '--verbose (env ECHO_VERBOSE): "maybe" is not a boolean (want true/false, 1/0 or yes/no) (from $ECHO_VERBOSE)',
    );
  });

  it("rejects a value on --no-flag", () => {
    assert.equal(
      errorOf(["--no-verbose=true"]),
      "--no-verbose does not take a value",
    );
  });

  it("defaults a list to an empty array", () => {
    assert.deepEqual(config([]).tag, []);
  });

  it("collects a list from repeated and comma-separated flags", () => {
    assert.deepEqual(config(["--tag", "a", "--tag=b,c"]).tag, ["a", "b", "c"]);
  });

  it("splits a list env var on commas", () => {
    assert.deepEqual(config([], { ...base, ECHO_TAGS: "x, y" }).tag, [
      "x",
      "y",
    ]);
  });

  it("lets list flags replace the env list", () => {
    assert.deepEqual(config(["--tag", "a"], { ...base, ECHO_TAGS: "x" }).tag, [
      "a",
    ]);
  });

  it("accepts an enum value", () => {
    assert.equal(config(["--mode", "b"]).mode, "b");
  });

  it("rejects an enum value from env naming the flag and env var", () => {
    assert.equal(
      errorOf([], { ...base, ECHO_MODE: "c" }),
      '--mode (env ECHO_MODE): "c" is not one of a, b (from $ECHO_MODE)',
    );
  });

  it("parses a URL into a URL object", () => {
    const c = config(["--endpoint", "https://example.com:8443/x"]);
    assert.ok(c.endpoint instanceof URL);
    assert.equal(c.endpoint.port, "8443");
  });

  it("rejects a bad URL naming the flag and env var", () => {
    assert.equal(
      errorOf(["--endpoint", "nope"]),
      '--endpoint (env ECHO_ENDPOINT): "nope" is not a URL (from --endpoint)',
    );
  });

  it("accepts a fractional number", () => {
    assert.equal(config(["--ratio", " 0.25 "]).ratio, 0.25);
  });

  it("rejects a non-number naming the flag and env var", () => {
    assert.equal(
      errorOf(["--ratio", "Infinity"]),
      '--ratio (env ECHO_RATIO): "Infinity" is not a number (from --ratio)',
    );
  });

  it("rejects a non-number from env saying it came from env", () => {
    assert.equal(
      errorOf([], { ...base, ECHO_PORT: "abc" }),
      '--port (env ECHO_PORT): "abc" is not a number (from $ECHO_PORT)',
    );
  });

  it("rejects a fraction for an integer", () => {
    assert.equal(
      errorOf(["-p", "1.5"]),
      '--port (env ECHO_PORT): "1.5" is not an integer (from -p)',
    );
  });

  it("rejects an integer beyond the safe range", () => {
    assert.match(errorOf(["--port", "9007199254740993"]), /is not an integer/);
  });

  it("rejects a missing required value naming the flag and env var", () => {
    assert.equal(errorOf([], {}), "--bind (env FTL_BIND) is required");
  });

  it("accepts a required value from a flag", () => {
    assert.equal(config(["--bind", "0.0.0.0"], {}).bind, "0.0.0.0");
  });

  it("rejects an unknown flag", () => {
    assert.equal(errorOf(["--frobnicate"]), "unknown flag --frobnicate");
  });

  it("rejects an unknown short flag", () => {
    assert.equal(errorOf(["-x"]), "unknown flag -x");
  });

  it("rejects a flag whose value is missing at the end", () => {
    assert.equal(errorOf(["--port"]), "--port needs a value");
  });

  it("rejects a flag whose value would be another flag", () => {
    assert.equal(errorOf(["--port", "--verbose"]), "--port needs a value");
  });

  it("rejects a positional argument", () => {
    assert.equal(errorOf(["x"]), 'unexpected argument "x"');
  });

  it("rejects a positional argument after --", () => {
    assert.equal(errorOf(["--", "--port"]), 'unexpected argument "--port"');
  });

  it("returns help for --help anywhere, even beside bad input", () => {
    const result = parseConfig(spec, {
      args: ["--frobnicate", "--help"],
      env: {},
      name: "echo",
    });
    assert.equal(result.kind, "help");
  });

  it("returns help when --help follows a flag that takes a value", () => {
    const result = parseConfig(spec, {
      args: ["--port", "--help"],
      env: {},
      name: "echo",
    });
    assert.equal(result.kind, "help");
  });

  it("returns the same text as formatUsage for -h", () => {
    const result = parseConfig(spec, {
      args: ["-h"],
      env: {},
      name: "echo",
      description: "Echo.",
    });
    assert.deepEqual(result, {
      kind: "help",
      text: formatUsage(spec, { name: "echo", description: "Echo." }),
    });
  });

  it("throws a TypeError for a duplicate flag in the spec", () => {
    const dup = {
      a: field.string({ flag: "x" }),
      b: field.string({ flag: "x" }),
    };
    assert.throws(
      () => parseConfig(dup, { args: [], env: {}, name: "t" }),
      TypeError,
    );
  });
});

describe("formatUsage", () => {
  const text = formatUsage(spec, {
    name: "echo",
    description: "Echoes requests.",
  });
  const lines = text.split("\n");
  const line = (flag: string): string => {
    const found = lines.find((l) => l.includes(flag));
    assert.ok(found, `no line for ${flag}`);
    return found;
  };

  it("starts with the usage line and description", () => {
    assert.deepEqual(lines.slice(0, 3), [
      "Usage: echo [flags]",
      "",
      "Echoes requests.",
    ]);
  });

  it("lists ungrouped flags, then groups in order, then Built-in", () => {
    const headings = lines.filter((l) => /^\S.*:$/.test(l));
    assert.deepEqual(headings, ["Flags:", "Logging:", "Built-in:"]);
  });

  it("shows placeholders per type", () => {
    assert.match(line("--port"), /-p, --port=INT /);
    assert.match(line("--bind"), / {4}--bind=STRING /);
    assert.match(line("--ratio"), /--ratio=NUMBER /);
    assert.match(line("--mode"), /--mode=a\|b /);
    assert.match(line("--endpoint"), /--endpoint=URL /);
    assert.match(line("--tag"), /--tag=STRING,\.\.\. /);
    assert.match(line("--log-level"), /--log-level=LEVEL /);
    assert.match(line("--verbose"), /-v, --verbose +\(\$ECHO_VERBOSE\)$/);
  });

  it("shows help, env var, default and required markers", () => {
    assert.match(
      line("--port"),
      /Port to listen on\. \(\$ECHO_PORT\) \[default: 8080\]$/,
    );
    assert.match(
      line("--bind"),
      /Address to bind\. \(\$FTL_BIND\) \(required\)$/,
    );
  });

  it("aligns the description column", () => {
    const starts = [
      ["--port", "Port to listen on."],
      ["--bind", "Address to bind."],
      ["--log-level", "Log level."],
      ["--help", "Show this help"],
    ].map(([flag, help]) => line(flag).indexOf(help));
    assert.ok(starts[0] > 0);
    assert.equal(new Set(starts).size, 1);
  });

  it("ends with the built-in help flag", () => {
    assert.equal(lines.at(-2), "Built-in:");
    assert.match(
      lines.at(-1) ?? "",
      /^ {2}-h, --help +Show this help and exit\.$/,
    );
  });

  it("appends --help to a user-defined Built-in group", () => {
    const custom: ConfigSpec = {
      version: field.boolean({ group: "Built-in", help: "Print version." }),
    };
    const out = formatUsage(custom, { name: "t" }).split("\n");
    assert.deepEqual(out.filter((l) => l.endsWith(":")), ["Built-in:"]);
    assert.match(out.at(-2) ?? "", /--version/);
    assert.match(out.at(-1) ?? "", /--help/);
  });
});

describe("types", () => {
  it("infers the config type from the spec", () => {
    const result = parseConfig(spec, { args: [], env: base, name: "echo" });
    if (result.kind !== "config") throw new Error("expected config");
    const c = result.config;
    const bind: string = c.bind;
    const port: number = c.port;
    const ratio: number | undefined = c.ratio;
    const mode: "a" | "b" = c.mode;
    const endpoint: URL | undefined = c.endpoint;
    const tag: string[] = c.tag;
    const verbose: boolean = c.verbose;
    // @ts-expect-error an optional field may be undefined, so it is not plain string
    const logLevel: string = c.logLevel;
    assert.deepEqual(
      [bind, port, ratio, mode, endpoint, tag, verbose, logLevel],
      ["127.0.0.1", 8080, undefined, "a", undefined, [], false, undefined],
    );
  });

  it("types a required field without a default as always defined", () => {
    const result = parseConfig({ u: field.url({ required: true }) }, {
      args: ["--u", "http://x/"],
      env: {},
      name: "t",
    });
    if (result.kind !== "config") throw new Error("expected config");
    const u: URL = result.config.u;
    assert.equal(u.href, "http://x/");
  });
});

describe("field.duration, field.custom and accepts", () => {
  const extra = {
    timeout: field.duration({ env: "T", default: 30_000 }),
    wait: field.duration(),
    level: field.custom({
      placeholder: "LEVEL",
      parse: (raw) => ({ low: 1, high: 2 } as Record<string, number>)[raw] ?? fail(raw),
      format: (n: number) => (n === 1 ? "low" : "high"),
    }, { default: 1 }),
    bind: field.enum(["tcp", "unix"], { env: "B", accepts: "tcp or unix" }),
  };
  function fail(raw: string): never {
    throw new Error(`is not low or high (${raw})`);
  }
  const parse = (args: string[], env: Record<string, string> = {}) => {
    const r = parseConfig(extra, { args, env, name: "t" });
    if (r.kind !== "config") throw new Error("expected config");
    return r.config;
  };
  const errorOf = (args: string[], env: Record<string, string> = {}): string => {
    try {
      parse(args, env);
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.message;
    }
    throw new Error("expected a ConfigError");
  };

  it("reads Go-style durations into milliseconds, from flags and env", () => {
    assert.equal(parse([]).timeout, 30_000);
    assert.equal(parse([]).wait, undefined);
    assert.equal(parse(["--wait", "1m30s"]).wait, 90_000);
    assert.equal(parse(["--wait=500ms"]).wait, 500);
    assert.equal(parse([], { T: "2h" }).timeout, 7_200_000);
  });

  it("rejects a bad duration naming the flag", () => {
    assert.equal(
      errorOf(["--wait", "soon"]),
      '--wait: "soon" is not a duration (try 500ms, 30s, 2m or 1m30s) (from --wait)',
    );
    assert.match(errorOf(["--wait", "0s"]), /is not a duration/);
  });

  it("parseDuration and formatDuration read each other", () => {
    assert.equal(parseDuration("1m30s"), 90_000);
    assert.throws(() => parseDuration("1x"), /"1x" is not a duration/);
    for (const ms of [250, 1_000, 30_000, 90_000, 3_600_000, 3_723_004]) {
      assert.equal(parseDuration(formatDuration(ms)), ms);
    }
    assert.equal(formatDuration(0), "0s");
  });

  it("parses a custom field with its own parser and reason", () => {
    assert.equal(parse([]).level, 1);
    assert.equal(parse(["--level", "high"]).level, 2);
    assert.equal(
      errorOf(["--level", "mid"]),
      '--level: "mid" is not low or high (mid) (from --level)',
    );
  });

  it("says what a field accepts when it is given that in words", () => {
    assert.equal(errorOf(["--bind", "x"]), '--bind (env B) must be tcp or unix, not "x"');
    assert.equal(
      errorOf([], { B: "y" }),
      '--bind (env B) must be tcp or unix, not "y" (from $B)',
    );
  });

  it("shows durations and custom defaults in usage as they are typed", () => {
    const text = formatUsage(extra, { name: "t" });
    assert.match(text, /--timeout=DURATION +\(\$T\) \[default: 30s\]/);
    assert.match(text, /--level=LEVEL +\[default: low\]/);
  });
});

describe("parseCommand", () => {
  const call = {
    name: "tool call",
    description: "Calls a method.",
    flags: { json: field.boolean(), dir: field.string({ default: "." }) },
    positionals: {
      target: { usage: "<URL>", required: true, missing: "call needs a target", help: "Where." },
      method: { usage: "<Method>", required: true },
      input: { usage: "[JSON]", default: "{}" },
    },
    passthrough: { usage: "args…", misplaced: "plugin arguments go after --", help: "For it." },
    footer: "Exit codes: 0 fine.",
  } satisfies CommandSpec;
  const run = {
    name: "tool run",
    flags: {},
    passthrough: { usage: "<exe> [args…]", required: true, missing: "no plugin to run" },
  };
  const ping = {
    name: "tool ping",
    flags: { wait: field.duration() },
    positionals: { url: { usage: "<URL>", required: true } },
  };
  const errorOf = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      assert.ok(e.usage.startsWith("Usage: tool "));
      return e.message;
    }
    throw new Error("expected a ConfigError");
  };

  it("takes positionals in order, defaults, and what follows -- untouched", () => {
    const r = parseCommand(call, {
      args: ["http://x", "--json", "a.B/C", "--", "--json", "-h"],
      env: {},
    });
    assert.deepEqual(r, {
      kind: "config",
      config: { json: true, dir: "." },
      args: { target: "http://x", method: "a.B/C", input: "{}" },
      rest: ["--json", "-h"],
    });
  });

  it("types required and defaulted positionals as strings, others as optional", () => {
    const r = parseCommand(call, { args: ["u", "m"], env: {} });
    if (r.kind !== "config") throw new Error("expected config");
    const method: string = r.args.method;
    const input: string = r.args.input;
    const optional = { name: "t", flags: {}, positionals: { x: { usage: "[X]" } } };
    const o = parseCommand(optional satisfies CommandSpec, { args: [], env: {} });
    if (o.kind !== "config") throw new Error("expected config");
    // @ts-expect-error neither required nor defaulted: it may be undefined
    const none: string = o.args.x;
    assert.deepEqual([method, input, none], ["m", "{}", undefined]);
  });

  it("names a missing positional with its message, or by its usage", () => {
    assert.equal(errorOf(() => parseCommand(call, { args: [], env: {} })), "call needs a target");
    assert.equal(errorOf(() => parseCommand(call, { args: ["u"], env: {} })), "missing <Method>");
  });

  it("rejects an extra positional, saying where it belongs", () => {
    assert.equal(
      errorOf(() => parseCommand(call, { args: ["u", "m", "{}", "x"], env: {} })),
      'unexpected argument "x": plugin arguments go after --',
    );
    assert.equal(
      errorOf(() => parseCommand(ping, { args: ["u", "v"], env: {} })),
      'unexpected argument "v"',
    );
  });

  it("requires the arguments after -- when the spec says so", () => {
    assert.equal(errorOf(() => parseCommand(run, { args: [], env: {} })), "no plugin to run");
    assert.equal(errorOf(() => parseCommand(run, { args: ["--"], env: {} })), "no plugin to run");
    const r = parseCommand(run, { args: ["--", "deno", "run", "--help"], env: {} });
    assert.deepEqual(r.kind === "config" && r.rest, ["deno", "run", "--help"]);
  });

  it("takes a positional after -- as a positional without a passthrough", () => {
    const r = parseCommand(ping, { args: ["--wait=1s", "--", "http://x"], env: {} });
    assert.deepEqual(r.kind === "config" && [r.config.wait, r.args.url, r.rest], [
      1_000,
      "http://x",
      [],
    ]);
  });

  it("returns help before --, not after it, and before a missing positional", () => {
    assert.equal(parseCommand(call, { args: ["--help"], env: {} }).kind, "help");
    assert.equal(parseCommand(run, { args: ["-h", "--", "x"], env: {} }).kind, "help");
    assert.equal(parseCommand(run, { args: ["--", "x", "--help"], env: {} }).kind, "config");
  });

  it("reports flag errors as parseConfig does", () => {
    assert.equal(
      errorOf(() => parseCommand(ping, { args: ["--bogus", "u"], env: {} })),
      "unknown flag --bogus",
    );
  });

  it("generates a usage line from the positionals and the passthrough", () => {
    const help = parseCommand(call, { args: ["-h"], env: {} });
    assert.equal(help.kind, "help");
    const text = help.kind === "help" ? help.text : "";
    const lines = text.split("\n");
    assert.equal(lines[0], "Usage: tool call [flags] <URL> <Method> [JSON] [-- args…]");
    assert.equal(text, formatUsage(call.flags, call));
    assert.deepEqual(lines.filter((l) => /^\S.*:$/.test(l)), ["Arguments:", "Flags:", "Built-in:"]);
    assert.match(text, /\n {2}<URL> +Where\.\n {2}-- args… +For it\.\n/);
    assert.ok(text.endsWith("\n\nExit codes: 0 fine."));
    assert.equal(
      formatUsage(run.flags, run).split("\n")[0],
      "Usage: tool run [flags] -- <exe> [args…]",
    );
    assert.equal(usageLine(run), "tool run [flags] -- <exe> [args…]");
  });
});
