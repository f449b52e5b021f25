import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { readmeHostPermissions, repoRoot, runToEnd } from "./_helpers.ts";

const demoHost = fileURLToPath(new URL("../examples/echo/host.ts", import.meta.url));
const echoPlugin = fileURLToPath(new URL("../examples/echo/plugin.ts", import.meta.url));
const onDeno = "Deno" in globalThis;
const hostPermissions = readmeHostPermissions;

function deno(args: string[], env: Record<string, string> = {}) {
  return spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

describe("the README", () => {
  it("shows the buf configuration of examples/buf/ verbatim (the one test:npm runs)", () => {
    const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
    for (const file of ["buf.yaml", "buf.gen.yaml", "buf.gen.deno.yaml"]) {
      const text = readFileSync(join(repoRoot, "examples/buf", file), "utf8");
      assert.ok(readme.includes(text), `README.md lacks examples/buf/${file}:\n${text}`);
    }
  });
});

describe("the examples", { skip: !onDeno && "Deno permissions only" }, () => {
  it("runs the demo to a clean summary with the minimal host permissions", async () => {
    const { code, stdout, stderr } = await runToEnd(deno(["run", ...hostPermissions, demoHost]));
    assert.equal(code, 0, stderr);
    assert.match(stdout, /ready in [\d.]+ ms/);
    assert.match(stdout, /Echo\("world"\) → "hello, world"/);
    assert.match(stdout, /Count\(5\) streamed 1, 2, 3, 4, 5/);
    assert.match(stdout, /stopped with exit code 0/);
    assert.match(stderr, /echo: echo plugin starting/, "the plugin's log was mirrored");
  });

  it("runs the demo on a fresh machine without an error line (nothing cached yet)", async () => {
    // A clean clone (no node_modules/) and an empty DENO_DIR: on a first run Deno
    // downloads the plugin's dependencies, and those lines must not reach the screen
    // as the plugin's errors.
    const scratch = mkdtempSync(join(tmpdir(), "echo-demo-fresh-"));
    try {
      const clone = join(scratch, "repo");
      const files = execFileSync("git", ["ls-files", "-z"], { cwd: repoRoot, encoding: "utf8" })
        .split("\0").filter((file) => file !== "");
      for (const file of files) {
        mkdirSync(dirname(join(clone, file)), { recursive: true });
        cpSync(join(repoRoot, file), join(clone, file));
      }
      const child = spawn(process.execPath, ["task", "demo"], {
        cwd: clone,
        env: { ...process.env, DENO_DIR: join(scratch, "deno_dir"), NO_COLOR: "1" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      // Downloads included: more than runToEnd's default bound.
      const { code, stdout, stderr } = await runToEnd(child, { timeoutMs: 600_000 });
      assert.equal(code, 0, stderr);
      assert.match(stdout, /stopped with exit code 0/);
      const errors = `${stdout}\n${stderr}`.split("\n").filter((line) => /^\s*error\b/i.test(line));
      assert.deepEqual(errors, [], stderr);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it("names --allow-run when the host may not run the plugin", async () => {
    const allowed = hostPermissions.filter((p) => p !== "--allow-run");
    const { code, stderr } = await runToEnd(deno(["run", ...allowed, demoHost]));
    assert.notEqual(code, 0);
    assert.match(stderr, /run Deno with --allow-run/);
  });

  it("names --allow-net when the guest may not listen", async () => {
    const { code, stderr } = await runToEnd(
      deno(["run", "--allow-env", echoPlugin], { FTL_BIND: "http://127.0.0.1:0" }),
    );
    assert.equal(code, 1);
    assert.match(stderr, /run Deno with --allow-net/);
  });

  it("names --allow-env when the guest may not read its environment", async () => {
    const { code, stderr } = await runToEnd(deno(["run", "--allow-net", echoPlugin]));
    assert.notEqual(code, 0);
    assert.match(stderr, /--allow-env/);
  });
});
