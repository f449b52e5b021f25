// attach(): reaching a plugin that is already running (started by an earlier host that
// has since exited, by `ftl-plugin run --json`, or by hand), with real processes.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn as spawnProcess } from "node:child_process";
import { chmodSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Code, type ConnectError } from "@connectrpc/connect";
import {
  allocatePort,
  attach,
  type AttachInfo,
  type AttachOptions,
  PluginStartError,
  spawn,
} from "../host.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import {
  abortedWithin,
  denoExecutable,
  echoGuestCommand,
  isGone,
  memoryLogger,
  onDeno,
  readmeGuestPermissions,
  readmeHostPermissions,
  runToEnd,
  scriptCommand,
  startGuest,
  tempDir,
  waitUntil,
  within,
} from "./_helpers.ts";

/** Runs a script of this repository as a user would: Deno with exactly `permissions`. */
function userCommand(url: URL, permissions: readonly string[]): { exe: string; args: string[] } {
  if (!onDeno) return scriptCommand(url);
  return { exe: denoExecutable(), args: ["run", ...permissions, fileURLToPath(url)] };
}

const exampleHost = userCommand(
  new URL("../examples/attach/host.ts", import.meta.url),
  readmeHostPermissions,
);
const chattyPlugin = userCommand(
  new URL("./fixtures/chatty_plugin.ts", import.meta.url),
  readmeGuestPermissions,
);
const echoCommand = echoGuestCommand(onDeno ? "deno" : "node");
const cli = scriptCommand(new URL("../cli.ts", import.meta.url));

function run(command: { exe: string; args: string[] }, args: string[]) {
  return runToEnd(
    spawnProcess(command.exe, [...command.args, ...args], { stdio: ["ignore", "pipe", "pipe"] }),
  );
}

/** The parent of a live process, from /proc. */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** Kills what a test left running: the process group `pid` leads, else the pid. */
function killLeftover(pid: number | undefined): void {
  if (!pid || isGone(pid)) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    process.kill(pid, "SIGKILL");
  }
}

/** SIGTERMs `child` (a CLI that stops its plugin on it), SIGKILLs it after 10 s; waits. */
async function stopRunner(child: ChildProcess, closed: Promise<unknown>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGTERM");
  await within("run to stop on SIGTERM", closed, 10_000).catch(() => {
    child.kill("SIGKILL");
    return closed;
  });
}

