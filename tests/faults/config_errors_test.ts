// Every invalid flag or env value: exit 2, one clear line first, then the usage.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { runToEnd, scriptCommand } from "../_helpers.ts";

const echoPlugin = scriptCommand(new URL("../../examples/echo/plugin.ts", import.meta.url));
const bind = { FTL_BIND: "http://127.0.0.1:0" };

const cases: [string, string[], Record<string, string>, RegExp][] = [
  ["an unknown flag", ["--frobnicate"], bind, /unknown flag --frobnicate/],
  ["a positional argument", ["extra"], bind, /unexpected argument "extra"/],
  ["a flag without its value", ["--bind"], {}, /--bind needs a value/],
  ["a bad --log-level", ["--log-level=loud"], bind, /--log-level \(env LOG_LEVEL\).*"loud"/],
  ["a bad LOG_LEVEL", [], { ...bind, LOG_LEVEL: "loud" }, /--log-level \(env LOG_LEVEL\).*"loud"/],
  [
    "a FTL_BIND that is no URL",
    [],
    { FTL_BIND: "not a url" },
    /--bind \(env FTL_BIND\).*not a URL/,
  ],
  [
    "a FTL_BIND with a bad scheme",
    [],
    { FTL_BIND: "ftp://x:1" },
    /--bind \(env FTL_BIND\).*http:\/\/ or unix:\/\//,
  ],
  [
    "a FTL_BIND without a port",
    [],
    { FTL_BIND: "http://127.0.0.1" },
    /--bind \(env FTL_BIND\).*no port/,
  ],
  ["no FTL_BIND at all", [], {}, /--bind \(env FTL_BIND\) is required/],
];

describe("invalid configuration", () => {
  for (const [what, args, env, expected] of cases) {
    it(`exits 2 with one clear line for ${what}`, async () => {
      const child = spawn(echoPlugin.exe, [...echoPlugin.args, ...args], {
        env: { ...process.env, FTL_BIND: "", LOG_LEVEL: "", ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const { code, stderr, stdout } = await runToEnd(child);
      assert.equal(code, 2, stderr);
      const [first, second] = stderr.split("\n");
      assert.match(first, expected);
      assert.equal(second, "", "the clear line stands alone before the usage");
      assert.match(stderr, /Usage: echo/);
      assert.equal(stdout, "");
    });
  }
});
