// Host services: spawn({ hostServices }) serves the host's own services to its plugin on
// a private unix socket, and the guest calls them through ctx.host(Service). This
// runtime's host against both guests (Deno host ↔ Node guest under deno test, Node host ↔
// Deno guest under node --test), each guest run with only the permissions the README
// asks for; then the host's rules (bad input, the socket's life, the token) and the
// guest's (no FTL_HOST_BIND).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn as nodeSpawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { hostService, LogLevel, type Plugin, PluginStartError, spawn } from "../host.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { KeyValueService } from "../gen/kv/v1/kv_pb.ts";
import { Health } from "../gen/grpc/health/v1/health_pb.ts";
import { PluginConnection } from "../internal/transport.ts";
import { hostClients } from "../internal/host_client.ts";
import {
  denoExecutable,
  memoryLogger,
  onDeno,
  readmeGuestPermissions,
  readmeHostPermissions,
  repoRoot,
  type Runtime,
  runToEnd,
  scriptCommand,
  tempDir,
} from "./_helpers.ts";

const hostRuntime: Runtime = onDeno ? "deno" : "node";
/** Every wait here ends: a hung plugin fails the test instead of the suite. */
const WAIT_MS = 20_000;

/** The host's key-value store, as examples/host_services/host.ts serves it. */
function keyValueStore(initial: Record<string, string> = { greeting: "hello," }) {
  const store = new Map(Object.entries(initial));
  return {
    store,
    service: hostService(KeyValueService, {
      get: ({ key }) => ({ value: store.get(key) ?? "", found: store.has(key) }),
      put: ({ key, value }) => (store.set(key, value), {}),
      async *list({ prefix }) {
        for (const key of [...store.keys()].sort()) {
          if (key.startsWith(prefix)) yield { key, value: store.get(key)! };
        }
      },
    }),
  };
}

/** Where the npm build is: this test's own under Node; `FTL_TEST_NPM_DIR` or npm/ on Deno. */
const npmDir = onDeno
  ? process.env.FTL_TEST_NPM_DIR ?? join(repoRoot, "npm")
  : fileURLToPath(new URL("..", import.meta.url));

/**
 * The example plugin on `runtime`. A Deno guest gets what the README lists for a guest
 * plus the host's socket (`socket`), or broad access when the socket's path is not known
 * in advance (a private temporary directory).
 */
function greeterCommand(runtime: Runtime, socket?: string): { exe: string; args: string[] } {
  if (runtime === "node") {
    const compiled = join(npmDir, "examples/host_services/plugin.js");
    if (!existsSync(compiled)) throw new Error(`${compiled} is missing: run deno task build:npm`);
    return { exe: onDeno ? "node" : process.execPath, args: [compiled] };
  }
  const permissions = socket === undefined
    ? ["--allow-net", "--allow-read", "--allow-write"]
    : [`--allow-net=127.0.0.1,unix:${socket}`, `--allow-read=${socket}`, `--allow-write=${socket}`];
  const script = join(repoRoot, "examples/host_services/plugin.ts");
  return { exe: denoExecutable(), args: ["run", "--quiet", ...permissions, "--allow-env", script] };
}

function isCode(code: Code): (error: unknown) => boolean {
  return (error) => error instanceof ConnectError && error.code === code;
}

