// The ftl-plugin CLI, driven as a subprocess (deno run cli.ts, or node cli.js from the
// npm build) against the echo plugin and against a @grpc/grpc-js plugin.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import {
  echoGuestCommand,
  isGone,
  onDeno,
  repoRoot,
  runToEnd,
  scriptCommand,
  tempDir,
  waitUntil,
} from "./_helpers.ts";

const cli = scriptCommand(new URL("../cli.ts", import.meta.url));

/** Runs the CLI to its end. */
function ftlPlugin(args: string[], env: Record<string, string> = {}) {
  const child = spawn(cli.exe, [...cli.args, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return runToEnd(child);
}

/**
 * An executable script that runs `command`: the CLI is given one path, as users give
 * it their plugin (and Deno's child_process leaves argv naming a runtime alone then).
 */
function executable(dir: string, name: string, command: { exe: string; args: string[] }): string {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const path = join(dir, name);
  writeFileSync(
    path,
    `#!/bin/sh\nexec ${[command.exe, ...command.args].map(quote).join(" ")} "$@"\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

const ESC = "\u001b";

const echoCommand = echoGuestCommand(onDeno ? "deno" : "node");
const grpcCommand = scriptCommand(new URL("./fixtures/grpc_plugin.ts", import.meta.url));

interface Running {
  child: ChildProcess;
  ready: Record<string, unknown>;
  lines: string[];
  stderr: string[];
  closed: Promise<number | null>;
}

/** Starts `ftl-plugin run --json …` and waits for its ready event. */
async function runJson(args: string[], env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(cli.exe, [...cli.args, "run", "--json", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const closed = new Promise<number | null>((resolve) => child.once("close", resolve));
  const lines: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on("line", (line) => stderr.push(line));
  try {
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no ready event in 30 s")), 30_000);
      createInterface({ input: child.stdout! }).on("line", (line) => {
        lines.push(line);
        const event = JSON.parse(line);
        if (event.event === "ready") {
          clearTimeout(timer);
          resolve(event);
        }
      });
      closed.then((code) => {
        clearTimeout(timer);
        reject(new Error(`run exited (${code}):\n${stderr.join("\n")}`));
      });
    });
    return { child, ready, lines, stderr, closed };
  } catch (error) {
    child.kill("SIGKILL");
    await closed;
    throw error;
  }
}

/** Live processes whose command line contains `marker`. */
function processesWith(marker: string): number[] {
  return readdirSync("/proc").filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker) && !isGone(pid);
    } catch {
      return false;
    }
  });
}

async function stopRun(running: Running): Promise<number | null> {
  // process.kill, not child.kill: Deno's child_process reports the signal otherwise.
  if (running.child.exitCode === null) process.kill(running.child.pid!, "SIGTERM");
  return await running.closed;
}

async function killRun(running: Running): Promise<void> {
  if (running.child.exitCode === null && running.child.signalCode === null) {
    running.child.kill("SIGKILL");
  }
  await running.closed;
  const pid = running.ready.pid as number | undefined;
  if (pid && !isGone(pid)) process.kill(-pid, "SIGKILL");
}

describe("ftl-plugin", () => {
  it("has help for every command, naming the exit codes", async () => {
    for (const args of [["--help"], ["run", "--help"], ["call", "--help"], ["ping", "-h"]]) {
      const { code, stdout } = await ftlPlugin(args);
      assert.equal(code, 0, args.join(" "));
      assert.match(stdout, /Usage:/);
      assert.match(stdout, /Exit codes:\n {2}0 /);
    }
  });

  it("fails bad usage with exit 2 and one clear line", async () => {
    const cases: [string[], RegExp][] = [
      [["frobnicate"], /unknown command "frobnicate"/],
      [["run", "--bogus", "--", "x"], /bogus/],
      [["run"], /no plugin to run/],
      [["run", "--timeout", "soon", "--", "x"], /--timeout: "soon" is not a duration/],
      [["ping"], /ping needs the plugin's URL/],
      [["ping", "https://127.0.0.1:1"], /h2c: use http:\/\//],
      [["call", "http://127.0.0.1:1", "NoSlash"], /is not a method/],
      [["call", "http://127.0.0.1:1", "a.B/C", "{not json"], /the message is not JSON/],
      [["call", "--protocol", "smoke", "http://127.0.0.1:1", "a.B/C"], /--protocol must be/],
      [
        ["run", "--bind", "unix", "--name", "../x", "--", "x"],
        /name "\.\.\/x" cannot name a socket file/,
      ],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await ftlPlugin(args);
      assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
      assert.match(stderr, message);
    }
  });

  it("reports a plugin that is not there with exit 3", async () => {
    const { code, stderr } = await ftlPlugin(["ping", "http://127.0.0.1:1"]);
    assert.equal(code, 3);
    assert.match(stderr, /not ready: unavailable/);
    const missing = await ftlPlugin(["call", "/nonexistent/plugin", "a.B/C"]);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /^ftl-plugin: cannot run \/nonexistent\/plugin/m);
  });

  it("runs the echo plugin, lists what it serves, and stops it on SIGTERM", async () => {
    using dir = tempDir();
    const exe = executable(dir.path, "echo-plugin", echoCommand);
    const running = await runJson(["--no-auth", "--dir", dir.path, "--", exe]);
    try {
      const { ready } = running;
      assert.equal(ready.name, "echo-plugin");
      assert.equal(ready.protocol, "connect");
      assert.match(String(ready.endpoint), /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(ready.readiness, "echo.v1.EchoService/Ping");
      const services = ready.services as {
        name: string;
        methods: { name: string; kind: string }[];
      }[];
      const echo = services.find((s) => s.name === "echo.v1.EchoService");
      assert.deepEqual(
        echo?.methods.map((m) => `${m.name} ${m.kind}`),
        ["Ping unary", "Echo unary", "Count server streaming", "Fail unary"],
      );
      const url = String(ready.endpoint);

      const ping = await ftlPlugin(["ping", url]);
      assert.equal(ping.code, 0, ping.stderr);
      assert.match(ping.stdout, /^ready \(echo\.v1\.EchoService\/Ping, [\d.]+ ms\)\n$/);

      const echoed = await ftlPlugin(["call", url, "echo.v1.EchoService/Echo", '{"message":"hi"}']);
      assert.equal(echoed.code, 0, echoed.stderr);
      assert.deepEqual(JSON.parse(echoed.stdout), { message: "hi" });

      const counted = await ftlPlugin([
        "call",
        "--json",
        url,
        "echo.v1.EchoService.Count",
        '{"count":3}',
      ]);
      assert.equal(counted.code, 0, counted.stderr);
      assert.equal(counted.stdout, '{"number":1}\n{"number":2}\n{"number":3}\n');

      const failed = await ftlPlugin([
        "call",
        url,
        "echo.v1.EchoService/Fail",
        '{"code":5,"message":"nope"}',
      ]);
      assert.equal(failed.code, 1);
      assert.equal(failed.stderr, "error: not_found: nope\n");
      const failedJson = await ftlPlugin([
        "call",
        "--json",
        url,
        "echo.v1.EchoService/Fail",
        '{"code":9,"message":"later"}',
      ]);
      assert.equal(failedJson.code, 1);
      assert.deepEqual(JSON.parse(failedJson.stdout), {
        error: { code: "failed_precondition", message: "later" },
      });

      const unknown = await ftlPlugin(["call", url, "echo.v1.EchoService/Nope"]);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /has no method Nope; it has Ping, Echo, Count, Fail/);
      const badField = await ftlPlugin(["call", url, "echo.v1.EchoService/Echo", '{"mesage":"x"}']);
      assert.equal(badField.code, 2);
      assert.match(badField.stderr, /not a valid echo\.v1\.EchoRequest.*"mesage"/);

      assert.equal(await stopRun(running), 0);
      assert.deepEqual(JSON.parse(running.lines.at(-1)!), {
        event: "stopped",
        code: 0,
        signal: null,
      });
      assert.ok(await waitUntil(() => isGone(ready.pid as number), 5_000), "the plugin is gone");
    } finally {
      await killRun(running);
    }
  });

  it("keeps a plugin started with a token closed to callers without it", async () => {
    using dir = tempDir();
    const exe = executable(dir.path, "echo-plugin", echoCommand);
    const running = await runJson(["--dir", dir.path, "--", exe]);
    try {
      const ping = await ftlPlugin(["ping", String(running.ready.endpoint)]);
      // ping asks "is it ready to be called?": refused, it is not (3).
      assert.equal(ping.code, 3);
      assert.match(ping.stderr, /unauthenticated.*--token/);
      const wrong = await ftlPlugin(["ping", String(running.ready.endpoint)], {
        FTL_PLUGIN_TOKEN: "not-the-token",
      });
      assert.equal(wrong.code, 3);
      // call: the plugin answered, refusing reflection: the call failed (1), it was not
      // out of reach (3).
      const echo = await ftlPlugin([
        "call",
        "--json",
        String(running.ready.endpoint),
        "echo.v1.EchoService/Echo",
        '{"message":"hi"}',
      ]);
      assert.equal(echo.code, 1, echo.stderr);
      assert.equal(JSON.parse(echo.stdout).error.code, "unauthenticated");
    } finally {
      await stopRun(running);
      await killRun(running);
    }
  });

  it("calls an executable: starts it, calls, stops it", async () => {
    using dir = tempDir();
    const exe = executable(dir.path, "echo-plugin", echoCommand);
    const { code, stdout, stderr } = await ftlPlugin([
      "call",
      "--dir",
      dir.path,
      exe,
      "echo.v1.EchoService/Echo",
      '{"message":"once"}',
    ]);
    assert.equal(code, 0, stderr);
    assert.deepEqual(JSON.parse(stdout), { message: "once" });
    // Not a terminal: a plain line while it starts, no spinner.
    assert.match(stderr, /^starting echo-plugin…$/m);
    assert.ok(!stderr.includes(`${ESC}[`), "no terminal escapes");
  });

  it("calls a script plugin: the runtime as the executable, the script after --", async () => {
    using dir = tempDir();
    const guest = echoGuestCommand(onDeno ? "deno" : "node");
    const { code, stdout, stderr } = await ftlPlugin([
      "call",
      "--dir",
      dir.path,
      guest.exe,
      "echo.v1.EchoService/Echo",
      '{"message":"once"}',
      "--",
      ...guest.args,
    ]);
    assert.equal(code, 0, stderr);
    assert.deepEqual(JSON.parse(stdout), { message: "once" });
    // Named after the script, not the runtime.
    assert.match(stderr, /^starting plugin…$/m);
  });

  it("spins while a plugin starts when stderr is a terminal", {
    // util-linux's script(1) gives the CLI a pseudo-terminal.
    skip: !existsSync("/usr/bin/script"),
  }, async () => {
    using dir = tempDir();
    const exe = executable(dir.path, "echo-plugin", echoCommand);
    const ftl = executable(dir.path, "ftl-plugin", cli);
    const command =
      `${ftl} call --dir ${dir.path} ${exe} echo.v1.EchoService/Echo '{"message":"tty"}'`;
    const { code, stdout } = await runToEnd(
      spawn("/usr/bin/script", ["-qec", command, "/dev/null"], {
        stdio: ["ignore", "pipe", "pipe"],
      }),
    );
    assert.equal(code, 0, stdout);
    // A frame drawn over the line, then the line cleared before the answer.
    const clear = `\r${ESC}[2K`;
    assert.ok(
      [..."⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"].some((frame) => stdout.includes(`${clear}${frame} starting echo-plugin…`)),
      JSON.stringify(stdout),
    );
    assert.ok(stdout.includes(`${clear}{`), JSON.stringify(stdout));
    assert.deepEqual(JSON.parse(stdout.slice(stdout.lastIndexOf(clear) + clear.length)), {
      message: "tty",
    });
  });

  it("speaks gRPC to a grpc-js plugin with reflection", async () => {
    using dir = tempDir();
    const exe = executable(dir.path, "grpc-plugin", grpcCommand);
    const env = { TEST_REFLECTION: "1" };
    const running = await runJson(["--no-auth", "--dir", dir.path, "--", exe], env);
    try {
      assert.equal(running.ready.protocol, "grpc");
      const url = String(running.ready.endpoint);
      const echoed = await ftlPlugin([
        "call",
        "--json",
        url,
        "echo.v1.EchoService/Echo",
        '{"message":"x"}',
      ]);
      assert.equal(echoed.code, 0, echoed.stderr);
      assert.equal(echoed.stdout, '{"message":"grpc x"}\n');
      const ping = await ftlPlugin(["ping", "--json", url]);
      assert.equal(ping.code, 0, ping.stderr);
      assert.equal(JSON.parse(ping.stdout).via, "echo.v1.EchoService/Ping");
    } finally {
      await stopRun(running);
      await killRun(running);
    }
  });

  it("exits 130 on Ctrl-C while a plugin starts, and leaves no process behind", async () => {
    using dir = tempDir();
    // A plugin that never listens; the marker finds it among all processes.
    const marker = `61.${process.pid}`;
    const exe = executable(dir.path, "never-ready", { exe: "sleep", args: [marker] });
    const child = spawn(cli.exe, [...cli.args, "run", "--dir", dir.path, "--", exe], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const finished = runToEnd(child);
    try {
      // Not a terminal: the one plain line says it is starting.
      let stderr = "";
      child.stderr!.on("data", (chunk) => (stderr += chunk));
      assert.ok(await waitUntil(() => stderr.includes("starting never-ready…"), 15_000), stderr);
      assert.ok(await waitUntil(() => processesWith(marker).length > 0, 5_000), "the plugin runs");
      process.kill(child.pid!, "SIGINT");
      const { code } = await finished;
      assert.equal(code, 130);
      assert.deepEqual(processesWith(marker), []);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      await finished;
      for (const pid of processesWith(marker)) process.kill(pid, "SIGKILL");
    }
  });

  it("needs --service for a grpc-js plugin without reflection, and says so at once", async () => {
    using dir = tempDir();
    const exe = executable(dir.path, "grpc-plugin", grpcCommand);
    const started = performance.now();
    const refused = await ftlPlugin(["call", "--dir", dir.path, exe, "echo.v1.EchoService/Ping"]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /neither reflection nor grpc\.health\.v1.*--service/);
    assert.ok(performance.now() - started < 20_000, "it did not wait for the 30 s timeout");

    const running = await runJson([
      "--no-auth",
      "--service",
      "echo.v1.EchoService",
      "--dir",
      dir.path,
      "--",
      exe,
    ]);
    try {
      assert.equal(running.ready.protocol, "grpc");
      assert.equal(running.ready.services, null);
      assert.equal(running.ready.servicesUnknown, "the plugin serves no reflection");
      const url = String(running.ready.endpoint);
      const ping = await ftlPlugin(["call", url, "echo.v1.EchoService/Ping"]);
      assert.equal(ping.code, 0, ping.stderr);
      assert.deepEqual(JSON.parse(ping.stdout), {});
      const echo = await ftlPlugin(["call", url, "echo.v1.EchoService/Echo", '{"message":"x"}']);
      assert.equal(echo.code, 2);
      assert.match(echo.stderr, /serves no reflection/);
    } finally {
      await stopRun(running);
      await killRun(running);
    }
  });

  it("prints the package version (deno.json's, which the npm build's package.json gets)", async () => {
    const { version } = JSON.parse(readFileSync(join(repoRoot, "deno.json"), "utf8"));
    assert.match(version, /^\d+\.\d+\.\d+/);
    for (const args of [["--version"], ["version"]]) {
      const { code, stdout, stderr } = await ftlPlugin(args);
      assert.equal(code, 0, stderr);
      assert.equal(stdout, `ftl-plugin ${version}\n`);
    }
    const json = await ftlPlugin(["version", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), { version });
  });

  it("keeps Node's compile cache in the temporary directory, and answers without one", {
    timeout: 60_000,
  }, async () => {
    using dir = tempDir();
    // Missing, and under /proc (where Node's own recursive mkdir never returns).
    for (const tmp of [dir.path, join(dir.path, "missing", "tmp"), "/proc/no-such-dir"]) {
      const { code, stdout, stderr } = await ftlPlugin(["--version"], {
        TMPDIR: tmp,
        NODE_COMPILE_CACHE: "",
      });
      assert.equal(code, 0, stderr);
      assert.match(stdout, /^ftl-plugin \d+\.\d+\.\d+/);
    }
    // Deno keeps its own code cache; the npm bin is an application, and uses Node's.
    assert.equal(existsSync(join(dir.path, "node-compile-cache")), !onDeno);
  });

  it("with --json, prints usage errors as JSON on stdout, exit 2", async () => {
    const cases: [string[], RegExp][] = [
      [["call", "--json", "http://127.0.0.1:1", "NoSlash"], /is not a method/],
      [["call", "--json", "http://127.0.0.1:1", "a.B/C", "{not json"], /the message is not JSON/],
      [["run", "--json", "--bogus", "--", "x"], /bogus/],
      [["ping", "--json", "--wait", "soon", "http://127.0.0.1:1"], /--wait: "soon"/],
      [["--json", "frobnicate"], /unknown command "--json"/],
    ];
    for (const [args, message] of cases) {
      const { code, stdout, stderr } = await ftlPlugin(args);
      assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
      assert.equal(stderr, "", args.join(" "));
      const { error } = JSON.parse(stdout);
      assert.equal(error.code, "usage", args.join(" "));
      assert.match(error.message, message);
      assert.doesNotMatch(error.message, /--help/, "the terminal's hint stays out of JSON");
      assert.equal(stdout.split("\n").length, 2, "one line");
    }
    const unavailable = await ftlPlugin(["call", "--json", "/nonexistent/plugin", "a.B/C"]);
    assert.equal(unavailable.code, 3);
    assert.deepEqual(JSON.parse(unavailable.stdout), {
      error: {
        code: "unavailable",
        message: "cannot run /nonexistent/plugin: no such file or directory",
      },
    });
  });

  it("leaves a --json after -- to the plugin", async () => {
    using dir = tempDir();
    const { code, stdout, stderr } = await ftlPlugin([
      "call",
      "--dir",
      dir.path,
      "/nonexistent/plugin",
      "a.B/C",
      "--",
      "--json",
    ]);
    assert.equal(code, 3);
    assert.equal(stdout, "", "no JSON: the CLI was not asked for it");
    assert.match(stderr, /^ftl-plugin: cannot run \/nonexistent\/plugin/m);
  });

  it("hands out run's token in --token-file (0600), and calls health and Ping without reflection", async () => {
    using dir = tempDir();
    const exe = executable(dir.path, "echo-plugin", echoCommand);
    const tokenFile = join(dir.path, "token");
    const running = await runJson(["--token-file", tokenFile, "--dir", dir.path, "--", exe]);
    try {
      const url = String(running.ready.endpoint);
      assert.equal(running.ready.auth, true);
      assert.equal(running.ready.tokenFile, tokenFile);
      // Written before the ready event, for the owner alone.
      assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
      const token = readFileSync(tokenFile, "utf8").trim();
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);

      // Health is open on our guests and its schema is known: no reflection (which
      // wants the token) is asked.
      const health = await ftlPlugin(["call", url, "grpc.health.v1.Health/Check"]);
      assert.equal(health.code, 0, health.stderr);
      assert.deepEqual(JSON.parse(health.stdout), { status: "SERVING" });
      // Ping's schema is known too: without the token it is the plugin that refuses
      // (exit 1), not reflection (exit 3).
      const refused = await ftlPlugin(["call", url, "echo.v1.EchoService/Ping"]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /^error: unauthenticated: .*--token-file/);

      const ping = await ftlPlugin([
        "call",
        "--token-file",
        tokenFile,
        url,
        "echo.v1.EchoService/Ping",
      ]);
      assert.equal(ping.code, 0, ping.stderr);
      assert.deepEqual(JSON.parse(ping.stdout), {});
      const echoed = await ftlPlugin([
        "call",
        "--token-file",
        tokenFile,
        url,
        "echo.v1.EchoService/Echo",
        '{"message":"with token"}',
      ]);
      assert.equal(echoed.code, 0, echoed.stderr);
      assert.deepEqual(JSON.parse(echoed.stdout), { message: "with token" });
      const ready = await ftlPlugin(["ping", "--token-file", tokenFile, url]);
      assert.equal(ready.code, 0, ready.stderr);

      const both = await ftlPlugin(["ping", "--token-file", tokenFile, "--token", "x", url]);
      assert.equal(both.code, 2);
      assert.match(both.stderr, /--token and --token-file/);

      assert.equal(await stopRun(running), 0);
      assert.ok(!existsSync(tokenFile), "removed once the plugin is stopped");
      const output = [...running.lines, ...running.stderr].join("\n");
      assert.ok(!output.includes(token), "the token is never printed");
    } finally {
      await killRun(running);
    }
    const missing = await ftlPlugin(["ping", "--token-file", tokenFile, "http://127.0.0.1:1"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /does not exist/);
  });

  it("draws log lines above the spinner on a terminal, never after its text", {
    skip: !existsSync("/usr/bin/script"),
  }, async () => {
    using dir = tempDir();
    const exe = executable(dir.path, "echo-plugin", echoCommand);
    const ftl = executable(dir.path, "ftl-plugin", cli);
    // The echo plugin logs "echo plugin starting" at info before it listens, so the
    // line arrives while the spinner shows.
    const command = `${ftl} call --log-level info --dir ${dir.path} ${exe} ` +
      `echo.v1.EchoService/Echo '{"message":"tty"}'`;
    const { code, stdout } = await runToEnd(
      spawn("/usr/bin/script", ["-qec", command, "/dev/null"], {
        stdio: ["ignore", "pipe", "pipe"],
      }),
    );
    assert.equal(code, 0, stdout);
    const clear = `\r${ESC}[2K`;
    const logAt = stdout.indexOf("echo plugin starting");
    assert.ok(logAt !== -1, JSON.stringify(stdout));
    assert.ok(logAt < stdout.lastIndexOf(clear), "the log line came while the spinner showed");
    // Each spinner frame is followed at once by the next redraw (or the final clear).
    const afterFrames = stdout.split("starting echo-plugin…").slice(1);
    assert.ok(afterFrames.length > 0, JSON.stringify(stdout));
    for (const rest of afterFrames) {
      assert.ok(rest.startsWith(clear), JSON.stringify(rest.slice(0, 80)));
    }
    // And the log line starts on a cleared line.
    const cleared = stdout.lastIndexOf(clear, logAt) + clear.length;
    const before = stdout.slice(Math.max(cleared, stdout.lastIndexOf("\n", logAt) + 1), logAt);
    assert.ok(!before.includes("starting echo-plugin"), JSON.stringify(before));
  });

  it("takes --log-level in any case; default is the command's own level", async () => {
    using dir = tempDir();
    const exe = executable(dir.path, "echo-plugin", echoCommand);
    const call = (level: string) =>
      ftlPlugin([
        "call",
        "--log-level",
        level,
        "--dir",
        dir.path,
        exe,
        "echo.v1.EchoService/Echo",
        '{"message":"x"}',
      ]);
    // The echo plugin logs "echo plugin starting" at info; call mirrors at warn by default.
    const info = await call("INFO");
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stderr, /echo plugin starting/);
    const byDefault = await call("Default");
    assert.equal(byDefault.code, 0, byDefault.stderr);
    assert.doesNotMatch(byDefault.stderr, /echo plugin starting/);
  });
});
