/**
 * Hashing a file and telling whether a path is a file one may run, for the host's
 * checksum check (internal/checksum.ts). A plugin's executable can be a whole `deno`
 * binary, 100 MiB and more, so the file is read in chunks, never whole.
 *
 * @module
 */
import { explainPermission } from "./deno_permission.ts";

const CHUNK_BYTES = 1 << 20;

/**
 * The SHA-256 of the file at `path` (symlinks followed), in lowercase hex. Throws an
 * error naming `path` when it cannot be read.
 */
export async function sha256File(path: string): Promise<string> {
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(path, { read: true });
    // Loaded here, not with the module: a guest loads the seam too, and never hashes.
    const { createHash } = await import("node:crypto");
    const hash = createHash("sha256");
    const buffer = new Uint8Array(CHUNK_BYTES);
    for (;;) {
      const read = await file.read(buffer);
      if (read === null) break;
      hash.update(buffer.subarray(0, read));
    }
    return hash.digest("hex");
  } catch (error) {
    throw unreadable(error, path);
  } finally {
    file?.close();
  }
}

/**
 * Whether `path` (symlinks followed) is a regular file with an execute bit set, as a
 * `PATH` lookup needs; false if it does not exist.
 */
export async function isExecutableFile(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return false;
    }
    throw explainPermission(error, "--allow-read", `look for ${path}`);
  }
}

function unreadable(error: unknown, path: string): unknown {
  if (error instanceof Deno.errors.NotCapable) {
    return explainPermission(error, "--allow-read", `read ${path}`);
  }
  const why = error instanceof Deno.errors.NotFound
    ? "no such file or directory"
    : error instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : error instanceof Deno.errors.IsADirectory || /os error 21\b/.test(String(error))
    ? "is a directory"
    : error instanceof Error
    ? error.message
    : String(error);
  return new Error(`cannot read ${path}: ${why}`, { cause: error });
}
