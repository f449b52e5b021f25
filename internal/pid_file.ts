/**
 * The pid file a host keeps for each plugin in `<dir>/.ftl`, as FTL's Go host does:
 * written once the plugin runs, checked before the next start (a plugin left behind by
 * a host that died is killed, if it still runs the same command), forgotten at exit.
 * Beside it, `<name>.host` names the host: a plugin whose host is still its parent is
 * not left behind, and a second host refuses to start it again rather than kill it.
 *
 * @module
 */
import { errorText, type Logger } from "./log.ts";
import { PluginStartError } from "./plugin.ts";
import {
  ownPid,
  processInfo,
  readTextFile,
  realPath,
  removeFile,
  signalGroup,
  signalPid,
  writeTextFile,
} from "#runtime";
import type { Child, ProcessInfo } from "./runtime/types.ts";

/** Pids of the plugins this process started and has not reaped yet: never stale. */
const ownChildren = new Set<number>();

/**
 * Remembers `child` as this process's own until it is reaped, so that a pid file
 * naming it is never taken for a stale one.
 *
 * @param child The plugin's process, just started.
 */
export function claimChild(child: Child): void {
  ownChildren.add(child.pid);
  child.exited.then(() => ownChildren.delete(child.pid));
}

/**
 * Whether `name` can stand in a file name as it is: letters, digits, `.`, `_` and `-`,
 * and not `.` or `..`.
 *
 * @param name A plugin's name.
 * @returns Whether it is safe.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isSafeFileName } from "./pid_file.ts";
 * assert.ok(isSafeFileName("echo-1.2"));
 * assert.ok(!isSafeFileName("../echo"));
 * assert.ok(!isSafeFileName(".."));
 * ```
 */
export function isSafeFileName(name: string): boolean {
  return /^[\w.-]+$/.test(name) && !/^\.\.?$/.test(name);
}

