/**
 * Node's private temporary directories: a host serving services to its plugin over a
 * unix socket puts the socket in one when the plugin has no working directory.
 *
 * @module
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Creates a fresh directory under the system's temporary directory that only its owner
 * may enter (mode 0700).
 *
 * @param prefix The start of the directory's name.
 * @returns Its absolute path.
 * @example
 * ```ts
 * import { makePrivateTempDir, removeTree } from "./node_temp.ts";
 * const dir = await makePrivateTempDir("ftl-doc-");
 * await removeTree(dir);
 * ```
 */
export async function makePrivateTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  // mkdtemp asks for 0700, but the umask could only narrow it: set it outright.
  await chmod(dir, 0o700);
  return dir;
}

/** Removes `path` and everything under it; nothing when it is not there. */
export async function removeTree(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}
