// spawn({ checksum }): a plugin starts only when the file that will run has the digest,
// and a refused one leaves nothing behind (no process, no pid file, no stale kill).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn as spawnProcess } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  createReadStream,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  type Checksum,
  PluginChecksumError,
  PluginGaveUpError,
  spawn,
  type SpawnOptions,
} from "../host.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import {
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

const testPlugin = scriptCommand(new URL("./fixtures/test_plugin.ts", import.meta.url));
/** The script the runtime runs: the compiled twin on Node. */
const testScript = testPlugin.args[testPlugin.args.length - 1];

async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Uint8Array);
  return `sha256:${hash.digest("hex")}`;
}

const wrong = `sha256:${"0".repeat(64)}`;

/**
 * Writes an executable shell script that runs the test plugin, touching `marker` first
 * when given (so that a test can tell whether anything ran).
 */
function writeLauncher(path: string, marker?: string): void {
  const command = [testPlugin.exe, ...testPlugin.args].map((a) => JSON.stringify(a)).join(" ");
  const touch = marker ? `: > ${JSON.stringify(marker)}\n` : "";
  writeFileSync(path, `#!/bin/sh\n${touch}exec ${command} "$@"\n`);
  chmodSync(path, 0o755);
}

/** spawn() of the test plugin in `dir`, with `extra` over the defaults. */
function spawnTest(dir: string, extra: Partial<SpawnOptions<typeof EchoService>>) {
  return spawn({
    name: "test",
    dir,
    ...testPlugin,
    service: EchoService,
    logger: memoryLogger().logger,
    startTimeout: 30_000,
    ...extra,
  });
}

/** Spawns with `extra`, calls Echo once, stops; resolves what the plugin echoed. */
async function startAndEcho(
  dir: string,
  extra: Partial<SpawnOptions<typeof EchoService>>,
): Promise<string> {
  await using plugin = await spawnTest(dir, extra);
  return (await plugin.client.echo({ message: "checked" }, { timeoutMs: 30_000 })).message;
}

/** What spawn() rejected with. */
async function refusal(
  dir: string,
  extra: Partial<SpawnOptions<typeof EchoService>>,
): Promise<unknown> {
  const outcome = await spawnTest(dir, extra).then(
    async (plugin) => {
      await plugin.stop({ graceMs: 0 });
      return undefined;
    },
    (error: unknown) => error,
  );
  assert.ok(outcome !== undefined, "spawn started a plugin it should have refused");
  return outcome;
}

