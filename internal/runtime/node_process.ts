/**
 * Node: what the system tells of another process, for a host that watches a plugin it
 * did not start (attach) or finds named by a pid file.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import process from "node:process";
import { parseProcStat, parsePsLine, PS_ARGS, PS_TIMEOUT_MS, psTimedOut } from "./process_info.ts";
import type { ProcessInfo } from "./types.ts";

/** Whether this system has Linux's /proc (checked once). */
let procFs: Promise<boolean> | undefined;

/**
 * What the system tells of process `pid`: undefined once it is gone (or a zombie).
 * Linux's `/proc` is read where there is one; elsewhere `ps` is asked.
 *
 * @param pid The process.
 * @returns Its parent, group, start time and command line, or undefined.
 */
export async function processInfo(pid: number): Promise<ProcessInfo | undefined> {
  procFs ??= readFile("/proc/self/stat", "utf8").then(() => true, () => false);
  if (await procFs) {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, "utf8");
      const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      return parseProcStat(stat, cmdline);
    } catch (error) {
      // ESRCH: it went between opening its stat file and reading it.
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ESRCH") return undefined;
      throw error;
    }
  }
  const ps = spawn("ps", [...PS_ARGS, "-p", String(pid)], {
    // lstart's words are the C locale's whatever the user's is.
    env: { ...process.env, LC_ALL: "C" },
    stdio: ["ignore", "pipe", "ignore"],
    timeout: PS_TIMEOUT_MS,
  });
  let text = "";
  ps.stdout!.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    ps.once("error", reject);
    ps.once("close", (code, signal) => signal === null ? resolve(code) : reject(psTimedOut(pid)));
  });
  // ps exits 1 and prints nothing when there is no such process.
  return code === 0 ? parsePsLine(text) : undefined;
}
