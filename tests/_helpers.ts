/**
 * Test helpers shared by the suites: running child processes to the end and
 * collecting streams. Tests use node:child_process so that the same files run under
 * `deno test` and `node --test`.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { decodeLogEntry, type LogEntry, Logger, LogLevel } from "../internal/log.ts";

/** What a finished child process left behind. */
export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Waits for `child` to exit, collecting its output. The wait is bounded: a child still
 * running after `timeoutMs` (default 5 minutes) is SIGKILLed, and the promise rejects
 * with what it printed, so a hung child fails its test instead of hanging the suite.
 */
export function runToEnd(
  child: ChildProcess,
  { timeoutMs = 300_000 }: { timeoutMs?: number } = {},
): Promise<Finished> {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr?.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (!timedOut) return resolve({ code, signal, stdout, stderr });
      reject(
        new Error(
          `${child.spawnfile} still ran after ${timeoutMs} ms (killed):\n${stdout}\n${stderr}`,
        ),
      );
    });
  });
}

/** Whether the suite runs under Deno (else Node, on the compiled npm build). */
export const onDeno: boolean = "Deno" in globalThis;

/** The permissions the README lists for a Deno host: tests run hosts with exactly these. */
export const readmeHostPermissions: readonly string[] = [
  "--allow-run",
  "--allow-net=127.0.0.1",
  "--allow-env",
  "--allow-read",
  "--allow-write",
];

/** The permissions the README lists for a Deno guest (host services need more). */
export const readmeGuestPermissions: readonly string[] = ["--allow-net=127.0.0.1", "--allow-env"];

/**
 * The command that runs a script of this repository: `deno run -A x.ts` under Deno,
 * `node x.js` (its compiled twin) under Node.
 */
export function scriptCommand(url: URL): { exe: string; args: string[] } {
  const path = fileURLToPath(url);
  return onDeno
    ? { exe: process.execPath, args: ["run", "-A", path] }
    : { exe: process.execPath, args: [path.replace(/\.ts$/, ".js")] };
}

/** Runs `buf` (connect-go's client, from npm) with `args`. */
export function spawnBuf(...args: string[]): ChildProcess {
  const command = onDeno
    ? ["run", "-A", "npm:@bufbuild/buf@1.75.0", ...args]
    : [createRequire(import.meta.url).resolve("@bufbuild/buf/bin/buf"), ...args];
  return spawn(process.execPath, command, { stdio: ["ignore", "pipe", "pipe"] });
}

/** Collects every item of an async iterable, mapped. */
export async function collect<T, U>(
  items: AsyncIterable<T>,
  map: (item: T) => U,
): Promise<U[]> {
  const out: U[] = [];
  for await (const item of items) out.push(map(item));
  return out;
}

/** A logger that keeps every entry it is given, at every level. */
export function memoryLogger(): { logger: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const logger = new Logger({
    level: LogLevel.Trace,
    write: (line) => entries.push(decodeLogEntry(line)!),
  });
  return { logger, entries };
}

/** Whether `pid` has stopped running (gone, or a zombie nobody reaped yet). */
export function isGone(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/** The live (non-zombie) processes in process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // Fields after the ")" that closes the command name: state, ppid, pgrp, …
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(pgrp) === pgid && state !== "Z") members.push(Number(name));
    } catch {
      // The process ended while we looked.
    }
  }
  return members;
}

/** Polls `condition` every 10 ms for up to `ms`; true as soon as it holds. */
export async function waitUntil(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return condition();
}

/** `promise`, or a rejection naming `what` once `ms` pass first. */
export function within<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves once `signal` aborts; rejects naming `what` if it has not within `ms`. */
export function abortedWithin(signal: AbortSignal, ms: number, what: string): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return within(
    what,
    new Promise<void>((resolve) =>
      signal.addEventListener("abort", () => resolve(), { once: true })
    ),
    ms,
  );
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(): { path: string; [Symbol.dispose](): void } {
  const path = mkdtempSync(join(tmpdir(), "ftl-plugin-test-"));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

/** The repository's root (the test files run from tests/ on Deno, npm/tests/ on Node). */
export const repoRoot: string = fileURLToPath(new URL(onDeno ? "../" : "../../", import.meta.url));

/** The runtimes a plugin or host can run on. */
export type Runtime = "deno" | "node";

/** The deno executable: this process's on Deno, `DENO_BIN` (set by test:npm) on Node. */
export function denoExecutable(): string {
  const deno = onDeno ? process.execPath : process.env.DENO_BIN;
  if (!deno) throw new Error("set DENO_BIN to the deno executable (deno task test:npm does)");
  return deno;
}

/** The command that runs the echo example plugin on `runtime`. */
export function echoGuestCommand(runtime: Runtime): { exe: string; args: string[] } {
  if (runtime === "deno") {
    return {
      exe: denoExecutable(),
      args: ["run", "-A", join(repoRoot, "examples/echo/plugin.ts")],
    };
  }
  const compiled = join(repoRoot, "npm/examples/echo/plugin.js");
  if (!existsSync(compiled)) throw new Error(`${compiled} is missing: run deno task build:npm`);
  return { exe: onDeno ? "node" : process.execPath, args: [compiled] };
}

/** A guest process started by {@linkcode startGuest}. */
export interface RunningGuest {
  /** The process. */
  child: ChildProcess;
  /** Its URL, from its "serving on" log line. */
  url: URL;
  /** Every line it wrote to stderr so far. */
  stderrLines: string[];
  /** Settles once the process has exited and its stdio has closed. */
  exited: Promise<{ code: number | null; signal: string | null }>;
  /** SIGKILLs it (if still running) and waits for it. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a guest on a free port with LOG_LEVEL=debug and waits for its "serving on"
 * line. FTL_BIND can be overridden in `env`.
 */
export async function startGuest(
  command: { exe: string; args: string[] },
  env: Record<string, string> = {},
): Promise<RunningGuest> {
  const child = spawn(command.exe, command.args, {
    env: { ...process.env, FTL_BIND: "http://127.0.0.1:0", LOG_LEVEL: "debug", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal }))
  );
  const stderrLines: string[] = [];
  const dispose = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };
  try {
    const url = await new Promise<URL>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`guest did not serve within 30 s:\n${stderrLines.join("\n")}`)),
        30_000,
      );
      exited.then(() => clearTimeout(timer));
      createInterface({ input: child.stderr! }).on("line", (line) => {
        stderrLines.push(line);
        const match = /^serving on (\S+)$/.exec(decodeLogEntry(line)?.message ?? "");
        if (match) {
          clearTimeout(timer);
          resolve(new URL(match[1]));
        }
      });
      exited.then(({ code }) =>
        reject(new Error(`guest exited (${code}) before serving:\n${stderrLines.join("\n")}`))
      );
    });
    return { child, url, stderrLines, exited, [Symbol.asyncDispose]: dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}