for (const guestRuntime of ["deno", "node"] as const) {
  describe(`${hostRuntime} host serving a ${guestRuntime} guest`, () => {
    const dir = tempDir();
    const socket = join(dir.path, ".ftl", "greeter.host.sock");
    const { store, service } = keyValueStore();
    const log = memoryLogger();
    let plugin: Plugin<typeof EchoService>;

    before(async () => {
      plugin = await spawn({
        name: "greeter",
        dir: dir.path,
        ...greeterCommand(guestRuntime, socket),
        service: EchoService,
        hostServices: [service],
        logger: log.logger,
        // Bounded by startTimeout (30 s); a signal here would stop it mid-suite.
      });
    });
    after(async () => {
      await plugin?.stop({ graceMs: 2_000 });
      dir[Symbol.dispose]();
    });

    it("lets the guest call a host service in create()", async () => {
      const entry = log.entries.find((e) => e.message === "greeting from the host");
      assert.deepEqual(entry?.attributes, { scope: "greeter", greeting: "hello,", found: "true" });
      const { message } = await plugin.client.echo({ message: "world" }, { timeoutMs: WAIT_MS });
      assert.equal(message, "hello, world");
    });

    it("lets a handler call host services, unary and server-streaming", async () => {
      await plugin.client.echo({ message: "again" }, { timeoutMs: WAIT_MS });
      assert.equal(store.get("seen/world"), "world");
      assert.equal(store.get("seen/again"), "again");
      const numbers: number[] = [];
      for await (const { number } of plugin.client.count({}, { timeoutMs: WAIT_MS })) {
        numbers.push(number);
      }
      assert.deepEqual(numbers, [1, 2]);
    });

    it("serves on <dir>/.ftl/<name>.host.sock, mode 0600, refusing calls without the token", async () => {
      assert.equal(statSync(socket).mode & 0o777, 0o600);
      for (const token of [undefined, "not-the-token"]) {
        const raw = new PluginConnection(new URL(`unix://${socket}`), {
          protocol: "connect",
          token,
        });
        try {
          const kv = createClient(KeyValueService, raw.transport);
          await assert.rejects(
            kv.get({ key: "greeting" }, { timeoutMs: WAIT_MS }),
            isCode(Code.Unauthenticated),
          );
          const listed = (async () => {
            for await (const _ of kv.list({ prefix: "" }, { timeoutMs: WAIT_MS })) { /* none */ }
          })();
          await assert.rejects(listed, isCode(Code.Unauthenticated));
          // Health stays open, as on a plugin's own server.
          const health = await createClient(Health, raw.transport).check({}, {
            timeoutMs: WAIT_MS,
          });
          assert.equal(health.status, 1);
        } finally {
          raw.close();
        }
      }
    });

    it("removes the socket once the plugin is stopped", async () => {
      const exit = await plugin.stop({ graceMs: 5_000 });
      assert.equal(exit.code, 0);
      assert.ok(!existsSync(socket), "the host's socket is still there");
    });
  });
}

