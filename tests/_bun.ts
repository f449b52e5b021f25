/**
 * Whether the suite runs under Bun (`deno task test:bun` runs the npm build's compiled
 * tests there), for the few cases whose expectations Bun's versions of Node's APIs change.
 *
 * @module
 */
import process from "node:process";

/** True under Bun, which names itself in `process.versions`. */
export const onBun: boolean = typeof (process.versions as Record<string, unknown>).bun ===
  "string";
