/**
 * Ships a plugin as one file (docs/ONE_FILE.md tells the why and the figures):
 *
 *     deno run -A scripts/bundle_plugin.ts --runtime=deno --out DIR [ENTRY.ts]
 *     deno run -A scripts/bundle_plugin.ts --runtime=node --out DIR [ENTRY.js]
 *     deno run -A scripts/bundle_plugin.ts --runtime=sea  --out DIR [--node PATH] [ENTRY.js]
 *     deno run -A scripts/bundle_plugin.ts --probe [--rounds 20] [--node PATH]
 *
 * - `deno`: `deno bundle` of a Deno plugin (default: examples/echo/plugin.ts) into
 *   `DIR/plugin.js`, run with `deno run --allow-net=127.0.0.1 --allow-env DIR/plugin.js`.
 * - `node`: esbuild (the version `deno bundle` uses, run from npm by Deno) of a plugin
 *   compiled for Node (default: the npm build's examples/echo/plugin.js, in `NPM_OUT` or
 *   `npm/`) into `DIR/plugin.mjs`, run with `node DIR/plugin.mjs`.
 * - `sea`: the `node` bundle inside a copy of the node binary (a Node single executable
 *   application, injected with postject from npm): `DIR/plugin`, run as it is.
 * - `--probe`: builds the three forms in a temporary directory and prints, per form,
 *   the median time from our host's `spawn()` to ready, beside the unbundled plugins and
 *   bare one-line runs of each runtime measured in the same interleaved loop.
 *
 * Each build prints the path of the file it made.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
/** The esbuild `deno bundle` 2.9 embeds, so both bundles come from one bundler. */
const esbuild = "npm:esbuild@0.25.5";
const postject = "npm:postject@1.0.0-alpha.6";
/** The fuse every official node binary carries for postject to flip. */
const seaFuse = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

/** The Deno echo plugin, the default entry for `--runtime=deno`. */
export const denoEcho: string = join(root, "examples/echo/plugin.ts");

/** The npm build's compiled echo plugin, the default entry for `--runtime=node|sea`. */
export function nodeEcho(): string {
  return join(Deno.env.get("NPM_OUT") || join(root, "npm"), "examples/echo/plugin.js");
}

