/**
 * Deno's permission errors, turned into ones that say which flag to run Deno with.
 *
 * @module
 */

/**
 * Turns Deno's permission error into one that names the missing flag; any other error
 * is given back as it is.
 *
 * @example
 * ```ts
 * import { explainPermission } from "./deno_permission.ts";
 * const other = new Error("disk full");
 * console.assert(explainPermission(other, "--allow-write", "write x") === other);
 * ```
 */
export function explainPermission(error: unknown, flag: string, what: string): unknown {
  if (error instanceof Deno.errors.NotCapable) {
    // Deno names the flag it wants, and that can differ from the expected one (a unix
    // socket's connect asks for --allow-net in Deno 2.9): its word wins.
    const asked = /run again with the (--allow-[a-z]+) flag/.exec(error.message)?.[1];
    return new Error(
      `permission denied: run Deno with ${asked ?? flag} to ${what} (${error.message})`,
      { cause: error },
    );
  }
  return error;
}