describe("spawn({ checksum })", () => {
  it("starts the executable whose digest matches (the runtime itself), and calls it", async () => {
    using dir = tempDir();
    const digest = await sha256Of(testPlugin.exe);
    assert.equal(await startAndEcho(dir.path, { checksum: digest }), "checked");
    // Upper-case hex is the same digest.
    assert.equal(
      await startAndEcho(dir.path, { checksum: digest.replace(/[a-f]/g, (c) => c.toUpperCase()) }),
      "checked",
    );
  });

  it("checks the script a runtime runs, named relative to dir ({ file, digest })", async () => {
    using dir = tempDir();
    const file = relative(dir.path, testScript);
    assert.ok(!file.startsWith("/"), file);
    const checksum: Checksum = { file, digest: await sha256Of(testScript) };
    assert.equal(await startAndEcho(dir.path, { checksum }), "checked");

    const error = await refusal(dir.path, { checksum: { file, digest: wrong } });
    assert.ok(error instanceof PluginChecksumError, String(error));
    assert.equal(error.file, `${dir.path}/${file}`);
    assert.equal(error.actual, checksum.digest);
    // The ".." of a path from dir is shown resolved; the arrow is kept for links.
    assert.ok(file.includes(".."), file);
    assert.ok(error.message.includes(`: ${realpathSync(testScript)} has `), error.message);
    assert.ok(!error.message.includes("→"), error.message);
  });

  it("finds a bare exe through the plugin's PATH, follows a symlink, and hashes what runs", async () => {
    using dir = tempDir();
    const bin = `${dir.path}/bin`;
    mkdirSync(bin);
    const real = `${dir.path}/launcher.sh`;
    writeLauncher(real);
    symlinkSync(real, `${bin}/checked-plugin`);
    // A same-named file later on PATH must not be the one checked.
    mkdirSync(`${dir.path}/later`);
    writeFileSync(`${dir.path}/later/checked-plugin`, "#!/bin/sh\nexit 3\n");
    chmodSync(`${dir.path}/later/checked-plugin`, 0o755);
    const env = { PATH: `${bin}:${dir.path}/later:${process.env.PATH ?? ""}` };
    const digest = await sha256Of(real);
    assert.equal(
      await startAndEcho(dir.path, { exe: "checked-plugin", args: [], env, checksum: digest }),
      "checked",
    );

    const error = await refusal(dir.path, {
      exe: "checked-plugin",
      args: [],
      env,
      checksum: wrong,
    });
    assert.ok(error instanceof PluginChecksumError, String(error));
    assert.equal(error.file, `${bin}/checked-plugin`);
    assert.ok(error.message.includes(`${bin}/checked-plugin (→ ${real})`), error.message);
  });

  it("takes a relative exe from dir, as the process start does", async () => {
    using dir = tempDir();
    mkdirSync(`${dir.path}/bin`);
    writeLauncher(`${dir.path}/bin/plugin`);
    const digest = await sha256Of(`${dir.path}/bin/plugin`);
    // It starts, so the runtime too found ./bin/plugin from dir (not from our cwd).
    assert.notEqual(process.cwd(), dir.path);
    assert.equal(
      await startAndEcho(dir.path, { exe: "./bin/plugin", args: [], checksum: digest }),
      "checked",
    );
    const error = await refusal(dir.path, { exe: "./bin/plugin", args: [], checksum: wrong });
    assert.ok(error instanceof PluginChecksumError, String(error));
    assert.equal(error.file, `${dir.path}/bin/plugin`);
    assert.equal(error.actual, digest);
  });

  it("checks again before each restart: a changed file is not restarted", async () => {
    using dir = tempDir();
    const launcher = `${dir.path}/plugin`;
    writeLauncher(launcher);
    const plugin = await spawnTest(dir.path, {
      exe: launcher,
      args: [],
      checksum: await sha256Of(launcher),
      restart: { maxRestarts: 1, backoff: { initialMs: 10 } },
    });
    try {
      const marker = `${dir.path}/ran`;
      writeLauncher(launcher, marker); // the same plugin, and a marker: another digest
      process.kill(plugin.pid, "SIGKILL");
      await within("the give-up", plugin.exited, 30_000);
      const reason = plugin.signal.reason;
      assert.ok(reason instanceof PluginGaveUpError, String(reason));
      assert.ok(reason.cause instanceof PluginChecksumError, String(reason.cause));
      assert.equal(reason.cause.actual, await sha256Of(launcher));
      // The give-up names the refusal, not only the SIGKILL that began the restarts.
      assert.match(reason.message, /gave up after 1 restart \(the last: .*has sha256:/);
      assert.ok(!existsSync(marker), "the changed plugin ran");
    } finally {
      await plugin.stop({ graceMs: 0 });
    }
  });

  it("refuses a wrong digest naming the file and both digests, and runs nothing", async () => {
    using dir = tempDir();
    const marker = `${dir.path}/ran`;
    const launcher = `${dir.path}/launcher.sh`;
    writeLauncher(launcher, marker);
    const actual = await sha256Of(launcher);

    const error = await refusal(dir.path, { exe: launcher, args: [], checksum: wrong });
    assert.ok(error instanceof PluginChecksumError, String(error));
    assert.equal(
      error.message,
      `plugin test was not started: ${launcher} has ${actual}, but the checksum expects ${wrong}`,
    );
    assert.equal(error.expected, wrong);
    assert.equal(error.actual, actual);
    assert.equal(error.file, launcher);
    assert.deepEqual(error.lastLines, []);
    assert.equal(error.exit, undefined);
    assert.ok(!existsSync(marker), "the refused plugin ran");
    assert.ok(!existsSync(`${dir.path}/.ftl`), ".ftl was made");
  });

  it("leaves alone the stale plugin a pid file names, and the pid file", async () => {
    using dir = tempDir();
    // The same command as the spawn below: spawn() kills it as stale once it gets that far.
    const stale = spawnProcess(testPlugin.exe, testPlugin.args, {
      env: { ...process.env, TEST_NEVER_LISTEN: "1" },
      stdio: "ignore",
    });
    const staleClosed = new Promise((resolve) => stale.once("close", resolve));
    try {
      mkdirSync(`${dir.path}/.ftl`);
      writeFileSync(`${dir.path}/.ftl/test.pid`, `${stale.pid}\n`);
      const error = await refusal(dir.path, { checksum: wrong });
      assert.ok(error instanceof PluginChecksumError, String(error));
      assert.ok(!isGone(stale.pid!), "the stale process was killed");
      assert.equal(readFileSync(`${dir.path}/.ftl/test.pid`, "utf8"), `${stale.pid}\n`);
    } finally {
      stale.kill("SIGKILL");
      await staleClosed;
    }
  });

  describe("malformed options: a TypeError naming the option, before anything", () => {
    const hex = "ab".repeat(32);
    const cases: [string, unknown, RegExp][] = [
      [
        "another algorithm",
        `sha512:${hex}${hex}`,
        /algorithm "sha512" is not supported; accepted: "sha256:<64 hex digits>"/,
      ],
      ["md5", "md5:d41d8cd98f00b204e9800998ecf8427e", /algorithm "md5" is not supported/],
      ["no algorithm", hex, /names no algorithm/],
      ["short hex", `sha256:${hex.slice(2)}`, /needs 64 hex digits.*it has 62 characters\)/],
      ["non-hex", `sha256:${"zz".repeat(32)}`, /it has 64 characters, not all hex/],
      ["empty", "", /names no algorithm/],
      ["a number", 42, /checksum must be a string or \{ file, digest \}, not number/],
      ["null", null, /not null/],
      ["an array", [`sha256:${hex}`], /must be a string or \{ file, digest \}/],
      ["an unknown key", { path: "x", digest: `sha256:${hex}` }, /unknown key "path"/],
      ["no file", { digest: `sha256:${hex}` }, /checksum\.file must be a non-empty path/],
      ["an empty file", { file: "", digest: `sha256:${hex}` }, /checksum\.file/],
      ["no digest", { file: "plugin.ts" }, /checksum\.digest must be a string/],
      [
        "a bad digest",
        { file: "plugin.ts", digest: "sha1:abc" },
        /checksum\.digest algorithm "sha1"/,
      ],
    ];
    for (const [what, checksum, message] of cases) {
      it(what, async () => {
        using dir = tempDir();
        const error = await refusal(dir.path, { checksum: checksum as Checksum });
        assert.ok(error instanceof TypeError, String(error));
        assert.match(error.message, /^spawn: checksum/);
        assert.match(error.message, message);
        assert.ok(!existsSync(`${dir.path}/.ftl`), ".ftl was made");
      });
    }
  });

  describe("a file that cannot be checked: a PluginChecksumError naming it", () => {
    it("is missing", async () => {
      using dir = tempDir();
      const error = await refusal(dir.path, { checksum: { file: "gone.ts", digest: wrong } });
      assert.ok(error instanceof PluginChecksumError, String(error));
      assert.equal(
        error.message,
        `plugin test was not started: its checksum could not be verified: cannot read ${dir.path}/gone.ts: no such file or directory`,
      );
      assert.equal(error.actual, undefined);
    });

    it("is a directory", async () => {
      using dir = tempDir();
      mkdirSync(`${dir.path}/sub`);
      const error = await refusal(dir.path, { checksum: { file: "sub", digest: wrong } });
      assert.ok(error instanceof PluginChecksumError, String(error));
      assert.ok(
        error.message.endsWith(`cannot read ${dir.path}/sub: is a directory`),
        error.message,
      );
    });

    it("is unreadable", { skip: process.getuid?.() === 0 && "root reads any file" }, async () => {
      using dir = tempDir();
      writeFileSync(`${dir.path}/secret`, "x");
      chmodSync(`${dir.path}/secret`, 0o000);
      const error = await refusal(dir.path, { checksum: { file: "secret", digest: wrong } });
      assert.ok(error instanceof PluginChecksumError, String(error));
      assert.match(error.message, /cannot read .*\/secret: permission denied$/);
    });

    it("is a bare name on no PATH entry", async () => {
      using dir = tempDir();
      const error = await refusal(dir.path, {
        exe: "no-such-plugin-here",
        env: { PATH: `${dir.path}/bin` },
        checksum: wrong,
      });
      assert.ok(error instanceof PluginChecksumError, String(error));
      assert.match(error.message, /no executable "no-such-plugin-here" in its PATH \(.*\/bin\)$/);
    });
  });
});

