import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn as spawnProcess } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Code, type ConnectError, createClient } from "@connectrpc/connect";
import {
  Logger,
  LogLevel,
  type Plugin,
  PluginExitError,
  PluginStartError,
  spawn,
  type SpawnOptions,
} from "../host.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.ts";
import type { LogEntry } from "../internal/log.ts";
import { TRUNCATION_MARKER } from "../internal/log_lines.ts";
import {
  denoExecutable,
  echoGuestCommand,
  groupMembers,
  isGone,
  memoryLogger,
  onDeno,
  readmeHostPermissions,
  repoRoot,
  runToEnd,
  scriptCommand,
  tempDir,
  waitUntil,
} from "./_helpers.ts";

const testPlugin = scriptCommand(new URL("./fixtures/test_plugin.ts", import.meta.url));
const grpcPlugin = scriptCommand(new URL("./fixtures/grpc_plugin.ts", import.meta.url));

/** Spawns the env-driven test plugin in a fresh directory, with a memory logger. */
async function withPlugin<T>(
  env: Record<string, string>,
  use: (plugin: Plugin<typeof EchoService>, log: ReturnType<typeof memoryLogger>) => Promise<T>,
  extra: Partial<SpawnOptions<typeof EchoService>> = {},
): Promise<T> {
  using dir = tempDir();
  const log = memoryLogger();
  const plugin = await spawn({
    name: "test",
    dir: dir.path,
    ...testPlugin,
    service: EchoService,
    env,
    logger: log.logger,
    ...extra,
  });
  try {
    return await use(plugin, log);
  } finally {
    await plugin.stop({ graceMs: 1_000 });
  }
}

