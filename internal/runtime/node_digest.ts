/**
 * Hashing a file and telling whether a path is a file one may run, for the host's
 * checksum check (internal/checksum.ts). A plugin's executable can be a whole `deno`
 * binary, 100 MiB and more, so the file is streamed, never read whole.
 *
 * @module
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";

const CHUNK_BYTES = 1 << 20;

/**
 * The SHA-256 of the file at `path` (symlinks followed), in lowercase hex. Throws an
 * error naming `path` when it cannot be read.
 */
export async function sha256File(path: string): Promise<string> {
  try {
    // Loaded here, not with the module: a guest loads the seam too, and never hashes.
    const { createHash } = await import("node:crypto");
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_BYTES })) {
      hash.update(chunk as Buffer);
    }
    return hash.digest("hex");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT"
      ? "no such file or directory"
      : code === "EACCES"
      ? "permission denied"
      : code === "EISDIR"
      ? "is a directory"
      : (error as Error).message;
    throw new Error(`cannot read ${path}: ${why}`, { cause: error });
  }
}

/**
 * Whether `path` (symlinks followed) is a regular file with an execute bit set, as a
 * `PATH` lookup needs; false if it does not exist.
 */
export async function isExecutableFile(path: string): Promise<boolean> {
  try {
    const info = await stat(path);
    return info.isFile() && (info.mode & 0o111) !== 0;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return false;
    throw error;
  }
}
