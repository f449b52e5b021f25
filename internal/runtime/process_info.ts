/**
 * Reading what the system tells of another process (its parent, group, start time and
 * command line) from Linux's `/proc/<pid>/stat` or from `ps`: the parsing both runtimes
 * share, with no runtime globals.
 *
 * @module
 */
import type { ProcessInfo } from "./types.ts";

/** The `ps` arguments whose output {@linkcode parsePsLine} reads. */
export const PS_ARGS: readonly string[] = ["-ww", "-o", "ppid=,pgid=,stat=,lstart=,args="];

/**
 * How long `ps` may take before it is killed and the question fails: attach's watch
 * and a pid file's check wait on it, and a `ps` stuck on a hung NFS mount or a
 * swapped-out system would otherwise hold them forever.
 */
export const PS_TIMEOUT_MS = 10_000;

/**
 * The error of a `ps` that was killed for taking longer than {@linkcode PS_TIMEOUT_MS}:
 * not knowing, which must not read as "gone".
 *
 * @param pid The process asked about.
 * @returns The error.
 * @example
 * ```ts
 * import { psTimedOut } from "./process_info.ts";
 * console.assert(psTimedOut(42).message.includes("process 42"));
 * ```
 */
export function psTimedOut(pid: number): Error {
  return new Error(
    `ps did not answer about process ${pid} within ${PS_TIMEOUT_MS} ms; is the system overloaded?`,
  );
}

/**
 * Reads `/proc/<pid>/stat` (and its `cmdline`): undefined for a zombie or a dead one.
 *
 * @param stat The stat file's text.
 * @param cmdline The cmdline file's text (NUL-separated).
 * @returns What it tells, or undefined.
 * @example
 * ```ts
 * import { parseProcStat } from "./process_info.ts";
 * const stat = "42 (a b) S 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9001 0 0";
 * console.assert(parseProcStat(stat, "deno\0run\0")?.started === "9001");
 * ```
 */
export function parseProcStat(stat: string, cmdline: string): ProcessInfo | undefined {
  // Fields after the ")" that closes the command name (which may hold spaces and ")").
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const [state, ppid, pgrp] = fields;
  if (state === undefined || state === "Z" || state === "X" || fields.length < 20) return undefined;
  return {
    parent: Number(ppid),
    group: Number(pgrp),
    // Clock ticks since boot: two processes that are given one pid never share it.
    started: fields[19],
    commandLine: cmdline.replace(/\0$/, "").replaceAll("\0", " "),
  };
}

/**
 * Reads the one line `ps` prints with {@linkcode PS_ARGS} (under `LC_ALL=C`): undefined
 * for no line or a zombie.
 *
 * @param text What `ps` printed.
 * @returns What it tells, or undefined.
 * @example
 * ```ts
 * import { parsePsLine } from "./process_info.ts";
 * const info = parsePsLine("    1   12 Ss   Tue Dec  1 08:31:04 2026 /sbin/init splash\n");
 * console.assert(info?.group === 12 && info.commandLine === "/sbin/init splash");
 * ```
 */
export function parsePsLine(text: string): ProcessInfo | undefined {
  const match = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(\S+\s+\S+\s+\d+\s+[\d:]+\s+\d+)\s+(.*)$/.exec(
    text.trim(),
  );
  if (!match || match[3].startsWith("Z")) return undefined;
  return {
    parent: Number(match[1]),
    group: Number(match[2]),
    started: match[4].replace(/\s+/g, " "),
    commandLine: match[5],
  };
}
