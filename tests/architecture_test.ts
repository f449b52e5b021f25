// The rules docs/ARCHITECTURE.md marks as checked: runtime globals only under
// internal/runtime/, a seam that imports nothing from above it, and no library module
// over 400 lines of code. Reads the sources: under Deno the repository's, under Node the
// npm build's staged copy (npm/src/).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import assert from "node:assert/strict";

const here = dirname(fileURLToPath(import.meta.url));
const root = existsSync(join(here, "..", "src", "mod.ts"))
  ? join(here, "..", "src")
  : join(here, "..");

/** Library sources: the front doors, cli/ and internal/ (generated code aside). */
function librarySources(): string[] {
  const files = ["mod.ts", "host.ts", "guest.ts", "cli.ts", "ping.ts"].map((f) => join(root, f));
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) files.push(path);
    }
  };
  walk(join(root, "cli"));
  walk(join(root, "internal"));
  return files;
}

/** The file's code without comments (block and line) or string contents' comment look-alikes. */
function codeLines(text: string): string[] {
  const lines: string[] = [];
  let inBlock = false;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (inBlock) {
      if (line.includes("*/")) inBlock = false;
      continue;
    }
    if (line === "" || line.startsWith("//")) continue;
    if (line.startsWith("/*")) {
      if (!line.includes("*/")) inBlock = true;
      continue;
    }
    lines.push(line);
  }
  return lines;
}

/** Module specifiers a file imports or re-exports (static and dynamic). */
function specifiers(text: string): string[] {
  const found: string[] = [];
  const pattern =
    /(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|(?:^|\n)\s*import\s*["']([^"']+)["']/g;
  for (const match of text.matchAll(pattern)) found.push(match[1] ?? match[2] ?? match[3]);
  return found;
}

const sources = librarySources();
/** node: modules every runtime ships alike, with no process or system behind them. */
const portable = new Set(["node:util"]);
/**
 * The layers of docs/ARCHITECTURE.md, bottom up: the runtime seam, byte helpers any layer
 * may use, the HTTP/2 engine, the rest of internal/, then the front doors and cli/.
 */
function layerOf(path: string): number {
  const rel = relative(root, path);
  if (rel.startsWith(join("internal", "runtime"))) return 0;
  if (rel === join("internal", "bytes.ts")) return 1;
  if (rel.startsWith(join("internal", "http2"))) return 2;
  if (rel.startsWith("internal") || rel.startsWith("gen")) return 3;
  return 4;
}
const isSeam = (path: string) => relative(root, path).startsWith(join("internal", "runtime"));

describe("the architecture's checked rules", () => {
  it("reads the library's sources", () => {
    assert.ok(sources.length > 40, `found only ${sources.length} library files under ${root}`);
  });

  it("keeps Deno.*, node:* and process to internal/runtime/", () => {
    const offenders: string[] = [];
    for (const path of sources.filter((p) => !isSeam(p))) {
      const code = codeLines(readFileSync(path, "utf8")).join("\n");
      // What strings say (an error naming Deno.serve, say) is not a use.
      const bare = code.replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'/g, '""');
      const uses = [
        /\bDeno\.[a-zA-Z]/.test(bare) && "Deno.*",
        specifiers(code).some((s) => s.startsWith("node:") && !portable.has(s)) && "node:*",
        /(?<![.\w])process\.[a-zA-Z]/.test(bare) && "process",
      ].filter(Boolean);
      if (uses.length > 0) offenders.push(`${relative(root, path)}: ${uses.join(", ")}`);
    }
    assert.deepEqual(offenders, []);
  });

  it("keeps the runtime seam a leaf: it imports nothing from above it, not even types", () => {
    const offenders: string[] = [];
    for (const path of sources.filter(isSeam)) {
      for (const specifier of specifiers(readFileSync(path, "utf8"))) {
        const local = specifier.startsWith(".");
        if (local && !specifier.startsWith("./")) {
          offenders.push(`${relative(root, path)} imports ${specifier}`);
        }
        if (specifier === "#package" || specifier === "#runtime") {
          offenders.push(`${relative(root, path)} imports ${specifier}`);
        }
      }
    }
    assert.deepEqual(offenders, []);
  });

  it("points every import down the layers (or within one)", () => {
    const offenders: string[] = [];
    for (const path of sources) {
      for (const specifier of specifiers(readFileSync(path, "utf8"))) {
        if (!specifier.startsWith(".")) continue;
        const target = join(dirname(path), specifier);
        if (layerOf(target) > layerOf(path)) {
          offenders.push(`${relative(root, path)} imports ${relative(root, target)}`);
        }
      }
    }
    assert.deepEqual(offenders, []);
  });

  it("takes only values from #runtime: types come from runtime/types.ts", () => {
    // A type from #runtime would put `#runtime` into the published .d.ts files, which
    // resolvers without package.json `imports` (node10) cannot follow.
    const offenders: string[] = [];
    const statement = /(?:import|export)\b([^;]*?)\bfrom\s*["']#runtime["']/g;
    for (const path of sources) {
      for (const match of readFileSync(path, "utf8").matchAll(statement)) {
        if (/^\s*type\b|[{,]\s*type\s/.test(match[1])) offenders.push(relative(root, path));
      }
    }
    assert.deepEqual(offenders, []);
  });

  it("holds no library module over 400 lines of code", () => {
    const over = sources
      .map((path) => [relative(root, path), codeLines(readFileSync(path, "utf8")).length] as const)
      .filter(([, lines]) => lines > 400)
      .map(([path, lines]) => `${path}: ${lines}`);
    assert.deepEqual(over, []);
  });
});
