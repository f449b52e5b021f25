/**
 * Runs the npm build's compiled test suite (what test:npm runs under `node --test`) under
 * Bun, whose `bun test` runs node:test's `describe`/`it` files as they are. Run
 * `deno task build:npm` first.
 *
 *     deno task test:bun
 *
 * Bun comes from npm, as a fresh clone with only Node and npm can get it: `bun@<version>`
 * is installed once into a cache directory (`$XDG_CACHE_HOME/ftl-ts-plugin`, else
 * `~/.cache/ftl-ts-plugin`) and reused. `BUN_BIN` names a Bun to use instead. Under
 * Bun every guest and host a test starts as "the Node one" is Bun too (they run on the
 * test's own executable), so this also covers Bun hosts spawning Bun guests. Then
 * tests/interop/bun_test.ts runs from a Deno host and a Node host too, with Bun guests.
 * Last, the README's Bun lines as a user meets them: the build packed and `bun add`ed
 * into test:npm's consumer project (scripts/consumer.ts), whose host and guest both run
 * on Bun, and the CLI run by `bun` from node_modules (`--help`, `--version`, `run --json`
 * of that guest, `call` and `ping` at its URL with its token).
 *
 * `NPM_OUT` names the build to check, as for build:npm (default `npm/`).
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { consumerHostPrints, writeConsumerProject } from "./consumer.ts";

/** The Bun the suite is checked on. */
export const bunVersion = "1.4.5";

const root = fileURLToPath(new URL("..", import.meta.url));
const npmDir = Deno.env.get("NPM_OUT") || join(root, "npm");
/**
 * Files run at once, each in its own `bun test` process, as `node --test` runs them in
 * test:npm: one process for all let a file's memory count against the next's limits
 * (the log bomb's RSS bound, say).
 */
const concurrency = 2;
/**
 * Per test. `bun test` gives each test 5 s unless told, and some of the suite's cases
 * (100 plugins stopped one after the other, say) take longer on a busy machine; node:test,
 * which the suite was written for, has no such limit.
 */
const perTestMs = 120_000;

/** How long one test file (under bun test, deno test or node --test) may run before it is killed. */
const perFileMs = 600_000;

/** The cache directory this script installs Bun into. */
function cacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  return join(base, "ftl-ts-plugin", `bun-${bunVersion}`);
}

async function output(cmd: string, args: string[], cwd?: string): Promise<Deno.CommandOutput> {
  return await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
}

