/**
 * The echo plugin shipped as one file (scripts/bundle_plugin.ts, docs/ONE_FILE.md):
 * a `deno bundle` for Deno, an esbuild bundle for Node and a Node single executable
 * application, each spawned by our host, called and stopped. The bundlers come from
 * npm through Deno, so this needs deno (DENO_BIN under Node, as test:npm sets it).
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn as spawnProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Logger, LogLevel, spawn } from "../host.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import {
  collect,
  onDeno,
  readmeGuestPermissions,
  repoRoot,
  runToEnd,
  tempDir,
} from "./_helpers.ts";
import { onBun } from "./_bun.ts";

const script = join(repoRoot, "scripts/bundle_plugin.ts");
const deno = onDeno ? process.execPath : process.env.DENO_BIN;
/** The Node echo plugin: the npm build's (the one running these tests, on Node). */
const nodeEcho = onDeno
  ? join(repoRoot, "npm/examples/echo/plugin.js")
  : fileURLToPath(new URL("../examples/echo/plugin.js", import.meta.url));
/** The node that runs the Node forms: this process on Node, `node` on PATH under Deno. */
const node = onDeno ? "node" : process.execPath;

const missing = !deno
  ? "needs deno to bundle: set DENO_BIN (deno task test:npm does)"
  : !existsSync(script)
  ? `needs ${script} (a checkout beside the npm build)`
  : undefined;
const noNodeBuild = existsSync(nodeEcho) ? undefined : `needs ${nodeEcho}: deno task build:npm`;

/** Runs bundle_plugin.ts; resolves to the file it made. */
async function bundle(args: string[]): Promise<string> {
  const child = spawnProcess(deno!, ["run", "-A", script, ...args], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const { code, stdout, stderr } = await runToEnd(child);
  assert.equal(code, 0, stderr);
  const file = stdout.trim();
  assert.ok(existsSync(file), `bundle_plugin.ts printed ${file}`);
  return file;
}

/** Spawns one form with our host, calls Ping, Echo and Count, and stops it cleanly. */
async function callAndStop(dir: string, exe: string, args: string[]): Promise<void> {
  const errors: string[] = [];
  const logger = new Logger({ level: LogLevel.Warn, write: (line) => errors.push(line) });
  const plugin = await spawn({
    name: "echo",
    dir,
    exe,
    args,
    env: { ECHO_GREETING: "hi," },
    service: EchoService,
    logger,
  });
  try {
    assert.equal((await plugin.client.ping({})).$typeName, "xyz.block.ftl.v1.PingResponse");
    assert.equal((await plugin.client.echo({ message: "one file" })).message, "hi, one file");
    const counted = await collect(plugin.client.count({ count: 3 }), (r) => r.number);
    assert.deepEqual(counted, [1, 2, 3]);
  } finally {
    const exit = await plugin.stop();
    assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}:\n${errors.join("\n")}`);
  }
  assert.deepEqual(errors, []);
}

describe("a plugin shipped as one file", { skip: missing }, () => {
  it("runs from a deno bundle with the guest's permissions, nothing else beside it", async () => {
    using out = tempDir();
    const file = await bundle(["--runtime=deno", "--out", out.path]);
    // Run from the temporary directory: no deno.json, no node_modules to lean on.
    await callAndStop(out.path, deno!, ["run", ...readmeGuestPermissions, "--no-config", file]);
  });

  it("runs from an esbuild bundle on node", { skip: noNodeBuild }, async () => {
    using out = tempDir();
    const file = await bundle(["--runtime=node", "--out", out.path, nodeEcho]);
    await callAndStop(out.path, node, [file]);
  });

  it("runs as a node single executable application", {
    skip: noNodeBuild ??
      ((onDeno && "checked under node by test:npm (this node is its own base)") ||
        (onBun && "a Node SEA needs node as its base (Bun has bun build --compile instead)")),
  }, async () => {
    using out = tempDir();
    const file = await bundle(["--runtime=sea", "--out", out.path, "--node", node, nodeEcho]);
    await callAndStop(out.path, file, []);
  });
});
