/**
 * This package's version, from its manifest: `#package` names deno.json under Deno
 * (deno.json's `imports`) and package.json in the npm build (its `imports`), so the
 * version printed is the one of the package that runs.
 *
 * @module
 */
import manifest from "#package" with { type: "json" };

/**
 * This package's version.
 *
 * @example
 * ```ts
 * import { packageVersion } from "./version.ts";
 * console.assert(/^\d+\.\d+\.\d+/.test(packageVersion()));
 * ```
 */
export function packageVersion(): string {
  return manifest.version;
}
