/**
 * Builds the npm package in `npm/`, doing by hand what dnt would (dnt lives on JSR,
 * which no machine here reaches):
 *
 * 1. stage the sources in `npm/src/` as they are;
 * 2. write `npm/package.json` from deno.json (dependencies at the versions it pins), with
 *    `#runtime` mapped to the Node runtime in its `imports` (deno.json's `imports` maps it
 *    to the Deno one, so no source names a runtime);
 * 3. `npm install`, then compile with tsc from npm (`rewriteRelativeImportExtensions`)
 *    to ESM, `.d.ts` and source maps in `npm/`;
 * 4. copy README.md, LICENSE and the Ping proto.
 *
 * The tests, examples and fixtures are compiled too (to `npm/tests/`, …) so that
 * `node --test` runs the same suite; `files` keeps them out of the package.
 *
 *     deno task build:npm
 *     NPM_OUT=/tmp/npm-mine deno task build:npm   # a private build elsewhere
 *
 * @module
 */
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
// NPM_OUT builds elsewhere (for several builds side by side); `npm/` by default.
const out = Deno.env.get("NPM_OUT") || join(root, "npm");
const src = join(out, "src");

/** Library sources shipped in the package. */
const library = ["mod.ts", "host.ts", "guest.ts", "cli.ts", "cli", "ping.ts", "internal", "gen"];
/** Shipped as they are: the Ping proto, for users' own protos to import. */
const protos = ["proto/xyz/block/ftl/v1/ftl.proto"];
/** Compiled for the Node test run, never shipped. */
const testOnly = [
  "tests",
  "examples/echo/echo.ts",
  "examples/echo/plugin.ts",
  "examples/host_services/plugin.ts",
  "examples/attach/host.ts",
];
/** Deno-only files: the Deno runtime adapter's and a test comparing it with Node's. */
const skip = (rel: string) =>
  /^internal\/runtime\/deno(_[a-z0-9_]+)?\.ts$/.test(rel) || rel === "tests/runtime_seam_test.ts";

/** The npm packages the library imports at run time. */
const runtimeDependencies = [
  "@bufbuild/protobuf",
  "@connectrpc/connect",
  "@connectrpc/connect-node",
];
/** What the compiled tests need besides. */
const devDependencies: Record<string, string> = {
  "@bufbuild/buf": "1.75.0",
  "@types/node": "^22.0.0",
  "typescript": "~5.9.3",
};

interface DenoConfig {
  name: string;
  version: string;
  description: string;
  license: string;
  imports: Record<string, string>;
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const status = await new Deno.Command(cmd, { args, cwd, stdout: "inherit", stderr: "inherit" })
    .spawn().status;
  if (!status.success) throw new Error(`${cmd} ${args.join(" ")} failed (${status.code})`);
}

async function* walk(path: string): AsyncGenerator<string> {
  const info = await Deno.stat(path);
  if (info.isFile) {
    yield path;
    return;
  }
  for await (const entry of Deno.readDir(path)) yield* walk(join(path, entry.name));
}

/** Copies a .ts file into the staging tree. */
async function stage(path: string): Promise<void> {
  const rel = relative(root, path);
  if (skip(rel) || !rel.endsWith(".ts")) return;
  await Deno.mkdir(dirname(join(src, rel)), { recursive: true });
  await Deno.copyFile(path, join(src, rel));
}

/** `npm:@scope/name@^1.2.3` → `^1.2.3`. */
function versionOf(config: DenoConfig, name: string): string {
  const specifier = config.imports[name];
  const match = specifier && /^npm:(?:@[^/]+\/)?[^@]+@(.+)$/.exec(specifier);
  if (!match) throw new Error(`deno.json imports no npm version of ${name}`);
  return match[1];
}

const config: DenoConfig = JSON.parse(await Deno.readTextFile(join(root, "deno.json")));
await Deno.remove(out, { recursive: true }).catch(() => {});
for (const entry of [...library, ...testOnly]) {
  for await (const path of walk(join(root, entry))) await stage(path);
}

