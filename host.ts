/**
 * The host half: spawning plugins and talking to them.
 *
 * @module
 */
export { allocatePort } from "./internal/runtime/deno.ts";