describe("spawn()", () => {
  it("spawns, waits for Ping, calls, stops, and leaves no process of its group", async () => {
    let pid = 0;
    await withPlugin({ TEST_FORK: "1" }, async (plugin, { entries }) => {
      pid = plugin.pid;
      assert.equal(plugin.protocol, "connect");
      assert.equal(plugin.endpoint.hostname, "127.0.0.1");
      assert.equal((await plugin.client.echo({ message: "hi" })).message, "hi");
      const forked = Number(entries.find((e) => e.message === "forked")?.attributes?.pid);
      assert.ok(forked > 0, "the plugin reported its child");
      assert.deepEqual(groupMembers(pid).sort(), [pid, forked].sort());
      const exit = await plugin.stop();
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(plugin.signal.aborted);
      assert.ok(plugin.signal.reason instanceof PluginExitError);
      assert.ok(isGone(forked), "the forked child was killed with its group");
    });
    assert.deepEqual(groupMembers(pid), []);
  });

  it("rejects bad options before starting anything", async () => {
    const base = { name: "test", dir: "/tmp", ...testPlugin, service: EchoService };
    await assert.rejects(spawn({ ...base, exe: "" }), /exe is required/);
    await assert.rejects(spawn({ ...base, startTimeout: -1 }), /startTimeout must be a positive/);
    await assert.rejects(
      spawn({ ...base, name: "../evil", bind: "unix" }),
      /cannot name a socket file/,
    );
    await assert.rejects(
      spawn({
        ...base,
        exe: "/nonexistent/plugin",
        workingDir: false,
        logger: memoryLogger().logger,
      }),
      /cannot run \/nonexistent\/plugin: no such file/,
    );
  });

  it("passes FTL_BIND, FTL_WORKING_DIR (0700) and a pid file, and removes the pid file", async () => {
    using dir = tempDir();
    const { logger } = memoryLogger();
    const plugin = await spawn({
      name: "test",
      dir: dir.path,
      ...testPlugin,
      service: EchoService,
      logger,
    });
    try {
      const pidFile = `${dir.path}/.ftl/test.pid`;
      assert.equal(readFileSync(pidFile, "utf8").trim(), String(plugin.pid));
      assert.equal(statSync(`${dir.path}/.ftl`).mode & 0o777, 0o700);
      const env = readFileSync(`/proc/${plugin.pid}/environ`, "utf8").split("\0");
      assert.ok(env.includes(`FTL_BIND=${plugin.endpoint.href.replace(/\/$/, "")}`), "FTL_BIND");
      assert.ok(env.includes(`FTL_WORKING_DIR=${dir.path}/.ftl`), "FTL_WORKING_DIR");
      assert.ok(env.includes("LOG_LEVEL=trace"), "LOG_LEVEL from the host logger");
      await plugin.stop();
      assert.throws(() => statSync(pidFile), /ENOENT/);
    } finally {
      await plugin.stop();
    }
  });

  it("keeps pinging while the plugin answers not_ready", async () => {
    const started = Date.now();
    await withPlugin({ TEST_NOT_READY_MS: "300" }, async (plugin) => {
      assert.ok(Date.now() - started >= 300, "ready before not_ready cleared");
      assert.equal((await plugin.client.ping({})).notReady, undefined);
    });
  });

  it("rejects within 200 ms of the plugin dying during startup", async () => {
    using dir = tempDir();
    const { logger } = memoryLogger();
    const script = `${dir.path}/dies.sh`;
    const marker = `${dir.path}/exited-at`;
    writeFileSync(
      script,
      `#!/bin/bash\necho starting\nsleep 0.3\necho "fatal: no config" >&2\ndate +%s%3N > ${marker}\nprintf "last words" >&2\nexit 3\n`,
      { mode: 0o755 },
    );
    const error = await spawn({
      name: "dies",
      dir: dir.path,
      exe: script,
      service: EchoService,
      logger,
    })
      .catch((e) => e);
    const rejectedAt = Date.now();
    const exitedAt = Number(readFileSync(marker, "utf8"));
    assert.ok(error instanceof PluginStartError);
    assert.match(error.message, /exited with code 3/);
    assert.ok(error.lastLines.includes("fatal: no config"));
    assert.equal(error.lastLines.at(-1), "last words", "a partial last line is flushed");
    assert.ok(rejectedAt - exitedAt < 200, `rejected ${rejectedAt - exitedAt} ms after the exit`);
  });

  it("times out with the last ping error when the plugin never listens", async () => {
    const started = Date.now();
    const error = await withPlugin({ TEST_NEVER_LISTEN: "1" }, () => Promise.resolve(), {
      startTimeout: 1_000,
    }).catch((e) => e);
    assert.ok(error instanceof PluginStartError, String(error));
    assert.match(error.message, /not ready after 1000 ms/);
    assert.match(error.message, /last ping: /);
    assert.ok(Date.now() - started < 5_000);
  });

  it("kills a plugin that ignores SIGTERM once the grace is over", async () => {
    await withPlugin({ TEST_IGNORE_SIGTERM: "1" }, async (plugin) => {
      const started = Date.now();
      const exit = await plugin.stop({ graceMs: 300 });
      assert.deepEqual(exit, { code: null, signal: "SIGKILL" });
      assert.ok(Date.now() - started >= 300);
      assert.deepEqual(groupMembers(plugin.pid), []);
    });
  });

  it("stops the plugin when its abort signal fires", async () => {
    const controller = new AbortController();
    await withPlugin({}, async (plugin) => {
      controller.abort();
      const exit = await plugin.exited;
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(plugin.signal.aborted);
    }, { signal: controller.signal });
  });

  it("aborts plugin.signal with the exit status when the plugin dies", async () => {
    await withPlugin({}, async (plugin) => {
      process.kill(plugin.pid, "SIGKILL");
      await plugin.exited;
      const reason = plugin.signal.reason as PluginExitError;
      assert.deepEqual(reason.exit, { code: null, signal: "SIGKILL" });
      await assert.rejects(
        plugin.client.echo({ message: "late" }),
        (e: ConnectError) => e.code === Code.Unavailable || e.code === Code.Canceled,
      );
    });
  });

  /** Spawns and stops the test plugin in a dir whose pid file names `stale`'s pid. */
  async function spawnOverStalePidFile(stale: ChildProcess): Promise<LogEntry[]> {
    using dir = tempDir();
    const { logger, entries } = memoryLogger();
    mkdirSync(`${dir.path}/.ftl`);
    writeFileSync(`${dir.path}/.ftl/test.pid`, `${stale.pid}\n`);
    const plugin = await spawn({
      name: "test",
      dir: dir.path,
      ...testPlugin,
      service: EchoService,
      logger,
    });
    await plugin.stop();
    return entries;
  }

  it("kills the live old plugin a stale pid file names", async () => {
    const old = spawnProcess(testPlugin.exe, testPlugin.args, {
      env: { ...process.env, TEST_NEVER_LISTEN: "1" },
      stdio: "ignore",
    });
    const oldClosed = new Promise((resolve) => old.once("close", resolve));
    try {
      const entries = await spawnOverStalePidFile(old);
      assert.ok(await waitUntil(() => isGone(old.pid!), 2_000), "the old plugin still runs");
      assert.ok(
        entries.some((e) => e.message.startsWith(`killing stale plugin process ${old.pid}`)),
      );
    } finally {
      old.kill("SIGKILL");
      await oldClosed;
    }
  });

  it("leaves alone an unrelated process that a stale pid file names", async () => {
    const unrelated = spawnProcess("sleep", ["30"], { stdio: "ignore" });
    const closed = new Promise((resolve) => unrelated.once("close", resolve));
    try {
      const entries = await spawnOverStalePidFile(unrelated);
      assert.ok(!isGone(unrelated.pid!), "the unrelated process was killed");
      const warning = entries.find((e) =>
        e.level === LogLevel.Warn && /leaving it alone/.test(e.message)
      );
      assert.ok(warning, "a warning names the pid file");
    } finally {
      unrelated.kill("SIGKILL");
      await closed;
    }
  });

  it("mirrors JSON lines at their level and plain lines at the default or error level", async () => {
    await withPlugin({ TEST_PRINT: "logs" }, async (plugin, { entries }) => {
      await plugin.stop();
      const mine = entries.filter((e) => e.attributes?.scope === "test");
      const warning = mine.find((e) => e.message === "a warning");
      assert.equal(warning?.level, LogLevel.Warn);
      assert.equal(warning?.error, "boom");
      assert.equal(warning?.attributes?.k, "v");
      assert.equal(mine.find((e) => e.message === "plain stderr line")?.level, LogLevel.Error);
      assert.equal(mine.find((e) => e.message === "plain stdout line")?.level, LogLevel.Info);
      assert.ok(mine.some((e) => e.message === "bad\ufffd\ufffd!"), "invalid UTF-8 replaced");
      const long = mine.find((e) => e.message.startsWith("xxxx"));
      assert.equal(long?.message.length, 1024 * 1024 + TRUNCATION_MARKER.length);
      assert.ok(long?.message.endsWith(TRUNCATION_MARKER));
      assert.ok(mine.some((e) => e.message === "after the long line"), "reading went on");
    }, { defaultLevel: LogLevel.Info });
  });

  it("mirrors 100 000 lines without losing one", async () => {
    await withPlugin({ TEST_PRINT: "many" }, async (plugin, { entries }) => {
      await plugin.stop();
      const lines = entries.filter((e) => e.message.startsWith("line "));
      assert.equal(lines.length, 100_000);
      assert.equal(lines[99_999].message, "line 99999");
    });
  });

  it("makes extra clients on the same connection", async () => {
    using dir = tempDir();
    const { logger } = memoryLogger();
    await using plugin = await spawn({
      name: "test",
      dir: dir.path,
      ...testPlugin,
      service: EchoService,
      extraClients: { health: Health },
      logger,
    });
    const answer = await plugin.clients.health.check({ service: "" });
    assert.equal(answer.status, HealthCheckResponse_ServingStatus.SERVING);
  });

  it("checks readiness its own way when given one, and lends its transport", async () => {
    const seen: string[] = [];
    await withPlugin({}, async (plugin) => {
      // The check ran until it said ready, and Ping was never the judge.
      assert.deepEqual(seen.slice(-3), ["warming", "warming", "ready"]);
      const health = createClient(Health, plugin.transport);
      const answer = await health.check({ service: "" });
      assert.equal(answer.status, HealthCheckResponse_ServingStatus.SERVING);
    }, {
      readiness: async (transport, signal) => {
        // Reachable first, then "warming" twice, then ready.
        await createClient(Health, transport).check({ service: "" }, { signal });
        const warm = seen.filter((s) => s === "warming").length >= 2;
        seen.push(warm ? "ready" : "warming");
        return warm ? undefined : "warming";
      },
    });
  });

  it("picks gRPC for a plugin built on @grpc/grpc-js", async () => {
    using dir = tempDir();
    const { logger } = memoryLogger();
    await using plugin = await spawn({
      name: "grpc",
      dir: dir.path,
      ...grpcPlugin,
      service: EchoService,
      logger,
    });
    assert.equal(plugin.protocol, "grpc");
    assert.equal((await plugin.client.echo({ message: "hi" })).message, "grpc hi");
  });

  it("survives a gRPC plugin that shuts down on its own", async () => {
    using dir = tempDir();
    const { logger } = memoryLogger();
    const plugin = await spawn({
      name: "grpc",
      dir: dir.path,
      ...grpcPlugin,
      service: EchoService,
      env: { TEST_EXIT_AFTER_MS: "300" },
      logger,
    });
    try {
      assert.equal((await plugin.client.echo({ message: "hi" })).message, "grpc hi");
      assert.deepEqual(await plugin.exited, { code: 0, signal: null });
      assert.ok(plugin.signal.aborted);
      // The host goes on: a new plugin still works.
      await using again = await spawn({
        name: "echo",
        dir: dir.path,
        ...testPlugin,
        service: EchoService,
        logger,
      });
      assert.equal((await again.client.echo({ message: "still here" })).message, "still here");
    } finally {
      await plugin.stop();
    }
  });
});