describe(`a ${hostRuntime} host's host services`, () => {
  const guest = hostRuntime;

  it("refuses bad hostServices with a TypeError before anything starts", async () => {
    using dir = tempDir();
    const { service } = keyValueStore();
    const cases: [unknown, RegExp][] = [
      [service, /hostServices must be an array of \{ service, implementation \}, not an object/],
      [[null], /hostServices\[0\] must be \{ service, implementation \}, not null/],
      [
        [{ service: "kv.v1.KeyValueService", implementation: {} }],
        /hostServices\[0\]\.service must be a service descriptor/,
      ],
      [
        [{ service: KeyValueService.method.get, implementation: {} }],
        /hostServices\[0\]\.service must be a service descriptor/,
      ],
      [
        [{ service: KeyValueService }],
        /hostServices\[0\]\.implementation \(of kv\.v1\.KeyValueService\) must be an object, not undefined/,
      ],
      [
        [{ service: KeyValueService, implementation: { get() {}, put() {} } }],
        /hostServices\[0\]\.implementation \(of kv\.v1\.KeyValueService\) has no method list for List/,
      ],
      [[service, { ...service }], /hostServices\[1\]: kv\.v1\.KeyValueService is given twice/],
      [
        [{ service: Health, implementation: { check() {}, watch() {} } }],
        /hostServices\[0\]: grpc\.health\.v1\.Health is served by the host's server already/,
      ],
    ];
    for (const [hostServices, message] of cases) {
      await assert.rejects(
        spawn({
          name: "greeter",
          dir: dir.path,
          ...greeterCommand(guest),
          service: EchoService,
          hostServices: hostServices as never,
        }),
        (error: Error) => error instanceof TypeError && message.test(error.message),
        String(message),
      );
    }
    assert.ok(!existsSync(join(dir.path, ".ftl")), "spawn() prepared the working directory");
  });

  it("serves from a private temporary directory without workingDir, removed after stop", async () => {
    using dir = tempDir();
    const { store, service } = keyValueStore({ greeting: "hi" });
    const log = memoryLogger();
    let socketDir: string | undefined;
    {
      await using plugin = await spawn({
        name: "greeter",
        dir: dir.path,
        ...greeterCommand(guest),
        service: EchoService,
        workingDir: false,
        hostServices: [service],
        logger: log.logger,
        signal: AbortSignal.timeout(WAIT_MS),
      });
      const served = log.entries.map((e) => /^serving host services on (\S+)$/.exec(e.message))
        .find((match) => match !== null);
      assert.ok(served, "no debug line names the socket");
      const socket = decodeURIComponent(new URL(served[1]).pathname);
      socketDir = join(socket, "..");
      assert.equal(statSync(socketDir).mode & 0o777, 0o700);
      assert.equal(statSync(socket).mode & 0o777, 0o600);
      assert.ok(!existsSync(join(dir.path, ".ftl")));
      assert.equal((await plugin.client.echo({ message: "there" })).message, "hi there");
      assert.equal(store.get("seen/there"), "there");
    }
    assert.ok(!existsSync(socketDir), "the temporary directory is still there");
  });

  it("gives a guest whose host serves nothing a clear error from ctx.host()", async () => {
    using dir = tempDir();
    // A host that is itself some host's plugin must not pass that host's socket on. The
    // host is a process of its own: changing this process's env would reach the test
    // files deno test --parallel runs beside this one (its workers share one env).
    const host = scriptCommand(new URL("./fixtures/checksum_host.ts", import.meta.url));
    const options = { dir: dir.path, ...greeterCommand(guest) };
    const { code, stderr } = await runToEnd(
      nodeSpawn(host.exe, [...host.args, JSON.stringify(options)], {
        env: {
          ...process.env,
          FTL_HOST_BIND: `unix://${join(dir.path, "grandparent.sock")}`,
          FTL_HOST_TOKEN: "the grandparent's token",
        },
        stdio: ["ignore", "pipe", "pipe"],
      }),
      { timeoutMs: WAIT_MS },
    );
    assert.equal(code, 1, stderr);
    assert.match(stderr, /PluginStartError: plugin echo exited with code 1/);
    assert.match(
      stderr,
      /ctx\.host\(kv\.v1\.KeyValueService\): the host serves no services to this plugin \(FTL_HOST_BIND is not set/,
    );
  });

  it("tells a Deno guest without access to the socket which flag it lacks", async () => {
    using dir = tempDir();
    const { service } = keyValueStore();
    const script = join(repoRoot, "examples/host_services/plugin.ts");
    const socket = join(dir.path, ".ftl", "greeter.host.sock");
    await assert.rejects(
      spawn({
        name: "greeter",
        dir: dir.path,
        // The README's guest permissions, and nothing for the host's socket.
        exe: denoExecutable(),
        args: ["run", "--quiet", ...readmeGuestPermissions, script],
        service: EchoService,
        hostServices: [service],
        logger: memoryLogger().logger,
        signal: AbortSignal.timeout(WAIT_MS),
      }),
      (error: Error) =>
        error instanceof PluginStartError &&
        error.lastLines.some((line) =>
          line.includes(`host services at ${socket}: permission denied: run Deno with --allow-read`)
        ),
    );
  });

  it("keeps serving across a supervised restart, closing only at the final stop (LOG_LEVEL=DEBUG)", async () => {
    using dir = tempDir();
    const socket = join(dir.path, ".ftl", "greeter.host.sock");
    const { store, service } = keyValueStore();
    const log = memoryLogger();
    const plugin = await spawn({
      name: "greeter",
      dir: dir.path,
      ...greeterCommand(guest, socket),
      service: EchoService,
      hostServices: [service],
      restart: { backoff: { initialMs: 10 } },
      // What FTL's host passes: its whole environment, LOG_LEVEL as its user wrote it.
      env: { LOG_LEVEL: "DEBUG" },
      logger: log.logger,
    });
    try {
      const firstPid = plugin.pid;
      const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
      assert.ok(environ(firstPid).includes("LOG_LEVEL=DEBUG"));
      await plugin.client.echo({ message: "one" }, { timeoutMs: WAIT_MS });
      process.kill(firstPid!, "SIGKILL");
      // Calls fail UNAVAILABLE while the plugin is down; the next process answers.
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        try {
          await plugin.client.echo({ message: "two" }, { timeoutMs: WAIT_MS });
          break;
        } catch (error) {
          if (!isCode(Code.Unavailable)(error) || Date.now() > deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
      assert.notEqual(plugin.pid, firstPid);
      assert.ok(environ(plugin.pid).includes("LOG_LEVEL=DEBUG"), "the restart's env");
      assert.equal(store.get("seen/two"), "two");
      const greeted = log.entries.filter((e) => e.message === "greeting from the host");
      assert.equal(greeted.length, 2, "each process called the host in create()");
      const debug = log.entries.filter((e) =>
        e.attributes?.scope === "greeter" && e.message.startsWith("serving on ") &&
        e.level === LogLevel.Debug
      );
      assert.equal(debug.length, 2, "each process logs at debug (LOG_LEVEL=DEBUG)");
      assert.equal(statSync(socket).mode & 0o777, 0o600);
    } finally {
      await plugin.stop({ graceMs: 2_000 });
    }
    assert.ok(!existsSync(socket), "the host's socket outlived the plugin");
  });

  it("closes the server when the plugin fails to start", async () => {
    using dir = tempDir();
    const { service } = keyValueStore();
    await assert.rejects(
      spawn({
        name: "greeter",
        dir: dir.path,
        exe: process.execPath,
        args: onDeno ? ["eval", "Deno.exit(3)"] : ["-e", "process.exit(3)"],
        service: EchoService,
        hostServices: [service],
        logger: memoryLogger().logger,
        signal: AbortSignal.timeout(WAIT_MS),
      }),
      PluginStartError,
    );
    assert.ok(!existsSync(join(dir.path, ".ftl", "greeter.host.sock")));
  });
});

describe("ctx.host() in a guest", () => {
  it("refuses what is not a service descriptor", () => {
    const clients = hostClients({ FTL_HOST_BIND: "unix:///nowhere.sock" });
    assert.throws(() => clients.host({} as never), TypeError);
  });

  it("says FTL_HOST_BIND is not set (or blank) with FAILED_PRECONDITION", () => {
    for (const env of [{}, { FTL_HOST_BIND: "" }]) {
      assert.throws(
        () => hostClients(env).host(KeyValueService),
        (error: ConnectError) =>
          isCode(Code.FailedPrecondition)(error) && /FTL_HOST_BIND is not set/.test(error.message),
      );
    }
  });

  it("names FTL_HOST_BIND when it is not an address", () => {
    assert.throws(
      () => hostClients({ FTL_HOST_BIND: "ftp://host/x" }).host(KeyValueService),
      (error: ConnectError) =>
        isCode(Code.FailedPrecondition)(error) && /FTL_HOST_BIND: bind address/.test(error.message),
    );
  });

  it("fails calls UNAVAILABLE once closed", async () => {
    const clients = hostClients({ FTL_HOST_BIND: "unix:///nowhere.sock", FTL_HOST_TOKEN: "t" });
    const kv = clients.host(KeyValueService);
    clients.close();
    await assert.rejects(
      kv.get({ key: "x" }, { timeoutMs: WAIT_MS }),
      (error: ConnectError) =>
        isCode(Code.Unavailable)(error) &&
        /^host services at \/nowhere\.sock: /.test(error.rawMessage),
    );
  });

  it("fails calls UNAVAILABLE, naming the socket, when nothing listens there", async () => {
    const clients = hostClients({ FTL_HOST_BIND: "unix:///nowhere.sock", FTL_HOST_TOKEN: "t" });
    try {
      await assert.rejects(
        clients.host(KeyValueService).get({ key: "x" }, { timeoutMs: WAIT_MS }),
        (error: ConnectError) =>
          isCode(Code.Unavailable)(error) &&
          /^host services at \/nowhere\.sock: /.test(error.rawMessage),
      );
    } finally {
      clients.close();
    }
  });
});

describe("the host-services example", { skip: !onDeno && "Deno permissions only" }, () => {
  const example = join(repoRoot, "examples/host_services/host.ts");
  // The README's host permissions, --allow-net widened to the socket (below).
  const hostPermissions = readmeHostPermissions.filter((p) => !p.startsWith("--allow-net"));
  const run = (args: string[]) =>
    runToEnd(nodeSpawn(denoExecutable(), args, { stdio: ["ignore", "pipe", "pipe"] }), {
      timeoutMs: 60_000,
    });

  it("runs with the README's host permissions plus net access to its socket", async () => {
    using dir = tempDir();
    const socket = join(dir.path, ".ftl", "greeter.host.sock");
    const { code, stdout, stderr } = await run([
      "run",
      ...hostPermissions,
      `--allow-net=127.0.0.1,unix:${socket}~`,
      example,
      dir.path,
    ]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /Echo\("world"\) → hello, world/);
    assert.match(stdout, /the host's store holds greeting, seen\/world, seen\/again/);
    assert.match(stdout, /Count streamed 1, 2 \(from the host's List\)/);
    assert.match(stdout, /stopped with exit code 0/);
    assert.match(stderr, /greeter: greeting from the host/);
  });

  it("names --allow-net when the host may not listen on its socket", async () => {
    using dir = tempDir();
    const { code, stderr } = await run([
      "run",
      ...hostPermissions,
      "--allow-net=127.0.0.1",
      example,
      dir.path,
    ]);
    assert.notEqual(code, 0);
    assert.match(
      stderr,
      /cannot serve host services: permission denied: run Deno with --allow-net/,
    );
  });
});
