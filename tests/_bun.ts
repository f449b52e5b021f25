/**
 * Bun for the tests: whether the suite runs under it (`deno task test:bun` runs the npm
 * build's compiled tests there), for the few cases whose expectations Bun's versions of
 * Node's APIs change; and where a Bun executable is, for tests that start Bun guests.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

/** True under Bun, which names itself in `process.versions`. */
export const onBun: boolean = typeof (process.versions as Record<string, unknown>).bun ===
  "string";

/**
 * A Bun executable: this process's under Bun, else `BUN_BIN`, else the one test:bun
 * installs (scripts/test_bun.ts: bun 1.4.5 under `$XDG_CACHE_HOME/ftl-ts-plugin` or
 * `~/.cache/ftl-ts-plugin`); undefined when there is none.
 */
export function bunExecutable(): string | undefined {
  if (onBun) return process.execPath;
  if (process.env.BUN_BIN) return process.env.BUN_BIN;
  const cache = process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? "/tmp", ".cache");
  const cached = join(cache, "ftl-ts-plugin", "bun-1.4.5", "node_modules", "bun", "bin", "bun.exe");
  return existsSync(cached) ? cached : undefined;
}