const checksumHost = fileURLToPath(new URL("../examples/checksum/host.ts", import.meta.url));
const echoScript = join(repoRoot, "examples/echo/plugin.ts");
/** `deno run` with the permissions the README lists for a host. */
const readmeHostRun = ["run", ...readmeHostPermissions];

describe(
  "examples/checksum with the README's host permissions",
  { skip: !onDeno && "a Deno host" },
  () => {
    function runHost(digest: string) {
      return runToEnd(
        spawnProcess(process.execPath, [...readmeHostRun, checksumHost, digest], {
          stdio: ["ignore", "pipe", "pipe"],
          signal: AbortSignal.timeout(60_000),
        }),
      );
    }

    it("starts the echo plugin whose script has the digest", async () => {
      const { code, stdout, stderr } = await runHost(await sha256Of(echoScript));
      assert.equal(code, 0, stderr);
      assert.match(stdout, /checksum: echo answered "verified"/);
    });

    it("refuses it with another digest, exiting 1", async () => {
      const { code, stderr } = await runHost(wrong);
      assert.equal(code, 1, stderr);
      const expected = `refused: plugin echo was not started: ${echoScript} has ${await sha256Of(
        echoScript,
      )}, but the checksum expects ${wrong}`;
      assert.ok(stderr.includes(expected), stderr);
    });
  },
);

