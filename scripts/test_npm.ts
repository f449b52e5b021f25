/**
 * Checks the npm build in `npm/` (run `deno task build:npm` first), as a Node user
 * would meet it:
 *
 * 1. the compiled test suite under `node --test` on Node 22, 24 and 26 (npm's `node`
 *    package, unless the installed `node` is that version);
 * 2. `npm pack`, then `publint` and `@arethetypeswrong/cli` on the tarball;
 * 3. a consumer project on the oldest supported Node: the tarball installed with
 *    `--engine-strict` into a fresh directory, where a plain `.mjs` host spawns a plain
 *    `.mjs` guest and calls it over gRPC and Connect; and the user's own .proto,
 *    importing the package's `xyz/block/ftl/v1/ftl.proto`, generated with
 *    examples/buf/ (the README's buf.yaml and buf.gen.yaml) and served.
 *
 *     deno task test:npm
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { consumerHostPrints, writeConsumerProject } from "./consumer.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const npmDir = join(root, "npm");
const nodeVersions = ["22", "24", "26"];
/** The consumer project runs on the oldest. */
const consumerNode = nodeVersions[0];

const userProto = `syntax = "proto3";

package kv.v1;

import "xyz/block/ftl/v1/ftl.proto";

message GetRequest {
  string key = 1;
}

message GetResponse {
  string value = 1;
}

service KVService {
  rpc Ping(xyz.block.ftl.v1.PingRequest) returns (xyz.block.ftl.v1.PingResponse);
  rpc Get(GetRequest) returns (GetResponse);
}
`;

const kvGuest = `// A plugin whose service buf generated from the user's own proto.
import { create } from "@bufbuild/protobuf";
import { start } from "@ftl-ts/plugin/guest";
import { PingResponseSchema } from "@ftl-ts/plugin/ping";
import { KVService } from "./gen/kv/v1/kv_pb.js";

await start({
  name: "kv",
  service: KVService,
  create: () => ({
    ping: () => create(PingResponseSchema, {}),
    get: (request) => ({ value: "value of " + request.key }),
  }),
});
`;

const kvHost = `import process from "node:process";
import { spawn } from "@ftl-ts/plugin/host";
import { KVService } from "./gen/kv/v1/kv_pb.js";

const plugin = await spawn({
  name: "kv",
  dir: process.cwd(),
  exe: process.execPath,
  args: ["kv_guest.mjs"],
  service: KVService,
});
try {
  const { value } = await plugin.client.get({ key: "k" });
  console.log("kv: " + value);
} finally {
  await plugin.stop();
}
`;

/** How long one command may run before it is killed. */
const commandMs = 30 * 60_000;
/** How long one test may run under node --test (which has no bound of its own). */
const perTestMs = 300_000;

async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; capture?: boolean } = {},
): Promise<string> {
  const output = await new Deno.Command(cmd, {
    args,
    cwd: options.cwd ?? npmDir,
    // The interop tests start Deno guests from Node.
    env: { DENO_BIN: Deno.execPath() },
    stdout: options.capture ? "piped" : "inherit",
    stderr: "inherit",
    // No step may hang the task: the longest, a whole node --test run, takes minutes.
    signal: AbortSignal.timeout(commandMs),
  }).output();
  if (!output.success) throw new Error(`${cmd} ${args.join(" ")} failed (${output.code})`);
  return options.capture ? new TextDecoder().decode(output.stdout) : "";
}

/** `node` itself for the installed major version, else npm's `node` package via npx. */
async function nodeCommand(major: string): Promise<[string, string[]]> {
  const installed = (await run("node", ["--version"], { capture: true })).trim();
  return installed.startsWith(`v${major}.`)
    ? ["node", []]
    : ["npx", ["-y", "-p", `node@${major}`, "node"]];
}

