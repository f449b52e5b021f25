/**
 * Deno's private temporary directories: a host serving services to its plugin over a
 * unix socket puts the socket in one when the plugin has no working directory.
 *
 * @module
 */
import { explainPermission } from "./deno_permission.ts";

/**
 * Creates a fresh directory under the system's temporary directory that only its owner
 * may enter (mode 0700).
 *
 * @param prefix The start of the directory's name.
 * @returns Its absolute path.
 * @example
 * ```ts
 * import { makePrivateTempDir, removeTree } from "./deno_temp.ts";
 * const dir = await makePrivateTempDir("ftl-doc-");
 * console.assert((await Deno.stat(dir)).mode! % 0o1000 === 0o700);
 * await removeTree(dir);
 * ```
 */
export async function makePrivateTempDir(prefix: string): Promise<string> {
  try {
    const dir = await Deno.makeTempDir({ prefix });
    // makeTempDir asks for 0700, but the umask could only narrow it: set it outright.
    await Deno.chmod(dir, 0o700);
    return dir;
  } catch (error) {
    throw explainPermission(error, "--allow-write", "create a temporary directory");
  }
}

/** Removes `path` and everything under it; nothing when it is not there. */
export async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw explainPermission(error, "--allow-write", `remove ${path}`);
  }
}
