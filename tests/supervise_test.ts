import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  LogLevel,
  type Plugin,
  PluginExitError,
  PluginGaveUpError,
  PluginStartError,
  type RestartEvent,
  type RestartOptions,
  spawn,
  type SpawnOptions,
} from "../host.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { spawn as spawnProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import {
  denoExecutable,
  groupMembers,
  isGone,
  memoryLogger,
  onDeno,
  readmeHostPermissions,
  repoRoot,
  runToEnd,
  scriptCommand,
  tempDir,
  within,
} from "./_helpers.ts";

// A Deno guest under `deno test`, a Node guest (the compiled fixture) under `node --test`.
const supervisedPlugin = scriptCommand(
  new URL("./fixtures/supervised_plugin.ts", import.meta.url),
);

/** Every wait in these tests is bounded by this. */
const BOUND_MS = 20_000;

/** Resolves once `condition` holds; rejects after BOUND_MS, naming `what`. */
async function eventually(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + BOUND_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** `promise`, or a rejection after BOUND_MS naming `what`. */
function bounded<T>(what: string, promise: Promise<T>): Promise<T> {
  return within(what, promise, BOUND_MS);
}

/** How a call failed: its Connect code. */
async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

interface Supervised {
  plugin: Plugin<typeof EchoService>;
  events: RestartEvent[];
  entries: ReturnType<typeof memoryLogger>["entries"];
  dir: string;
  /** How many times the plugin became ready again (from the host's log). */
  restarted(): number;
}

/** Spawns the fixture under supervision in a fresh directory; stops it after `use`. */
async function withSupervised(
  restart: RestartOptions,
  use: (s: Supervised) => Promise<void>,
  extra: Partial<SpawnOptions<typeof EchoService>> = {},
  env: (dir: string) => Record<string, string> = () => ({}),
): Promise<void> {
  using dir = tempDir();
  const { logger, entries } = memoryLogger();
  const events: RestartEvent[] = [];
  const plugin = await spawn({
    name: "supervised",
    dir: dir.path,
    ...supervisedPlugin,
    service: EchoService,
    logger,
    env: env(dir.path),
    restart: {
      ...restart,
      onRestart: (event) => {
        events.push(event);
        restart.onRestart?.(event);
      },
    },
    ...extra,
  });
  const restarted = () => entries.filter((e) => /^restarted \(pid/.test(e.message)).length;
  try {
    await use({ plugin, events, entries, dir: dir.path, restarted });
  } finally {
    await bounded("the final stop", plugin.stop({ graceMs: 1_000 }));
  }
}

/** SIGKILLs the plugin's current process. */
function crash(plugin: Plugin<typeof EchoService>): void {
  process.kill(plugin.pid, "SIGKILL");
}

describe("spawn({ restart })", () => {
  it("restarts a killed plugin; clients made before go on working, calls in flight fail UNAVAILABLE", async () => {
    await withSupervised(
      { backoff: { initialMs: 10 } },
      async ({ plugin, events, entries, restarted }) => {
        const client = plugin.client;
        const late = createClient(EchoService, plugin.transport);
        assert.equal((await client.echo({ message: "one" })).message, "one");
        const firstPid = plugin.pid;
        const firstEndpoint = plugin.endpoint.href;
        assert.equal(plugin.restarts, 0);

        // A stream that has answered once is surely in flight when the plugin dies.
        const stream = client.count({ count: 1_000, intervalMs: 20 })[Symbol.asyncIterator]();
        assert.equal((await stream.next()).value?.number, 1);
        crash(plugin);
        const inFlight = codeOf((async () => {
          while (!(await stream.next()).done);
        })());
        assert.equal(await bounded("the call in flight", inFlight), Code.Unavailable);
        await eventually("the restart", () => restarted() === 1);

        assert.notEqual(plugin.pid, firstPid);
        assert.notEqual(plugin.endpoint.href, firstEndpoint, "a new port");
        assert.equal(plugin.restarts, 1);
        assert.ok(!plugin.signal.aborted);
        assert.equal((await client.echo({ message: "two" })).message, "two");
        assert.equal((await late.echo({ message: "three" })).message, "three");
        assert.equal(events.length, 1);
        assert.equal(events[0].attempt, 1);
        assert.equal(events[0].delayMs, 10);
        assert.deepEqual(events[0].exit, { code: null, signal: "SIGKILL" });
        assert.ok(events[0].reason instanceof PluginExitError);
        const warning = entries.find((e) => /restart 1 of 5 in 10 ms/.test(e.message));
        assert.ok(warning, "a warning per restart");
        assert.match(warning.message, /plugin supervised was killed by SIGKILL/);
        assert.ok(isGone(firstPid));
      },
    );
  });

  it("fails calls made while the plugin is down with UNAVAILABLE at once", async () => {
    let duringWait: Promise<Code | "ok"> | undefined;
    let client: Plugin<typeof EchoService>["client"] | undefined;
    await withSupervised({
      backoff: { initialMs: 200 },
      onRestart: () => {
        duringWait = codeOf(client!.echo({ message: "down" }));
        throw new Error("a listener's bug");
      },
    }, async ({ plugin, restarted, entries }) => {
      client = plugin.client;
      crash(plugin);
      await eventually("the restart", () => restarted() === 1);
      assert.equal(await duringWait, Code.Unavailable);
      assert.ok(
        entries.some((e) => /restart\.onRestart threw: .*a listener's bug/.test(e.message)),
        "what onRestart throws is logged, and the restart goes on",
      );
      assert.equal((await client.echo({ message: "up" })).message, "up");
    });
  });

  it("keeps a unix socket's path across restarts", async () => {
    await withSupervised({ backoff: { initialMs: 0 } }, async ({ plugin, restarted }) => {
      const endpoint = plugin.endpoint.href;
      assert.match(endpoint, /^unix:/);
      crash(plugin);
      await eventually("the restart", () => restarted() === 1);
      assert.equal(plugin.endpoint.href, endpoint);
      assert.equal((await plugin.client.echo({ message: "unix" })).message, "unix");
    }, { bind: "unix" });
  });

  it("backs off exponentially up to maxMs, restarts a clean exit too, and starts over after a healthy period", async () => {
    const resetAfterMs = 1_500;
    await withSupervised({
      maxRestarts: 10,
      backoff: { initialMs: 20, factor: 3, maxMs: 100 },
      resetAfterMs,
    }, async ({ plugin, events, restarted }) => {
      for (let n = 1; n <= 4; n++) {
        if (n === 2) {
          // Exiting with code 0 on its own is as unexpected for a plugin as a crash.
          await plugin.client.echo({ message: "exit" });
        } else {
          crash(plugin);
        }
        await eventually(`restart ${n}`, () => restarted() === n);
      }
      assert.deepEqual(events.map((e) => e.attempt), [1, 2, 3, 4]);
      assert.deepEqual(events.map((e) => e.delayMs), [20, 60, 100, 100]);
      assert.deepEqual(events[1].exit, { code: 0, signal: null });

      // Healthy (ready and alive) for resetAfterMs: the next crash is a first one again.
      await new Promise((resolve) => setTimeout(resolve, resetAfterMs + 100));
      crash(plugin);
      await eventually("restart 5", () => restarted() === 5);
      assert.equal(events[4].attempt, 1);
      assert.equal(events[4].delayMs, 20);
      assert.equal(plugin.restarts, 5);
    });
  });

  it("gives up after maxRestarts failed restarts, with the last exit and lines", async () => {
    await withSupervised(
      { maxRestarts: 2, backoff: { initialMs: 10 } },
      async ({ plugin, events, entries, dir }) => {
        writeFileSync(`${dir}/crash`, "");
        crash(plugin);
        await bounded("exited", plugin.exited);
        const reason = plugin.signal.reason;
        assert.ok(reason instanceof PluginGaveUpError, String(reason));
        assert.deepEqual(reason.exit, { code: 3, signal: null });
        assert.equal(reason.restarts, 2);
        assert.ok(reason.lastLines.includes("fatal: the crash file is there"));
        assert.match(reason.message, /exited with code 3; gave up after 2 restarts/);
        assert.ok(reason.cause instanceof PluginStartError);
        assert.deepEqual(await plugin.exited, { code: 3, signal: null });
        assert.equal(plugin.restarts, 2);
        // A restart that died during its startup counts as a failed attempt.
        assert.deepEqual(events.map((e) => [e.attempt, e.delayMs]), [[1, 10], [2, 20]]);
        assert.ok(events[1].reason instanceof PluginStartError);
        assert.equal(events[1].exit.code, 3);
        assert.ok(
          entries.some((e) => e.level >= 17 && /gave up after 2 restarts/.test(e.message)),
          "an error line says so",
        );
        const late = await plugin.client.echo({ message: "after" }).catch((e: unknown) => e);
        assert.ok(late instanceof ConnectError && late.code === Code.Unavailable, String(late));
        // The verdict, not the message of the crash that began the restarts.
        assert.match(late.rawMessage, /gave up after 2 restarts/);
        assert.deepEqual(await plugin.stop(), { code: 3, signal: null }, "stop() after: its exit");
        assert.ok(!existsSync(`${dir}/.ftl/supervised.pid`), "no pid file left");
      },
      {},
      (dir) => ({ SUPERVISE_CRASH_FILE: `${dir}/crash` }),
    );
  });

  it("stops during a backoff wait, at once, and stop() is idempotent", async () => {
    await withSupervised({ backoff: { initialMs: 60_000 } }, async ({ plugin, events }) => {
      const pid = plugin.pid;
      crash(plugin);
      await eventually("the restart to be scheduled", () => events.length === 1);
      const stopped = plugin.stop();
      assert.equal(plugin.stop(), stopped);
      assert.deepEqual(await bounded("stop() during the wait", stopped), {
        code: null,
        signal: "SIGKILL",
      });
      assert.ok(plugin.signal.reason instanceof PluginExitError);
      assert.ok(!(plugin.signal.reason instanceof PluginGaveUpError));
      assert.deepEqual(await plugin.exited, { code: null, signal: "SIGKILL" });
      assert.deepEqual(groupMembers(pid), []);
      assert.equal(plugin.restarts, 1);
    });
  });

  it("stops during a restart's startup, reaping the new process", async () => {
    await withSupervised(
      { backoff: { initialMs: 0 } },
      async ({ plugin, entries, dir }) => {
        writeFileSync(`${dir}/hang`, "");
        crash(plugin);
        await eventually(
          "the restart to start",
          () => entries.some((e) => e.message === "hanging before listening"),
        );
        // The pid file is written before any of its output is read.
        const hanging = Number(readPidFile(dir));
        assert.ok(hanging > 0 && hanging !== plugin.pid);
        await bounded("stop() during startup", plugin.stop());
        assert.ok(isGone(hanging), "the restart's process was reaped");
        assert.ok(plugin.signal.aborted);
      },
      {},
      (dir) => ({ SUPERVISE_HANG_FILE: `${dir}/hang` }),
    );
  });

  it("ends supervision when the signal option aborts", async () => {
    const controller = new AbortController();
    await withSupervised(
      { backoff: { initialMs: 60_000 } },
      async ({ plugin, events }) => {
        crash(plugin);
        await eventually("the restart to be scheduled", () => events.length === 1);
        controller.abort();
        await bounded("exited", plugin.exited);
        assert.ok(plugin.signal.aborted);
        // Ended as stop() ends it, not given up, and nothing restarted after.
        assert.ok(plugin.signal.reason instanceof PluginExitError, String(plugin.signal.reason));
        assert.ok(!(plugin.signal.reason instanceof PluginGaveUpError));
        assert.equal(plugin.restarts, 1);
        assert.deepEqual(groupMembers(plugin.pid), []);
      },
      { signal: controller.signal },
    );
  });

  it("restarts a plugin given LOG_LEVEL=DEBUG (as FTL's host passes its env), debug lines from each process", async () => {
    await withSupervised(
      { backoff: { initialMs: 0 } },
      async ({ plugin, entries, restarted }) => {
        const firstPid = plugin.pid;
        assert.ok(environOf(firstPid).includes("LOG_LEVEL=DEBUG"));
        crash(plugin);
        await eventually("the restart", () => restarted() === 1);
        assert.notEqual(plugin.pid, firstPid);
        // The restart got the same env (not the host logger's level), and parsed it.
        assert.ok(environOf(plugin.pid).includes("LOG_LEVEL=DEBUG"));
        assert.equal((await plugin.client.echo({ message: "debug" })).message, "debug");
        const serving = entries.filter((e) =>
          e.attributes?.scope === "supervised" && e.message.startsWith("serving on ") &&
          e.level === LogLevel.Debug
        );
        assert.equal(serving.length, 2, "each process logs at debug");
      },
      {},
      () => ({ LOG_LEVEL: "DEBUG" }),
    );
  });

  it("rejects bad restart options before starting anything", async () => {
    using dir = tempDir();
    const base = {
      name: "supervised",
      dir: dir.path,
      ...supervisedPlugin,
      service: EchoService,
      logger: memoryLogger().logger,
    };
    const cases: [unknown, RegExp][] = [
      [5, /restart must be an object/],
      [null, /restart must be an object/],
      [{ maxRestarts: -1 }, /restart\.maxRestarts must be a whole number/],
      [{ maxRestarts: 1.5 }, /restart\.maxRestarts/],
      [{ maxRetries: 3 }, /restart\.maxRetries is not an option/],
      [{ backoff: 100 }, /restart\.backoff must be an object/],
      [{ backoff: { initialMs: -1 } }, /restart\.backoff\.initialMs/],
      [{ backoff: { initialMs: 100, maxMs: 50 } }, /restart\.backoff\.maxMs must be .* at least/],
      [{ backoff: { factor: 0.5 } }, /restart\.backoff\.factor must be a number, 1 or more/],
      [{ backoff: { delay: 1 } }, /restart\.backoff\.delay is not an option/],
      [{ resetAfterMs: 0 }, /restart\.resetAfterMs must be a positive/],
      [{ onRestart: "log" }, /restart\.onRestart must be a function/],
    ];
    for (const [restart, message] of cases) {
      await assert.rejects(
        spawn({ ...base, restart: restart as RestartOptions }),
        (error: unknown) => error instanceof TypeError && message.test(error.message),
        `restart: ${JSON.stringify(restart)}`,
      );
    }
    assert.ok(!existsSync(`${dir.path}/.ftl`), "nothing was prepared");
  });

  it("rejects spawn() when the first start fails, without restarting", async () => {
    using dir = tempDir();
    writeFileSync(`${dir.path}/crash`, "");
    const events: RestartEvent[] = [];
    await assert.rejects(
      spawn({
        name: "supervised",
        dir: dir.path,
        ...supervisedPlugin,
        service: EchoService,
        logger: memoryLogger().logger,
        env: { SUPERVISE_CRASH_FILE: `${dir.path}/crash` },
        restart: { onRestart: (event) => events.push(event) },
      }),
      (error: unknown) => error instanceof PluginStartError && error.exit?.code === 3,
    );
    assert.equal(events.length, 0);
  });
});

/** The fixture on the other runtime than this test's, if it is there to run. */
function otherRuntimeGuest(): { exe: string; args: string[] } | undefined {
  if (onDeno) {
    const compiled = join(repoRoot, "npm/tests/fixtures/supervised_plugin.js");
    return existsSync(compiled) ? { exe: "node", args: [compiled] } : undefined;
  }
  const source = join(repoRoot, "tests/fixtures/supervised_plugin.ts");
  return existsSync(source) && process.env.DENO_BIN
    ? { exe: denoExecutable(), args: ["run", "-A", source] }
    : undefined;
}

describe("spawn({ restart }) across runtimes", () => {
  const guest = otherRuntimeGuest();
  it(`restarts a ${onDeno ? "Node" : "Deno"} guest`, {
    skip: !guest && "the other runtime's fixture is not built",
  }, async () => {
    await withSupervised({ backoff: { initialMs: 0 } }, async ({ plugin, restarted }) => {
      const client = plugin.client;
      assert.equal((await client.echo({ message: "one" })).message, "one");
      crash(plugin);
      await eventually("the restart", () => restarted() === 1);
      assert.equal((await client.echo({ message: "two" })).message, "two");
    }, guest);
  });
});

describe("examples/supervise", { skip: !onDeno && "a Deno example" }, () => {
  it("runs with the README's host permissions, the plugin with a guest's", async () => {
    const example = fileURLToPath(new URL("../examples/supervise/host.ts", import.meta.url));
    const permissions = readmeHostPermissions;
    const child = spawnProcess(process.execPath, ["run", ...permissions, example], {
      stdio: ["ignore", "pipe", "pipe"],
      signal: AbortSignal.timeout(BOUND_MS),
    });
    const { code, stdout, stderr } = await runToEnd(child);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /says before\n/);
    assert.match(stdout, /plugin echo was killed by SIGKILL: restart 1 in 100 ms/);
    assert.match(stdout, /says after; restarts: 1/);
    assert.match(stderr, /restart 1 of 3 in 100 ms/);
  });
});

/** The environment a process was started with, from /proc. */
function environOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
}

function readPidFile(dir: string): string {
  return readFileSync(`${dir}/.ftl/supervised.pid`, "utf8").trim();
}