/** Live (non-zombie) children of this process, with their process groups. */
function ownChildren(): Map<number, number> {
  const children = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const [state, ppid, pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(ppid) === process.pid && state !== "Z") children.set(Number(name), Number(pgrp));
    } catch {
      // It ended while we looked.
    }
  }
  return children;
}

const echoGuest = echoGuestCommand(onDeno ? "deno" : "node");
const grpcGoLike = scriptCommand(new URL("./fixtures/host_grpc_go_like.ts", import.meta.url));
const staleHost = new URL("./fixtures/host_stale_pid.ts", import.meta.url);
/** `deno run` with the permissions the README lists for a host. */
const readmeHostRun = ["run", ...readmeHostPermissions];

describe("spawn(): peers and pid files (issue 14)", () => {
  for (const status of [500, 400]) {
    it(`switches to gRPC for a plugin answering Connect with ${status} text/plain (grpc-go ServeHTTP)`, async () => {
      using dir = tempDir();
      const { logger } = memoryLogger();
      const started = Date.now();
      await using plugin = await spawn({
        name: "grpcgo",
        dir: dir.path,
        ...grpcGoLike,
        service: EchoService,
        env: { TEST_NON_GRPC_STATUS: String(status) },
        startTimeout: 5_000,
        logger,
      });
      assert.equal(plugin.protocol, "grpc");
      assert.equal((await plugin.client.ping({})).notReady, undefined);
      assert.ok(Date.now() - started < 4_000, `took ${Date.now() - started} ms`);
    });
  }

  it("fails at once when Ping is refused for good, naming the code", async () => {
    using dir = tempDir();
    const { logger } = memoryLogger();
    const started = Date.now();
    // The plugin wants a token the host does not send: UNAUTHENTICATED, for ever.
    const error = await spawn({
      name: "refused",
      dir: dir.path,
      ...testPlugin,
      service: EchoService,
      auth: false,
      env: { FTL_PLUGIN_TOKEN: "not-the-hosts" },
      startTimeout: 20_000,
      logger,
    }).catch((e) => e);
    assert.ok(error instanceof PluginStartError, String(error));
    assert.match(error.message, /refused Ping: UNAUTHENTICATED: missing or wrong plugin token/);
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
  });

  it("fails at once when a Deno guest refuses gRPC", { skip: !onDeno }, async () => {
    using dir = tempDir();
    const { logger } = memoryLogger();
    const started = Date.now();
    const error = await spawn({
      name: "echo",
      dir: dir.path,
      // Deno.serve alone (server: "native") cannot send trailers: it refuses gRPC.
      exe: echoGuest.exe,
      args: ["run", "-A", `${repoRoot}tests/fixtures/engine_plugin.ts`],
      env: { TEST_SERVER: "native" },
      service: EchoService,
      protocol: "grpc",
      startTimeout: 20_000,
      logger,
    }).catch((e) => e);
    assert.ok(error instanceof PluginStartError, String(error));
    assert.match(error.message, /refused Ping over grpc: UNIMPLEMENTED: .*Connect/);
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
  });

  it("keeps two plugins of one folder apart: a pid file per name", async () => {
    using dir = tempDir();
    const { logger, entries } = memoryLogger();
    await using first = await spawn({
      name: "first",
      dir: dir.path,
      ...testPlugin,
      service: EchoService,
      logger,
    });
    await using second = await spawn({
      name: "second",
      dir: dir.path,
      ...testPlugin,
      service: EchoService,
      logger,
    });
    assert.equal((await first.client.echo({ message: "1" })).message, "1");
    assert.equal((await second.client.echo({ message: "2" })).message, "2");
    assert.equal(readFileSync(`${dir.path}/.ftl/first.pid`, "utf8").trim(), String(first.pid));
    assert.equal(readFileSync(`${dir.path}/.ftl/second.pid`, "utf8").trim(), String(second.pid));
    assert.ok(!entries.some((e) => /killing stale/.test(e.message)));
  });

  it("makes a pid file name of a name that is no file name", async () => {
    using dir = tempDir();
    const { logger } = memoryLogger();
    await using plugin = await spawn({
      name: "../my plugin",
      dir: dir.path,
      ...testPlugin,
      service: EchoService,
      logger,
    });
    const pidFile = `${dir.path}/.ftl/_._my_plugin.pid`;
    assert.equal(readFileSync(pidFile, "utf8").trim(), String(plugin.pid));
  });

  it("never kills a plugin it started itself, even under the same name", async () => {
    using dir = tempDir();
    const { logger, entries } = memoryLogger();
    await using first = await spawn({
      name: "same",
      dir: dir.path,
      ...testPlugin,
      service: EchoService,
      logger,
    });
    // The pid file now names `first`, which runs the very same command.
    await using second = await spawn({
      name: "same",
      dir: dir.path,
      ...testPlugin,
      service: EchoService,
      logger,
    });
    assert.ok(!first.signal.aborted, "the first plugin was killed");
    assert.equal((await first.client.echo({ message: "1" })).message, "1");
    assert.equal((await second.client.echo({ message: "2" })).message, "2");
    assert.ok(!entries.some((e) => /killing stale/.test(e.message)));
    await first.stop();
    // The file is the second's now: the first leaves it.
    assert.equal(readFileSync(`${dir.path}/.ftl/same.pid`, "utf8").trim(), String(second.pid));
  });

  it("never lets a stale pid file block a Deno host with the README's permissions", async () => {
    using dir = tempDir();
    const deno = denoExecutable();
    const pluginArgs = ["run", "--allow-net", "--allow-env", `${repoRoot}examples/echo/plugin.ts`];
    mkdirSync(`${dir.path}/.ftl`, { mode: 0o700 });
    // One pid file names an unrelated process, the other a stale copy of the plugin.
    const unrelated = spawnProcess("sleep", ["300"], { stdio: "ignore" });
    const stale = spawnProcess(deno, pluginArgs, {
      env: { ...process.env, FTL_BIND: "http://127.0.0.1:0" },
      stdio: "ignore",
    });
    const closed = [unrelated, stale].map((c) => new Promise((r) => c.once("close", r)));
    try {
      writeFileSync(`${dir.path}/.ftl/unrelated.pid`, `${unrelated.pid}\n`);
      writeFileSync(`${dir.path}/.ftl/stale.pid`, `${stale.pid}\n`);
      const host = spawnProcess(deno, [
        ...readmeHostRun,
        fileURLToPath(staleHost).replace(/\/npm\/tests\//, "/tests/").replace(/\.js$/, ".ts"),
        JSON.stringify({
          dir: dir.path,
          exe: deno,
          args: pluginArgs,
          names: ["unrelated", "stale"],
        }),
      ], { stdio: ["ignore", "pipe", "pipe"] });
      const { code, stdout, stderr } = await runToEnd(host);
      assert.equal(code, 0, stderr);
      const answers = stdout.trim().split("\n").map((line) => JSON.parse(line));
      assert.deepEqual(answers.map((a) => a.echo), ["unrelated", "stale"]);
      assert.ok(!isGone(unrelated.pid!), "the unrelated process was killed");
      assert.ok(await waitUntil(() => isGone(stale.pid!), 2_000), "the stale plugin still runs");
      assert.match(stderr, new RegExp(`killing stale plugin process ${stale.pid}`));
    } finally {
      unrelated.kill("SIGKILL");
      stale.kill("SIGKILL");
      await Promise.all(closed);
    }
  });

  it("fails at once, naming --allow-net, when a Deno host may not connect to a unix socket", {
    skip: !onDeno,
  }, async () => {
    using dir = tempDir();
    const deno = denoExecutable();
    const host = spawnProcess(deno, [
      ...readmeHostRun,
      fileURLToPath(staleHost),
      JSON.stringify({
        dir: dir.path,
        exe: deno,
        args: ["run", "-A", `${repoRoot}examples/echo/plugin.ts`],
        names: ["sock"],
        bind: "unix",
        // Far past the bound below: a host that waited for it instead of failing at once
        // is killed there, and the test fails.
        startTimeout: 600_000,
      }),
    ], { stdio: ["ignore", "pipe", "pipe"] });
    const { code, stderr } = await runToEnd(host, { timeoutMs: 60_000 });
    assert.equal(code, 1, stderr);
    assert.match(stderr, /cannot reach plugin sock: permission denied: run Deno with --allow-net/);
  });

  it("kills and reaps the plugin when spawn() fails after starting it", async () => {
    using dir = tempDir();
    const { logger } = memoryLogger();
    // A directory where the pid file goes: writing it fails once the plugin runs.
    mkdirSync(`${dir.path}/.ftl/blocked.pid`, { recursive: true });
    const before = ownChildren();
    const error = await spawn({
      name: "blocked",
      dir: dir.path,
      ...testPlugin,
      service: EchoService,
      logger,
    }).catch((e) => e);
    assert.ok(error instanceof Error && /blocked\.pid/.test(error.message), String(error));
    // Our plugins lead their own process group; one left over is a leak.
    const leaked = [...ownChildren()].filter(([pid, pgrp]) => pid === pgrp && !before.has(pid));
    for (const [pid] of leaked) process.kill(-pid, "SIGKILL");
    assert.deepEqual(leaked, []);
  });

  it("shows the usage text of a plugin that rejects its flags once", async () => {
    using dir = tempDir();
    const { logger, entries } = memoryLogger();
    const error = await spawn({
      name: "echo",
      dir: dir.path,
      exe: echoGuest.exe,
      args: [...echoGuest.args, "--bogus"],
      service: EchoService,
      logger,
    }).catch((e) => e);
    assert.ok(error instanceof PluginStartError, String(error));
    assert.equal(error.exit?.code, 2);
    const everything = [...entries.map((e) => e.message), error.message].join("\n");
    assert.equal(everything.split("Usage: echo [flags]").length - 1, 1, everything);
    assert.ok(error.lastLines.includes("Usage: echo [flags]"), "lastLines keep it");
  });

  it("repeats in the error only the last lines its log did not show", async () => {
    using dir = tempDir();
    const log: string[] = [];
    const script = `${dir.path}/dies.sh`;
    writeFileSync(script, `#!/bin/sh\necho quiet stdout line\necho "fatal: loud" >&2\nexit 3\n`, {
      mode: 0o755,
    });
    const error = await spawn({
      name: "dies",
      dir: dir.path,
      exe: script,
      service: EchoService,
      // Stdout lines are mirrored at info, which a warn logger drops.
      logger: new Logger({ level: LogLevel.Warn, write: (line) => log.push(line) }),
    }).catch((e) => e);
    assert.ok(error instanceof PluginStartError, String(error));
    assert.match(error.message, /not shown in the log:\n {2}quiet stdout line$/);
    assert.ok(!error.message.includes("fatal: loud"));
    assert.ok(log.some((line) => line.includes("fatal: loud")));
  });
});

describe("spawn(): LOG_LEVEL", () => {
  it("passes the logger's level as LOG_LEVEL, and a LOG_LEVEL in env wins over it", async () => {
    const serving = (entries: LogEntry[]) => entries.some((e) => /^serving on /.test(e.message));
    for (const [env, expected] of [[{}, true], [{ LOG_LEVEL: "ERROR" }, false]] as const) {
      using dir = tempDir();
      const { logger, entries } = memoryLogger(); // at trace: the guest's debug lines show
      const plugin = await spawn({
        name: "test",
        dir: dir.path,
        ...testPlugin,
        env,
        service: EchoService,
        logger,
      });
      await plugin.stop();
      assert.equal(serving(entries), expected, `env ${JSON.stringify(env)}`);
    }
  });
});