describe("attach", () => {
  it("refuses bad options with a TypeError naming the option, before trying anything", async () => {
    const good: AttachOptions<typeof EchoService> = {
      name: "echo",
      endpoint: "http://127.0.0.1:1",
      service: EchoService,
    };
    const cases: [
      Partial<Record<keyof typeof good | "pid" | "token" | "protocol", unknown>>,
      RegExp,
    ][] = [
      [{ name: "" }, /attach: name is required/],
      [{ endpoint: "127.0.0.1:8080" }, /attach: endpoint .* (is not a URL|must be http)/],
      [{ endpoint: "not a url" }, /attach: endpoint "not a url" is not a URL/],
      [{ endpoint: "https://127.0.0.1:8443" }, /attach: endpoint must be http:\/\/ .* not https:/],
      [
        { endpoint: "http://127.0.0.1:80/path" },
        /attach: endpoint .* only a scheme, host and port/,
      ],
      [{ endpoint: "unix://" }, /attach: endpoint .* names no socket path/],
      [{ service: "echo.v1.EchoService" }, /attach: service must be .* descriptor/],
      [{ pid: -5 }, /attach: pid must be a positive integer/],
      [{ pid: 1.5 }, /attach: pid must be a positive integer/],
      [{ pid: "42" }, /attach: pid must be a positive integer/],
      [{ pid: process.pid }, /attach: pid must be .* another process/],
      [{ token: "" }, /attach: token must be/],
      [{ token: "two words" }, /attach: token must be/],
      [{ protocol: "h3" }, /attach: protocol must be auto, connect, grpc or grpc-web/],
      [{ startTimeout: 0 }, /attach: startTimeout must be a positive number/],
    ];
    for (const [change, message] of cases) {
      await assert.rejects(
        attach({ ...good, ...change } as AttachOptions<typeof EchoService>),
        (error: Error) => error instanceof TypeError && message.test(error.message),
        JSON.stringify(change),
      );
    }
  });

  it("a host starts a plugin detached and exits; a later host attaches, calls and stops it", async () => {
    using dir = tempDir();
    const infoFile = join(dir.path, "echo.json");
    let pid: number | undefined;
    try {
      // Host A: spawn({ detach: true }), write attachInfo(), exit.
      const first = await run(exampleHost, [
        "start",
        infoFile,
        chattyPlugin.exe,
        ...chattyPlugin.args,
      ]);
      assert.equal(first.code, 0, first.stderr);
      const info: AttachInfo & { pid: number; token: string } = JSON.parse(
        readFileSync(infoFile, "utf8"),
      );
      pid = info.pid;
      assert.deepEqual(Object.keys(info).sort(), [
        "endpoint",
        "name",
        "pid",
        "protocol",
        "service",
        "token",
      ]);
      assert.equal(info.service, "echo.v1.EchoService");
      assert.ok(!first.stderr.includes(info.token), "the token reached the log");
      // Its host is gone, and it lives on past its guest's once-a-second parent check.
      assert.ok(!isGone(info.pid), "the detached plugin died with its host");
      assert.equal(await waitUntil(() => isGone(info.pid), 2_500), false, "it died after");

      // Each Echo writes to its stdout and stderr, which nobody reads now: EPIPE must
      // not end it (a crash would come right after the answer, so several calls).
      const here = await attach({ ...info, service: EchoService });
      for (const message of ["one", "two", "three"]) {
        assert.equal((await here.client.echo({ message })).message, message);
      }
      await here.release();
      assert.ok(!isGone(info.pid), "writing to a broken pipe ended it");

      // Host B, another process: attach from the file, Echo, stop by pid.
      const second = await run(exampleHost, ["attach", infoFile]);
      assert.equal(second.code, 0, second.stderr);
      assert.match(
        second.stdout,
        new RegExp(`echo \\(pid ${info.pid}\\) answered: still there\\?`),
      );
      assert.match(second.stdout, /stopped \(code null, signal null/);
      assert.ok(await waitUntil(() => isGone(info.pid), 5_000), "the plugin still runs");
    } finally {
      killLeftover(pid);
    }
  });

  it("attaches to a plugin started by hand: token, pid, watch and stop", async () => {
    const token = "attach-test-token";
    await using guest = await startGuest(echoCommand, { FTL_PLUGIN_TOKEN: token });
    const pid = guest.child.pid!;
    const endpoint = guest.url.href;
    const { logger, entries } = memoryLogger();

    const wrong = await attach({
      name: "echo",
      endpoint,
      service: EchoService,
      token: "wrong",
      logger,
    }).catch((error) => error);
    assert.ok(wrong instanceof PluginStartError, String(wrong));
    assert.match(wrong.message, /refused Ping: UNAUTHENTICATED: .*\(a wrong token\?\)/);
    const none = await attach({ name: "echo", endpoint, service: EchoService, logger })
      .catch((error) => error);
    assert.match(String(none), /UNAUTHENTICATED.*\(it wants a token: pass token\)/);

    // Without a pid: it works, but cannot stop it; its signal ends once nobody answers.
    const unwatched = await attach({ name: "echo", endpoint, service: EchoService, token, logger });
    assert.equal(unwatched.pid, undefined);
    assert.equal((await unwatched.client.echo({ message: "a" })).message, "a");
    await assert.rejects(unwatched.stop(), /attached without a pid, so it cannot be stopped/);

    const plugin = await attach({
      name: "echo",
      endpoint,
      service: EchoService,
      token,
      pid,
      logger,
    });
    assert.equal(plugin.pid, pid);
    assert.equal(plugin.protocol, "connect");
    assert.equal((await plugin.client.echo({ message: "b" })).message, "b");
    assert.deepEqual(plugin.attachInfo(), {
      name: "echo",
      endpoint: endpoint.replace(/\/$/, ""),
      service: "echo.v1.EchoService",
      protocol: "connect",
      pid,
      token,
    });
    // Not its group's leader (the test's child): SIGTERM to the pid, a clean exit.
    assert.deepEqual(await plugin.stop({ graceMs: 5_000 }), { code: null, signal: null });
    assert.ok(isGone(pid));
    assert.ok(plugin.signal.aborted);
    assert.match(String(plugin.signal.reason.message), /plugin echo ended \(how is not known\)/);
    assert.deepEqual(await guest.exited, { code: 0, signal: null });
    await assert.rejects(
      plugin.client.echo({ message: "late" }),
      (error: ConnectError) => error.code === Code.Unavailable,
    );
    await abortedWithin(unwatched.signal, 15_000, "the pid-less handle to notice");
    assert.match(unwatched.signal.reason.message, /stopped answering: 3 pings in a row/);
    assert.ok(!entries.some((e) => JSON.stringify(e).includes(token)), "the token was logged");

    const dead = await attach({ name: "echo", endpoint, service: EchoService, pid })
      .catch((error) => error);
    assert.ok(dead instanceof PluginStartError);
    assert.match(dead.message, new RegExp(`process ${pid} \\(plugin echo\\) is not running`));
  });

  it("attaches over a unix socket with a spawned plugin's attachInfo(); release() leaves it running", async () => {
    using dir = tempDir();
    const { logger } = memoryLogger();
    await using spawned = await spawn({
      name: "echo",
      dir: dir.path,
      ...echoCommand,
      service: EchoService,
      bind: "unix",
      logger,
    });
    const info = spawned.attachInfo();
    assert.match(info.endpoint, /^unix:\/\/\/.*\/\.ftl\/echo\.sock$/);
    assert.equal(info.pid, spawned.pid);
    const plugin = await attach({ ...info, service: EchoService, logger });
    assert.equal((await plugin.client.echo({ message: "over unix" })).message, "over unix");
    await plugin.release();
    await assert.rejects(
      plugin.client.echo({ message: "released" }),
      (error: ConnectError) => error.code === Code.Unavailable,
    );
    assert.ok(!spawned.signal.aborted, "release() stopped the plugin");
    assert.equal((await spawned.client.echo({ message: "mine" })).message, "mine");
  });

  it("says clearly when nothing listens at the endpoint, within startTimeout", async () => {
    const port = await allocatePort();
    // The bound only keeps a hang from stalling the suite; the message says it gave up.
    const error = await within(
      "attach() to give up",
      attach({
        name: "ghost",
        endpoint: `http://127.0.0.1:${port}`,
        service: EchoService,
        startTimeout: 500,
      }).catch((e) => e),
      20_000,
    );
    assert.ok(error instanceof PluginStartError, String(error));
    assert.match(
      error.message,
      new RegExp(`plugin ghost at http://127.0.0.1:${port} did not answer Ping within 500 ms`),
    );
  });

  it("attaches to `ftl-plugin run --json`, whose pid file a second host respects", async () => {
    using dir = tempDir();
    // The plugin as deno/node plus its script: what the pid-file rule compares. Through a
    // link, since Deno's child_process rewrites the arguments after its own path.
    const exe = join(dir.path, "runtime");
    symlinkSync(echoCommand.exe, exe);
    const { args } = echoCommand;
    // The CLI through a script: Deno's child_process rewrites a command line that names
    // deno itself, plugin arguments included.
    const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    const ftl = join(dir.path, "ftl-plugin");
    writeFileSync(ftl, `#!/bin/sh\nexec ${[cli.exe, ...cli.args].map(quote).join(" ")} "$@"\n`);
    chmodSync(ftl, 0o755);
    const runner = spawnProcess(ftl, ["run", "--json", "--dir", dir.path, "--", exe, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const closed = new Promise((resolve) => runner.once("close", resolve));
    let stderr = "";
    runner.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    let pid: number | undefined;
    try {
      const ready = await readyEvent(runner).catch((error) => {
        throw new Error(`${error.message}:\n${stderr}`);
      });
      pid = ready.pid as number;
      assert.equal(ready.service, "echo.v1.EchoService");
      assert.match(String(ready.token), /^\S{20,}$/);
      const plugin = await attach({ ...ready, service: EchoService } as AttachOptions<
        typeof EchoService
      >);
      assert.equal((await plugin.client.echo({ message: "hi" })).message, "hi");
      assert.equal(parentOf(pid), runner.pid, "run is the plugin's host");

      // Before: a second host's spawn() took the plugin for stale and killed it.
      const call = await run({ exe: ftl, args: [] }, [
        "call",
        "--dir",
        dir.path,
        exe,
        "echo.v1.EchoService/Echo",
        '{"message":"x"}',
        "--",
        ...args,
      ]);
      assert.equal(call.code, 3, "exit 3: the plugin could not be started");
      assert.match(
        call.stderr,
        new RegExp(
          `names process ${pid}, .* another host that is still alive \\(pid ${runner.pid}\\): attach\\(\\)`,
        ),
      );
      assert.equal((await plugin.client.echo({ message: "still" })).message, "still");
      assert.ok(!plugin.signal.aborted);
      // The library's spawn() says the same, and starts nothing.
      const refused = await spawn({
        name: String(ready.name),
        dir: dir.path,
        exe,
        args,
        service: EchoService,
        logger: memoryLogger().logger,
      }).catch((error) => error);
      assert.ok(refused instanceof PluginStartError, String(refused));
      assert.match(refused.message, /still alive .*: attach\(\) to it .* another name or dir$/);
      assert.equal((await plugin.client.echo({ message: "again" })).message, "again");

      // run stops it on SIGTERM: the attached handle sees the process go.
      process.kill(runner.pid!, "SIGTERM");
      await abortedWithin(plugin.signal, 10_000, "the attached handle to see it end");
      assert.deepEqual(await plugin.exited, { code: null, signal: null });
      await within("run to exit", closed, 10_000);
      assert.ok(!stderr.includes(String(ready.token)), "the token reached the log");
    } finally {
      runner.kill("SIGKILL");
      await closed;
      killLeftover(pid);
    }
  });

  it("reads the attach line of `ftl-plugin run` without --json", async () => {
    using dir = tempDir();
    const exe = join(dir.path, "runtime");
    symlinkSync(echoCommand.exe, exe);
    const command = [...cli.args, "run", "--dir", dir.path, "--", exe, ...echoCommand.args];
    const runner = spawnProcess(cli.exe, command, {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const closed = new Promise((resolve) => runner.once("close", resolve));
    let pid: number | undefined;
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no attach line in 30 s")), 30_000);
        createInterface({ input: runner.stdout! }).on("line", (text) => {
          if (!text.startsWith("  attach ")) return;
          clearTimeout(timer);
          resolve(text);
        });
        runner.once("close", () => reject(new Error("run ended without an attach line")));
      });
      const info: AttachInfo = JSON.parse(line.replace(/^\s*attach\s+/, ""));
      pid = info.pid;
      assert.equal(info.service, "echo.v1.EchoService");
      assert.equal(typeof info.token, "string");
      const plugin = await attach({ ...info, service: EchoService });
      assert.equal((await plugin.client.echo({ message: "human" })).message, "human");
      await plugin.release();
    } finally {
      await stopRunner(runner, closed);
      killLeftover(pid);
    }
  });
});

/** The ready event `ftl-plugin run --json` prints, within 30 s. */
function readyEvent(child: ChildProcess): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no ready event in 30 s")), 30_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const event = JSON.parse(line);
      if (event.event !== "ready") return;
      clearTimeout(timer);
      resolve(event);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`run exited (${code}) before it was ready`));
    });
  });
}