async function bunAt(path: string): Promise<string | undefined> {
  try {
    const result = await output(path, ["--version"]);
    return result.success ? new TextDecoder().decode(result.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The Bun executable: `BUN_BIN`, else the cached install, else a fresh one from npm,
 * made in a private directory and moved into place whole (another run may be installing
 * beside this one: the first rename wins, the other's install is dropped).
 */
export async function bunExecutable(): Promise<string> {
  const given = Deno.env.get("BUN_BIN");
  if (given) {
    if (!(await bunAt(given))) throw new Error(`BUN_BIN=${given} does not run as bun`);
    return given;
  }
  const dir = cacheDir();
  const bun = join(dir, "node_modules", "bun", "bin", "bun.exe");
  if ((await bunAt(bun)) === bunVersion) return bun;
  const parent = join(dir, "..");
  await Deno.mkdir(parent, { recursive: true });
  const staging = await Deno.makeTempDir({ dir: parent, prefix: `.bun-${bunVersion}-` });
  try {
    console.log(`# installing bun@${bunVersion} from npm into ${dir}`);
    const args = ["install", "--no-save", "--no-audit", "--no-fund", "--prefix", staging];
    const installed = await output("npm", [...args, `bun@${bunVersion}`], staging);
    if (!installed.success) {
      throw new Error(
        `npm install bun@${bunVersion} failed:\n${new TextDecoder().decode(installed.stderr)}`,
      );
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.rename(staging, dir).catch(async (error) => {
      // Another run put its install in place first: use that one.
      if ((await bunAt(bun)) !== bunVersion) throw error;
    });
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
  const version = await bunAt(bun);
  if (version !== bunVersion) throw new Error(`${bun} says ${version}, not ${bunVersion}`);
  return bun;
}

/** The compiled test files, as test:npm finds them. */
async function testFiles(): Promise<string[]> {
  const files: string[] = [];
  for (const folder of ["tests", "tests/interop", "tests/faults"]) {
    for await (const entry of Deno.readDir(join(npmDir, folder))) {
      // `./`: bun test takes a bare name as a filter, not a path.
      if (entry.name.endsWith("_test.js")) files.push(`./${folder}/${entry.name}`);
    }
  }
  return files.sort();
}

/** What one file's `bun test` said. */
interface FileResult {
  file: string;
  ok: boolean;
  passed: number;
  skipped: number;
  failed: number;
  /** Its output; when it passed, only what is worth reading: skips and totals. */
  text: string;
}

/** Runs `bun test` on one file. */
async function runFile(bun: string, file: string): Promise<FileResult> {
  const result = await new Deno.Command(bun, {
    args: ["test", `--timeout=${perTestMs}`, file],
    cwd: npmDir,
    // The suite starts Deno guests (and bundles with Deno) under Bun as it does under Node.
    env: { DENO_BIN: Deno.execPath() },
    stdout: "piped",
    stderr: "piped",
    // bun test bounds each test, not a file that hangs between them.
    signal: AbortSignal.timeout(perFileMs),
  }).output();
  const text = new TextDecoder().decode(result.stdout) + new TextDecoder().decode(result.stderr);
  const count = (what: string) =>
    Number(new RegExp(`^ *(\\d+) ${what}$`, "m").exec(text)?.[1] ?? 0);
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  return {
    file,
    ok: result.success,
    passed: count("pass"),
    skipped: count("skip"),
    failed: count("fail"),
    // bun test lists the skipped again at the end.
    text: (result.success ? [...new Set(lines.filter((l) => l.startsWith("(skip)")))] : lines)
      .join("\n"),
  };
}

/**
 * `node` when it is 22 or later (the package's oldest), else npm's node 22 through npx,
 * as test:npm finds its Nodes.
 */
async function nodeCommand(): Promise<[string, string[]]> {
  const installed = await output("node", ["--version"]).catch(() => undefined);
  const major = Number(/^v(\d+)\./.exec(new TextDecoder().decode(installed?.stdout))?.[1] ?? 0);
  return major >= 22 ? ["node", []] : ["npx", ["-y", "-p", "node@22", "node"]];
}

/**
 * tests/interop/bun_test.ts from a Deno host and a Node host (the Bun host is in the
 * suite), given this Bun; they skip themselves under `deno test` and `node --test` when
 * they find none.
 */
async function runOtherHosts(bun: string): Promise<boolean> {
  const [node, nodePrefix] = await nodeCommand();
  const hosts: [string, string, string[], string][] = [
    ["deno", Deno.execPath(), ["test", "-A", "tests/interop/bun_test.ts"], root],
    ["node", node, [...nodePrefix, "--test", "tests/interop/bun_test.js"], npmDir],
  ];
  let ok = true;
  for (const [name, cmd, args, cwd] of hosts) {
    const result = await new Deno.Command(cmd, {
      args,
      cwd,
      env: { BUN_BIN: bun, DENO_BIN: Deno.execPath() },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(perFileMs),
    }).output();
    const text = new TextDecoder().decode(result.stdout) +
      new TextDecoder().decode(result.stderr);
    console.log(`${result.success ? "ok  " : "FAIL"} tests/interop/bun_test on a ${name} host`);
    if (!result.success) console.log(text);
    ok &&= result.success;
  }
  return ok;
}

/** How long each step of the consumer check may take before it is killed. */
const consumerStepMs = 60_000;

/** What one command of the consumer check did. */
interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function runIn(cwd: string, cmd: string, args: string[]): Promise<Ran> {
  const result = await new Deno.Command(cmd, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(consumerStepMs),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
  };
}

/** `ran`, or an error quoting it when its exit code is not `code`. */
function expectExit(ran: Ran, code: number, what: string): Ran {
  if (ran.code !== code) {
    throw new Error(`${what}: exit ${ran.code}, not ${code}\n${ran.stdout}${ran.stderr}`);
  }
  return ran;
}

/**
 * The README's `ftl-plugin run --json` under Bun, with the consumer's guest run by Bun:
 * reads its ready event, calls and pings the guest at its URL with the token (and once
 * without, refused), then stops it with SIGINT as Ctrl-C would, and expects the guest's
 * exit 0. Everything it starts is killed by its deadline at the latest, and reaped.
 */
async function runCliRun(bun: string, cli: string, project: string): Promise<void> {
  const run = new Deno.Command(bun, {
    args: [cli, "run", "--json", "--", bun, "guest.mjs"],
    cwd: project,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(consumerStepMs),
  }).spawn();
  const stderr = new Response(run.stderr).text();
  const lines = run.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  let finished = false;
  let guestPid: number | undefined;
  const nextLine = async (): Promise<string> => {
    while (!stdout.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`run --json ended early:\n${stdout}${await stderr}`);
      stdout += value;
    }
    const line = stdout.slice(0, stdout.indexOf("\n"));
    stdout = stdout.slice(line.length + 1);
    return line;
  };
  try {
    const ready = JSON.parse(await nextLine());
    if (ready.event !== "ready" || typeof ready.token !== "string") {
      throw new Error(`run --json: not a ready event with a token: ${JSON.stringify(ready)}`);
    }
    guestPid = ready.pid;
    const token = ["--token", ready.token];
    const echo = ["echo.v1.EchoService/Echo", '{"message":"bun cli"}'];
    const called = expectExit(
      await runIn(project, bun, [cli, "call", "--json", ...token, ready.endpoint, ...echo]),
      0,
      "call",
    );
    if (called.stdout.trim() !== '{"message":"hello from bun cli"}') {
      throw new Error(`call answered ${called.stdout}`);
    }
    const pinged = expectExit(
      await runIn(project, bun, [cli, "ping", "--json", ...token, ready.endpoint]),
      0,
      "ping",
    );
    if (JSON.parse(pinged.stdout).ready !== true) throw new Error(`ping said ${pinged.stdout}`);
    // The token is what guards it: the same call without it is refused (exit 1).
    const refused = expectExit(
      await runIn(project, bun, [cli, "call", "--json", ready.endpoint, ...echo]),
      1,
      "call without the token",
    );
    if (JSON.parse(refused.stdout).error?.code !== "unauthenticated") {
      throw new Error(`call without the token said ${refused.stdout}`);
    }
    run.kill("SIGINT");
    const stopped = JSON.parse(await nextLine());
    const status = await run.status;
    finished = true;
    if (stopped.event !== "stopped" || stopped.code !== 0 || status.code !== 0) {
      throw new Error(
        `run after SIGINT: ${JSON.stringify(stopped)}, exit ${status.code}\n${await stderr}`,
      );
    }
  } finally {
    if (!finished) {
      // Ctrl-C lets run stop its guest; SIGKILL, and the guest's too, if it does not end.
      const send = (pid: number | undefined, signal: Deno.Signal) => {
        try {
          if (pid !== undefined) Deno.kill(pid, signal);
        } catch {
          // It has exited already.
        }
      };
      send(run.pid, "SIGINT");
      let killed = false;
      const timer = setTimeout(() => {
        killed = true;
        send(run.pid, "SIGKILL");
      }, 10_000);
      await run.status;
      clearTimeout(timer);
      if (killed) send(guestPid, "SIGKILL");
    }
    await lines.cancel().catch(() => {});
    await stderr.catch(() => {});
  }
}

/**
 * The README's Bun install and CLI lines, as a Bun user meets them: the npm build packed,
 * `bun add <tarball>` in a fresh ESM project (test:npm's consumer project), `bun host.mjs`
 * spawning `bun guest.mjs` over gRPC and Connect; then the CLI as
 * `bun node_modules/@ftl-ts/plugin/cli.js` (the bin's shebang names node): `--help`,
 * `--version`, an unknown command (exit 2), and `run --json` with `call` and `ping`.
 */
export async function consumerOnBun(bun: string): Promise<boolean> {
  const started = Date.now();
  const packDir = await Deno.makeTempDir({ prefix: "ftl-plugin-bun-consumer-" });
  try {
    const packed = expectExit(
      await runIn(npmDir, "npm", ["pack", "--pack-destination", packDir, "--silent"]),
      0,
      "npm pack",
    );
    const tarball = join(packDir, packed.stdout.trim().split("\n").pop()!);
    const project = join(packDir, "consumer");
    await writeConsumerProject(project, npmDir);
    expectExit(await runIn(project, bun, ["add", tarball]), 0, `bun add ${tarball}`);
    const hosted = expectExit(await runIn(project, bun, ["host.mjs"]), 0, "bun host.mjs");
    for (const expected of consumerHostPrints) {
      if (!hosted.stdout.includes(expected)) {
        throw new Error(`bun host.mjs did not print "${expected}":\n${hosted.stdout}`);
      }
    }
    console.log(
      `ok   consumer: bun add <tarball>; bun host.mjs → bun guest.mjs over gRPC, Connect`,
    );

    const cli = join(project, "node_modules/@ftl-ts/plugin/cli.js");
    const shebang = (await Deno.readTextFile(cli)).split("\n", 1)[0];
    if (!/^#!.*\bnode$/.test(shebang)) throw new Error(`cli.js's shebang is ${shebang}`);
    const help = expectExit(await runIn(project, bun, [cli, "--help"]), 0, "--help");
    if (!help.stdout.includes("ftl-plugin run")) throw new Error(`--help said ${help.stdout}`);
    const { version } = JSON.parse(await Deno.readTextFile(join(npmDir, "package.json")));
    const said = expectExit(await runIn(project, bun, [cli, "--version"]), 0, "--version");
    if (said.stdout.trim() !== `ftl-plugin ${version}`) {
      throw new Error(`--version said ${said.stdout}`);
    }
    expectExit(await runIn(project, bun, [cli, "frobnicate"]), 2, "an unknown command");
    await runCliRun(bun, cli, project);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `ok   consumer: bun node_modules/@ftl-ts/plugin/cli.js --help, --version, run --json, ` +
        `call, ping (${seconds} s)`,
    );
    return true;
  } catch (error) {
    console.log(`FAIL consumer project on bun: ${error instanceof Error ? error.stack : error}`);
    return false;
  } finally {
    await Deno.remove(packDir, { recursive: true });
  }
}

if (import.meta.main) {
  try {
    await Deno.stat(join(npmDir, "tests"));
  } catch {
    console.error(`${npmDir}/tests is missing: run deno task build:npm first`);
    Deno.exit(2);
  }
  const bun = await bunExecutable();
  const files = await testFiles();
  console.log(`# bun ${bunVersion}: bun test, ${files.length} files, ${concurrency} at a time`);
  const started = Date.now();
  const queue = [...files];
  const results: FileResult[] = [];
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let file = queue.shift(); file; file = queue.shift()) {
      const result = await runFile(bun, file);
      results.push(result);
      const mark = result.ok ? "ok  " : "FAIL";
      console.log(`${mark} ${file}: ${result.passed} passed, ${result.skipped} skipped`);
      if (result.text) console.log(result.text.replace(/^/gm, "     "));
    }
  }));
  const otherHosts = await runOtherHosts(bun);
  const consumer = await consumerOnBun(bun);
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  const sum = (key: "passed" | "skipped" | "failed") =>
    results.reduce((total, result) => total + result[key], 0);
  const failedFiles = results.filter((result) => !result.ok).map((result) => result.file);
  console.log(
    `\nbun ${bunVersion}: ${sum("passed")} passed, ${sum("skipped")} skipped, ` +
      `${sum("failed")} failed in ${seconds} s`,
  );
  if (!otherHosts) failedFiles.push("tests/interop/bun_test on a Deno or Node host");
  if (!consumer) failedFiles.push("the consumer project on bun");
  if (failedFiles.length > 0) {
    console.error(`failed: ${failedFiles.join(", ")}`);
    Deno.exit(1);
  }
}
