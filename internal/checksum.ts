/**
 * `spawn({ checksum })`: the host refuses to start a plugin whose file is not the one
 * it was told to expect (go-plugin's SecureConfig). The file is found as the process
 * start will find it (a bare name through the plugin's `PATH`, a relative path from
 * its `dir`), hashed by streaming, and compared before anything else happens: no
 * stale process is killed, no port taken, no pid file written for a plugin refused
 * here.
 *
 * It is a check at start: a file swapped between the hash and the exec is not caught.
 *
 * @module
 */
import { PluginStartError } from "./plugin.ts";
import { isExecutableFile, processEnv, realPath, sha256File } from "#runtime";

/**
 * The digest a plugin must have, for `spawn()`'s `checksum` option: a string
 * `"sha256:<64 hex digits>"` checks the executable; `{ file, digest }` checks `file`
 * (relative to the plugin's `dir`, or absolute), for a plugin that is a script run by
 * `deno` or `node`.
 *
 * @example
 * ```ts
 * import type { Checksum } from "@ftl-ts/plugin/host";
 *
 * const ofTheBinary: Checksum = `sha256:${"ab".repeat(32)}`;
 * const ofTheScript: Checksum = { file: "plugin.ts", digest: `sha256:${"cd".repeat(32)}` };
 * ```
 */
export type Checksum = string | { file: string; digest: string };

/**
 * Why {@linkcode spawn} refused to start a plugin with a `checksum`: its file had
 * another digest, or could not be found or read. Nothing was started.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PluginChecksumError, spawn } from "@ftl-ts/plugin/host";
 * import { EchoService } from "../gen/echo/v1/echo_pb.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const refused = await spawn({
 *   name: "echo",
 *   dir,
 *   exe: Deno.execPath(),
 *   checksum: `sha256:${"0".repeat(64)}`,
 *   service: EchoService,
 * }).catch((error: unknown) => error);
 * await Deno.remove(dir, { recursive: true });
 * assert.ok(refused instanceof PluginChecksumError);
 * assert.equal(refused.expected, `sha256:${"0".repeat(64)}`);
 * assert.match(refused.actual ?? "", /^sha256:[0-9a-f]{64}$/);
 * ```
 */
export class PluginChecksumError extends PluginStartError {
  /** The file that was checked, as the process start would find it. */
  readonly file: string;
  /** The digest the host expected, `sha256:<hex>`. */
  readonly expected: string;
  /** The digest the file has, `sha256:<hex>`; undefined when it could not be read. */
  readonly actual: string | undefined;

  /**
   * Builds the error.
   *
   * @param message What went wrong, whole (no plugin output follows: nothing ran).
   * @param check The file and both digests.
   * @param cause Why the file could not be read, if it could not.
   */
  constructor(
    message: string,
    check: { file: string; expected: string; actual?: string },
    cause?: unknown,
  ) {
    // Nothing ran, so PluginStartError's account of the plugin's output does not apply.
    super(message, [], { cause, started: false });
    this.name = "PluginChecksumError";
    this.file = check.file;
    this.expected = check.expected;
    this.actual = check.actual;
  }
}

/** A checksum option, validated: which file (undefined: the executable) and its digest. */
interface ParsedChecksum {
  file?: string;
  /** `sha256:<lowercase hex>`. */
  digest: string;
}

const ACCEPTED = 'accepted: "sha256:<64 hex digits>"';

/**
 * Validates `spawn()`'s `checksum` option, throwing a TypeError that names it.
 *
 * @param checksum The option as given.
 * @returns The file to check (undefined: the executable) and the digest, or undefined
 * when there is no option.
 */
export function parseChecksum(checksum: unknown): ParsedChecksum | undefined {
  if (checksum === undefined) return undefined;
  if (typeof checksum === "string") return { digest: parseDigest(checksum, "checksum") };
  if (typeof checksum !== "object" || checksum === null || Array.isArray(checksum)) {
    throw new TypeError(
      `spawn: checksum must be a string or { file, digest }, not ${describe(checksum)}`,
    );
  }
  const { file, digest, ...rest } = checksum as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) {
    throw new TypeError(
      `spawn: checksum has unknown key${unknown.length > 1 ? "s" : ""} ${
        unknown.map((k) => JSON.stringify(k)).join(", ")
      }: it takes { file, digest }`,
    );
  }
  if (typeof file !== "string" || file === "") {
    throw new TypeError(
      `spawn: checksum.file must be a non-empty path (relative to dir, or absolute), not ${
        describe(file)
      }`,
    );
  }
  if (typeof digest !== "string") {
    throw new TypeError(`spawn: checksum.digest must be a string (${ACCEPTED})`);
  }
  return { file, digest: parseDigest(digest, "checksum.digest") };
}