// 1. The suite on every supported Node (file by file: Node 20 takes no globs).
const testFiles: string[] = [];
for (const folder of ["tests", "tests/interop", "tests/faults"]) {
  for await (const entry of Deno.readDir(join(npmDir, folder))) {
    if (entry.name.endsWith("_test.js")) testFiles.push(`${folder}/${entry.name}`);
  }
}
testFiles.sort();
const totals = { passed: 0, failed: 0 };
const tapDir = await Deno.makeTempDir({ prefix: "ftl-plugin-tap-" });
for (const major of nodeVersions) {
  const [cmd, prefix] = await nodeCommand(major);
  console.log(`\n# node ${major}: node --test (${testFiles.length} files)`);
  const tap = join(tapDir, `node${major}.tap`);
  const reporters = [
    "--test-reporter=dot",
    "--test-reporter-destination=stdout",
    "--test-reporter=tap",
    `--test-reporter-destination=${tap}`,
  ];
  try {
    // Two files at a time (Node's default on two cores is one): 71 s instead of 130 s for
    // one Node here, which keeps the three runs inside CI's time.
    await run(cmd, [
      ...prefix,
      "--test",
      "--test-concurrency=2",
      `--test-timeout=${perTestMs}`,
      ...reporters,
      ...testFiles,
    ]);
  } finally {
    const text = await Deno.readTextFile(tap).catch(() => "");
    const count = (what: string) =>
      Number(new RegExp(`^# ${what} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    totals.passed += count("pass");
    totals.failed += count("fail");
    console.log(`node ${major}: ${count("pass")} passed, ${count("fail")} failed`);
  }
}
await Deno.remove(tapDir, { recursive: true });

// 2. The tarball, as npm would publish it.
const packDir = await Deno.makeTempDir({ prefix: "ftl-plugin-pack-" });
try {
  const tarball = join(
    packDir,
    (await run("npm", ["pack", "--pack-destination", packDir, "--silent"], {
      capture: true,
    })).trim().split("\n").pop()!,
  );
  console.log(`\n# publint ${tarball}`);
  await run("npx", ["-y", "publint@0.3", "run", "--strict", tarball]);
  console.log(`\n# attw ${tarball}`);
  await run("npx", ["-y", "@arethetypeswrong/cli@0.18", "--profile", "esm-only", tarball]);

  // 3. A consumer: install the tarball, run a plain-JavaScript host and guest.
  const project = join(packDir, "consumer");
  await Deno.mkdir(join(project, "gen"), { recursive: true });
  // Source maps name src/*.ts, which is not shipped: each must carry its sources.
  const unpacked = join(packDir, "unpacked");
  await Deno.mkdir(unpacked);
  await run("tar", ["-xzf", tarball, "-C", unpacked]);
  let maps = 0;
  for await (const entry of Deno.readDir(join(unpacked, "package"))) {
    if (!entry.name.endsWith(".js.map")) continue;
    const map = JSON.parse(await Deno.readTextFile(join(unpacked, "package", entry.name)));
    if (!map.sourcesContent?.every((text: unknown) => typeof text === "string")) {
      throw new Error(`${entry.name} in the tarball does not carry its sources`);
    }
    maps++;
  }
  if (maps === 0) throw new Error("the tarball has no source maps at its top level");
  await writeConsumerProject(project, npmDir);
  console.log(`\n# consumer project in ${project}`);
  // npm and node of the oldest supported Node: --engine-strict fails on any EBADENGINE.
  const [consumerCmd] = await nodeCommand(consumerNode);
  const onConsumerNode = (line: string, capture = false) =>
    consumerCmd === "node"
      ? run("sh", ["-c", line], { cwd: project, capture })
      : run("npx", ["-y", "-p", `node@${consumerNode}`, "sh", "-c", line], {
        cwd: project,
        capture,
      });
  await onConsumerNode(
    `npm install --engine-strict --no-audit --no-fund --loglevel=error ${tarball} ` +
      // The generators `deno task gen` uses.
      "@bufbuild/buf@1.75.0 @bufbuild/protoc-gen-es@2.17.0",
  );
  const out = await onConsumerNode("node host.mjs", true);
  console.log(out.trimEnd());
  for (const expected of consumerHostPrints) {
    if (!out.includes(expected)) throw new Error(`consumer host did not print "${expected}"`);
  }
  // The user's own proto, importing the Ping proto the package ships, generated with
  // the README's buf.yaml and buf.gen.yaml.
  await Deno.mkdir(join(project, "proto/kv/v1"), { recursive: true });
  await Deno.writeTextFile(join(project, "proto/kv/v1/kv.proto"), userProto);
  for (const file of ["buf.yaml", "buf.gen.yaml"]) {
    await Deno.copyFile(join(root, "examples/buf", file), join(project, file));
  }
  // The echo example's gen/ already holds the Ping messages: remove them, so only
  // buf.gen.yaml's include_imports can bring them back for kv_pb.js to import.
  await Deno.remove(join(project, "gen/xyz"), { recursive: true }).catch(() => {});
  await onConsumerNode("npx buf generate");
  await Deno.stat(join(project, "gen/xyz/block/ftl/v1/ftl_pb.js"));
  await Deno.writeTextFile(join(project, "kv_guest.mjs"), kvGuest);
  await Deno.writeTextFile(join(project, "kv_host.mjs"), kvHost);
  const kv = await onConsumerNode("node kv_host.mjs", true);
  console.log(kv.trimEnd());
  if (!kv.includes("kv: value of k")) throw new Error("the buf-generated plugin did not answer");
  // The CLI, as npm links it: node_modules/.bin/ftl-plugin, calling the consumer's guest.
  const bin = join(project, "node_modules/.bin/ftl-plugin");
  const guest = join(project, "guest.sh");
  await Deno.writeTextFile(guest, `#!/bin/sh\nexec node ${join(project, "guest.mjs")} "$@"\n`);
  await Deno.chmod(guest, 0o755);
  const called = await onConsumerNode(
    `${bin} call --json ${guest} echo.v1.EchoService/Echo '{"message":"bin"}'`,
    true,
  );
  console.log(`ftl-plugin call: ${called.trim()}`);
  if (!called.includes('{"message":"hello from bin"}')) {
    throw new Error("the ftl-plugin bin did not answer");
  }
} finally {
  await Deno.remove(packDir, { recursive: true });
}
console.log(
  `\nnpm build checks passed: publint, attw, consumer project (Node ${consumerNode}, ` +
    "--engine-strict, buf-generated proto), ftl-plugin bin",
);
console.log(`node: ${totals.passed} passed, ${totals.failed} failed`);
