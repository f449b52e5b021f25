/**
 * Deno: what the system tells of another process, for a host that watches a plugin it
 * did not start (attach) or finds named by a pid file.
 *
 * @module
 */
import { explainPermission } from "./deno_permission.ts";
import { parseProcStat, parsePsLine, PS_ARGS, PS_TIMEOUT_MS, psTimedOut } from "./process_info.ts";
import type { ProcessInfo } from "./types.ts";

/**
 * What the system tells of process `pid`: undefined once it is gone (or a zombie).
 * Deno 2.9 lets only `--allow-all` read another process's `/proc/<pid>/stat`, so
 * without it `ps` is asked, which `--allow-run` covers.
 *
 * @param pid The process.
 * @returns Its parent, group, start time and command line, or undefined.
 */
export async function processInfo(pid: number): Promise<ProcessInfo | undefined> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    return parseProcStat(stat, cmdline);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    if (
      !(error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied)
    ) throw error;
  }
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("ps", {
      args: [...PS_ARGS, "-p", String(pid)],
      // lstart's words are the C locale's whatever the user's is.
      env: { LC_ALL: "C" },
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(PS_TIMEOUT_MS),
    }).output();
  } catch (error) {
    throw explainPermission(error, "--allow-run", `ask ps about process ${pid}`);
  }
  if (output.signal !== null) throw psTimedOut(pid);
  // ps exits 1 and prints nothing when there is no such process.
  return output.success ? parsePsLine(new TextDecoder().decode(output.stdout)) : undefined;
}