function parseDigest(text: string, option: string): string {
  const colon = text.indexOf(":");
  if (colon < 0) {
    throw new TypeError(`spawn: ${option} ${describe(text)} names no algorithm; ${ACCEPTED}`);
  }
  const algorithm = text.slice(0, colon).toLowerCase();
  if (algorithm !== "sha256") {
    throw new TypeError(
      `spawn: ${option} algorithm ${describe(text.slice(0, colon))} is not supported; ${ACCEPTED}`,
    );
  }
  const hex = text.slice(colon + 1);
  if (!/^[0-9a-f]{64}$/i.test(hex)) {
    throw new TypeError(
      `spawn: ${option} ${describe(text)} is not a sha256 digest: it needs 64 hex digits after ` +
        `"sha256:" (it has ${hex.length} characters${
          /^[0-9a-f]*$/i.test(hex) ? "" : ", not all hex"
        })`,
    );
  }
  return `sha256:${hex.toLowerCase()}`;
}

/** A value for an error message, cut short. */
function describe(value: unknown): string {
  if (typeof value !== "string") return value === null ? "null" : typeof value;
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/**
 * Refuses, with a {@linkcode PluginChecksumError}, to go on when the plugin's file
 * does not have the digest of `options.checksum`; a TypeError for a malformed option.
 * Nothing when there is no checksum. Call it before anything about the process
 * starts, and before every start.
 *
 * @param options The spawn options it needs: where and how the plugin would run.
 * @returns When the file has the digest.
 */
export async function verifyChecksum(options: {
  name: string;
  exe: string;
  dir: string;
  env?: Record<string, string>;
  checksum?: Checksum;
}): Promise<void> {
  const parsed = parseChecksum(options.checksum);
  if (!parsed) return;
  const { name, dir } = options;
  const expected = parsed.digest;
  let file = parsed.file === undefined ? options.exe : joinPath(dir, parsed.file);
  let actual: string;
  try {
    if (parsed.file === undefined) file = await findExecutable(options, expected);
    actual = `sha256:${await sha256File(file)}`;
  } catch (error) {
    if (error instanceof PluginChecksumError) throw error;
    throw new PluginChecksumError(
      `plugin ${name} was not started: its checksum could not be verified: ${
        error instanceof Error ? error.message : String(error)
      }`,
      { file, expected },
      error,
    );
  }
  if (actual === expected) return;
  const real = await realPath(file);
  // The arrow is for links: a path that only had ".." in it is shown resolved.
  const shown = real === file || real === withoutDotDot(file) ? real : `${file} (→ ${real})`;
  throw new PluginChecksumError(
    `plugin ${name} was not started: ${shown} has ${actual}, but the checksum expects ${expected}`,
    { file, expected, actual },
  );
}

/**
 * The file the process start will run for `exe`: a path with a slash from `dir`, a
 * bare name through the `PATH` the plugin gets (the host's, or `env`'s), as both
 * Deno and Node do.
 */
async function findExecutable(
  options: { name: string; exe: string; dir: string; env?: Record<string, string> },
  expected: string,
): Promise<string> {
  const { exe, dir } = options;
  if (exe.includes("/")) return joinPath(dir, exe);
  const path = options.env?.PATH ?? processEnv().PATH;
  for (const entry of (path ?? "").split(":")) {
    // An empty entry is the working directory, as execvp reads it.
    const candidate = joinPath(entry === "" ? dir : joinPath(dir, entry), exe);
    if (await isExecutableFile(candidate)) return candidate;
  }
  throw new PluginChecksumError(
    `plugin ${options.name} was not started: its checksum could not be verified: ${
      path === undefined
        ? `it would have no PATH to find ${JSON.stringify(exe)} in`
        : `no executable ${JSON.stringify(exe)} in its PATH (${path})`
    }`,
    { file: exe, expected },
  );
}

/**
 * `path` from `base`, unless it is absolute, without `.` segments or doubled slashes.
 * `..` stays: past a symlink it does not mean what cutting the path short would.
 */
function joinPath(base: string, path: string): string {
  const joined = path.startsWith("/") ? path : `${base}/${path}`;
  const absolute = joined.startsWith("/");
  const kept = joined.split("/").filter((segment) => segment !== "" && segment !== ".");
  return (absolute ? "/" : "") + (kept.join("/") || ".");
}

/** `path` with its ".." segments taken lexically: what it names when no link is on the way. */
function withoutDotDot(path: string): string {
  const kept: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "..") { if (kept.length > 1) kept.pop(); }
    else kept.push(segment);
  }
  return kept.join("/") || "/";
}