const entry = (name: string) => ({ types: `./${name}.d.ts`, default: `./${name}.js` });
const packageJson = {
  name: config.name,
  version: config.version,
  description: config.description,
  license: config.license,
  repository: { type: "git", url: "git+https://github.com/ftl-ts/plugin.git" },
  type: "module",
  sideEffects: false,
  // @connectrpc/connect-node declares node >= 22 (and Node 20 reached its end of life).
  engines: { node: ">=22" },
  exports: {
    ".": entry("mod"),
    "./host": entry("host"),
    "./guest": entry("guest"),
    "./cli": entry("cli"),
    "./ping": entry("ping"),
  },
  // The one place the runtime is chosen (deno.json maps `#runtime` for Deno), and the
  // manifest internal/version.ts reads the version from (deno.json's under Deno).
  imports: {
    "#runtime": {
      types: "./internal/runtime/node.d.ts",
      default: "./internal/runtime/node.js",
    },
    "#package": "./package.json",
  },
  bin: { "ftl-plugin": "./cli.js" },
  files: [
    "mod.*",
    "host.*",
    "guest.*",
    "cli.*",
    "cli/",
    "ping.*",
    "proto/",
    "internal/",
    "gen/",
    "!**/*.tsbuildinfo",
    "README.md",
    "LICENSE",
  ],
  dependencies: Object.fromEntries(runtimeDependencies.map((n) => [n, versionOf(config, n)])),
  devDependencies: {
    ...devDependencies,
    "@connectrpc/connect-web": versionOf(config, "@connectrpc/connect-web"),
    "@grpc/grpc-js": versionOf(config, "@grpc/grpc-js"),
    "grpc-health-check": versionOf(config, "grpc-health-check"),
  },
};
await Deno.writeTextFile(join(out, "package.json"), JSON.stringify(packageJson, null, 2) + "\n");

const tsconfig = {
  compilerOptions: {
    target: "es2022",
    module: "nodenext",
    moduleResolution: "nodenext",
    lib: ["es2023", "esnext.disposable"],
    types: ["node"],
    rootDir: "src",
    outDir: ".",
    declaration: true,
    sourceMap: true,
    // The maps carry their sources: src/ is not shipped.
    inlineSources: true,
    strict: true,
    skipLibCheck: true,
    allowImportingTsExtensions: true,
    rewriteRelativeImportExtensions: true,
    verbatimModuleSyntax: false,
    isolatedModules: true,
    // package.json's `imports` name the compiled file; tsc reads its source.
    paths: { "#runtime": ["./src/internal/runtime/node.ts"] },
    // `#package` is package.json (see `imports`), read as a JSON module.
    resolveJsonModule: true,
  },
  include: ["src"],
  // Set explicitly: the default would exclude outDir, which holds src/.
  exclude: ["node_modules"],
};
await Deno.writeTextFile(join(out, "tsconfig.json"), JSON.stringify(tsconfig, null, 2) + "\n");
await Deno.copyFile(join(root, "README.md"), join(out, "README.md"));
await Deno.copyFile(join(root, "LICENSE"), join(out, "LICENSE"));
for (const proto of protos) {
  await Deno.mkdir(dirname(join(out, proto)), { recursive: true });
  await Deno.copyFile(join(root, proto), join(out, proto));
}

await run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], out);
await run("node", [join(out, "node_modules/typescript/bin/tsc"), "-p", out], out);
// npm links `bin` entries as they are: the CLI needs its interpreter line, and the mode.
const cli = join(out, "cli.js");
await Deno.writeTextFile(cli, "#!/usr/bin/env node\n" + (await Deno.readTextFile(cli)));
await Deno.chmod(cli, 0o755);
console.log(`built ${config.name}@${config.version} in ${relative(root, out)}/`);