describe("a Deno host", { skip: !onDeno && "Deno permissions" }, () => {
  const fixture = fileURLToPath(new URL("./fixtures/checksum_host.ts", import.meta.url));
  function host(permissions: string[], options: Record<string, unknown>) {
    return runToEnd(
      spawnProcess(process.execPath, ["run", ...permissions, fixture, JSON.stringify(options)], {
        stdio: ["ignore", "pipe", "pipe"],
        signal: AbortSignal.timeout(60_000),
      }),
    );
  }

  it("finds a bare exe through PATH and checks it with the README's host permissions", async () => {
    using dir = tempDir();
    mkdirSync(`${dir.path}/bin`);
    writeLauncher(`${dir.path}/bin/checked-plugin`);
    const { code, stdout, stderr } = await host(readmeHostRun.slice(1), {
      dir: dir.path,
      exe: "checked-plugin",
      args: [],
      env: { PATH: `${dir.path}/bin:${process.env.PATH ?? ""}` },
      checksum: await sha256Of(`${dir.path}/bin/checked-plugin`),
    });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /echo answered "verified"/);
  });

  it("names --allow-read and the file when the host may not read it", async () => {
    using dir = tempDir();
    const { code, stderr } = await host(
      ["--allow-run", "--allow-net=127.0.0.1", "--allow-env", `--allow-read=${dir.path}`],
      {
        dir: dir.path,
        exe: testPlugin.exe,
        args: [],
        checksum: { file: testScript, digest: wrong },
      },
    );
    assert.equal(code, 1, stderr);
    assert.match(
      stderr,
      /^PluginChecksumError: plugin echo was not started: its checksum could not be verified: permission denied: run Deno with --allow-read to read /,
    );
    assert.ok(stderr.includes(testScript), stderr);
  });
});

describe("ftl-plugin run --checksum", () => {
  const cli = scriptCommand(new URL("../cli.ts", import.meta.url));

  /** Runs `ftl-plugin run --json --no-auth --dir <dir> …`; once ready, stops it. */
  async function run(dir: string, args: string[]) {
    const child = spawnProcess(
      cli.exe,
      [...cli.args, "run", "--json", "--no-auth", "--dir", dir, ...args],
      { stdio: ["ignore", "pipe", "pipe"], signal: AbortSignal.timeout(60_000) },
    );
    // process.kill, not child.kill: Deno's child_process reports the signal otherwise.
    child.stdout!.on("data", (chunk: Uint8Array) => {
      if (String(chunk).includes('"event":"ready"')) process.kill(child.pid!, "SIGTERM");
    });
    return await runToEnd(child);
  }

  it("starts the executable with the digest", async () => {
    using dir = tempDir();
    writeLauncher(`${dir.path}/plugin`);
    const { code, stdout, stderr } = await run(dir.path, [
      "--checksum",
      await sha256Of(`${dir.path}/plugin`),
      "--",
      `${dir.path}/plugin`,
    ]);
    assert.match(stdout, /"event":"ready"/, stderr);
    assert.equal(code, 0, stderr);
  });

  it("refuses another digest (exit 3) and a malformed one (exit 2), naming them", async () => {
    using dir = tempDir();
    const marker = `${dir.path}/ran`;
    writeLauncher(`${dir.path}/plugin`, marker);
    const actual = await sha256Of(`${dir.path}/plugin`);
    const refused = await run(dir.path, ["--checksum", wrong, "--", "./plugin"]);
    assert.equal(refused.code, 3, refused.stderr);
    const error = JSON.parse(refused.stdout.trim().split("\n").pop()!).error;
    assert.equal(error.code, "unavailable");
    assert.equal(
      error.message,
      `plugin plugin was not started: ${dir.path}/plugin has ${actual}, but the checksum expects ${wrong}`,
    );
    assert.ok(!existsSync(marker), "the refused plugin ran");

    const malformed = await run(dir.path, ["--checksum", "md5:abc", "--", "./plugin"]);
    assert.equal(malformed.code, 2, malformed.stderr);
    assert.match(malformed.stdout, /checksum algorithm \\"md5\\" is not supported/);
  });
});