async function run(exe: string, args: string[], cwd?: string): Promise<void> {
  const { code, stderr } = await new Deno.Command(exe, {
    args,
    cwd,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (code !== 0) {
    throw new Error(`${basename(exe)} ${args.join(" ")} failed (${code}):\n${decode(stderr)}`);
  }
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** Runs an npm package's command under Deno, outside any project so no lockfile moves. */
function npmTool(pkg: string, args: string[]): Promise<void> {
  return run(Deno.execPath(), ["run", "-A", "--quiet", "--no-config", "--no-lock", pkg, ...args]);
}

/**
 * Bundles a Deno plugin into `out/plugin.js` with `deno bundle`; npm packages are
 * inlined, so the file runs without node_modules or a Deno cache.
 */
export async function bundleForDeno(entry: string, out: string): Promise<string> {
  const file = join(out, "plugin.js");
  // Deno finds the project's deno.json (its import map: `#runtime` here) from the working
  // directory, so bundle from the entry's own.
  const args = ["bundle", "--quiet", "--platform=deno", "-o", resolve(file), entry];
  await run(Deno.execPath(), args, dirname(entry));
  return file;
}

/**
 * Bundles a plugin compiled for Node into `out/plugin.mjs` (ESM, node: built-ins left out).
 * `sea`: for {@linkcode buildSea}, with `import.meta.url` the executable's file URL.
 */
export async function bundleForNode(entry: string, out: string, sea = false): Promise<string> {
  const file = join(out, "plugin.mjs");
  await npmTool(esbuild, [
    entry,
    "--bundle",
    "--platform=node",
    "--format=esm",
    "--target=node22",
    "--log-level=warning",
    `--outfile=${file}`,
    ...(sea ? seaMetaUrl : []),
  ]);
  return file;
}

/**
 * In a SEA, `import.meta.url` would be the loader's data: URL (Node 22, 24), which
 * `createRequire` (the runtime takes node:util through it) refuses; the executable's own
 * URL is what a plugin looking for files beside itself means anyway.
 */
const seaMetaUrl = [
  `--banner:js=import { pathToFileURL as __seaFileUrl } from "node:url";` +
  ` const __seaMetaUrl = __seaFileUrl(process.execPath).href;`,
  "--define:import.meta.url=__seaMetaUrl",
];

/**
 * The SEA's main script before Node 26, which runs only CommonJS there: a plugin's bundle
 * is ESM with top-level await (which esbuild cannot turn into CommonJS), so the bundle
 * travels as an asset and is imported as a data: URL. Node 26 refuses that import (a
 * SEA's import() reaches only built-ins) but takes an ESM main (`mainFormat`).
 */
const seaLoader = `const { getAsset } = require("node:sea");
const source = getAsset("plugin.mjs", "utf8");
import("data:text/javascript;base64," + Buffer.from(source).toString("base64")).catch((error) => {
  console.error(error);
  process.exit(1);
});
`;

/** Makes `out/plugin`: a copy of `node` carrying the plugin `entry` (compiled for Node). */
export async function buildSea(entry: string, out: string, node: string): Promise<string> {
  const file = join(out, "plugin");
  const work = await Deno.makeTempDir({ prefix: "ftl-sea-" });
  try {
    await bundleForNode(entry, work, true);
    const blob = { output: "sea.blob", disableExperimentalSEAWarning: true };
    const config = await nodeMajor(node) >= 26
      ? { ...blob, main: "plugin.mjs", mainFormat: "module" }
      : { ...blob, main: "main.cjs", assets: { "plugin.mjs": "plugin.mjs" } };
    await Deno.writeTextFile(join(work, "main.cjs"), seaLoader);
    await Deno.writeTextFile(join(work, "sea.json"), JSON.stringify(config));
    await run(node, ["--experimental-sea-config", "sea.json"], work);
    await Deno.copyFile(await Deno.realPath(await which(node)), file);
    await Deno.chmod(file, 0o755);
    await npmTool(postject, [
      file,
      "NODE_SEA_BLOB",
      join(work, "sea.blob"),
      "--sentinel-fuse",
      seaFuse,
    ]);
    return file;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

async function nodeMajor(node: string): Promise<number> {
  const { stdout } = await new Deno.Command(node, { args: ["--version"], stdout: "piped" })
    .output();
  return Number(/^v(\d+)/.exec(decode(stdout))?.[1] ?? 0);
}

/** `exe` as a path: itself when it has a slash, else the first match on PATH. */
async function which(exe: string): Promise<string> {
  if (exe.includes("/")) return exe;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    const path = join(dir, exe);
    if (await Deno.stat(path).then((info) => info.isFile, () => false)) return path;
  }
  throw new Error(`${exe} is not on PATH`);
}

/** The command line; no top-level await, so bundle_probe.ts can import this module back. */
async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      runtime: { type: "string" },
      out: { type: "string" },
      node: { type: "string", default: "node" },
      probe: { type: "boolean", default: false },
      rounds: { type: "string", default: "20" },
    },
  });
  if (values.probe) {
    const { probe } = await import("./bundle_probe.ts");
    return await probe({ rounds: Number(values.rounds), node: values.node });
  }
  const { runtime, out } = values;
  if (!out || !["deno", "node", "sea"].includes(runtime ?? "")) {
    console.error(
      "usage: bundle_plugin.ts --runtime=deno|node|sea --out DIR [--node PATH] [ENTRY]",
    );
    Deno.exit(2);
  }
  await Deno.mkdir(out, { recursive: true });
  const entry = positionals[0] ? resolve(positionals[0]) : undefined;
  if (runtime === "deno") return console.log(await bundleForDeno(entry ?? denoEcho, out));
  if (runtime === "node") return console.log(await bundleForNode(entry ?? nodeEcho(), out));
  console.log(await buildSea(entry ?? nodeEcho(), out, values.node));
}

if (import.meta.main) {
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  });
}