/**
 * One plugin's pid file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PidFile } from "./pid_file.ts";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const pidFile = PidFile.of(dir, "my echo");
 *   assert.equal(pidFile.path, `${dir}/my_echo.pid`);
 *   await pidFile.write(12345);
 *   assert.equal(await Deno.readTextFile(pidFile.path), "12345\n");
 *   await pidFile.forget(12345);
 *   assert.ok(!(await Deno.stat(pidFile.path).then(() => true, () => false)));
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export class PidFile {
  /** Where the file is. */
  readonly path: string;
  /**
   * Where the host's pid goes: a file of its own, so that the pid file stays what Go's
   * is (the pid alone, `kill $(cat x.pid)` works).
   */
  readonly hostPath: string;

  private constructor(path: string) {
    this.path = path;
    this.hostPath = path.replace(/\.pid$/, ".host");
  }

  /**
   * The pid file of the plugin `name` in `workingDir`.
   *
   * Keyed by the plugin's name, not by basename(exe) as in Go: here exe is mostly `deno`
   * or `node`, and two plugins of one folder would take each other for stale. A name
   * that is no safe file name is made one rather than refused, as Go takes any.
   *
   * @param workingDir The plugin's `<dir>/.ftl`.
   * @param name The plugin's name.
   * @returns Its pid file (not read or written yet).
   */
  static of(workingDir: string, name: string): PidFile {
    const file = isSafeFileName(name) ? name : name.replace(/[^\w.-]/g, "_").replace(/^\./, "_");
    return new PidFile(`${workingDir}/${file}.pid`);
  }

  /**
   * Kills the process the file names, but only if it still runs this plugin's command
   * and is not one this host started: a reused pid belonging to something else is left
   * alone. A pid file never blocks a spawn: what cannot be read or told is warned about
   * and left alone. But a plugin whose host (as `<name>.host` names it) is still its
   * parent is not stale: another live host runs it, and this one must not start it again.
   *
   * @param command The plugin's executable and arguments.
   * @param logger Where the warnings go.
   * @throws {PluginStartError} When another live host runs the plugin.
   */
  async killStale(
    command: { exe: string; args?: readonly string[] },
    logger: Logger,
  ): Promise<void> {
    const pidFile = this.path;
    let text: string | undefined;
    try {
      text = await readTextFile(pidFile);
    } catch (error) {
      logger.warn(`cannot read pid file ${pidFile}: going on`, { error: errorText(error) });
      return;
    }
    if (text === undefined) return;
    const pid = Number(text.trim());
    if (!Number.isSafeInteger(pid) || pid <= 1) {
      logger.warn(
        `ignoring pid file ${pidFile}: ${JSON.stringify(text.slice(0, 40))} is not a pid`,
      );
      return;
    }
    // A plugin of our own with the same name, still running or not yet reaped.
    if (ownChildren.has(pid) || pid === ownPid()) return;
    let info: ProcessInfo | undefined;
    try {
      info = await processInfo(pid);
    } catch (error) {
      logger.warn(
        `pid file ${pidFile} names process ${pid}, and what it runs cannot be told: leaving it alone`,
        { error: errorText(error) },
      );
      return;
    }
    if (info === undefined) return;
    const { commandLine } = info;
    if (!(await runsCommand(commandLine, command.exe, command.args ?? []))) {
      logger.warn(
        `pid file ${pidFile} names process ${pid}, which runs something else (${
          commandLine.slice(0, 200)
        }): leaving it alone`,
      );
      return;
    }
    const host = await this.#liveHost(pid, info.parent, logger);
    if (host !== undefined) {
      throw new PluginStartError(
        `${pidFile} names process ${pid}, which runs this plugin under another host that ` +
          `is still alive (pid ${host}): attach() to it (ftl-plugin run --json prints what ` +
          "attach needs), or give this one another name or dir",
        [],
        { started: false },
      );
    }
    logger.warn(`killing stale plugin process ${pid} named by ${pidFile}`);
    signalGroup(pid, "SIGKILL");
    signalPid(pid, "SIGKILL");
  }

  /**
   * Writes `pid` to the file.
   *
   * @param pid The plugin's pid.
   */
  async write(pid: number): Promise<void> {
    await writeTextFile(this.hostPath, `${ownPid()}\n`);
    await writeTextFile(this.path, `${pid}\n`);
  }

  /**
   * Removes the file if it still names `pid`.
   *
   * @param pid The pid this host wrote.
   */
  async forget(pid: number): Promise<void> {
    try {
      if ((await readTextFile(this.path))?.trim() !== String(pid)) return;
      await removeFile(this.path);
      if ((await readTextFile(this.hostPath))?.trim() === String(ownPid())) {
        await removeFile(this.hostPath);
      }
    } catch {
      // Another host may have taken the file over; it is theirs now.
    }
  }

  /**
   * The pid of the host `<name>.host` names, if that host is still `pid`'s parent (a
   * dead host's plugin has been given another parent: it is an orphan, and stale).
   * `parent` is from the look-up killStale() made already: asking again costs a `ps`.
   */
  async #liveHost(pid: number, parent: number, logger: Logger): Promise<number | undefined> {
    try {
      const host = Number((await readTextFile(this.hostPath))?.trim());
      if (!Number.isSafeInteger(host) || host <= 1 || host === ownPid()) return undefined;
      return parent === host ? host : undefined;
    } catch (error) {
      logger.warn(`cannot tell whether another host runs process ${pid}: taking it for stale`, {
        error: errorText(error),
      });
      return undefined;
    }
  }
}

/**
 * Whether a command line (arguments joined by spaces, as `ps` shows them) runs `exe`
 * with `args`: the executable as argv[0], or argv[1] for a script run through its #!
 * interpreter; an interpreter (deno, node) is told apart by its arguments (the script).
 */
async function runsCommand(
  commandLine: string,
  exe: string,
  args: readonly string[],
): Promise<boolean> {
  const words = commandLine.split(" ");
  const exePath = await realPath(exe);
  const heads = words.slice(0, 2);
  const candidates = await Promise.all(heads.map((word) => realPath(word)));
  const sameExe = heads.includes(exe) || candidates.includes(exePath) ||
    // An executable whose path has a space in it.
    commandLine === exe || commandLine.startsWith(`${exe} `);
  const padded = ` ${commandLine} `;
  return sameExe && args.every((arg) => padded.includes(` ${arg} `));
}
