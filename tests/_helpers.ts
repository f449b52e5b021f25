/**
 * Test helpers shared by the suites: running child processes to the end and
 * collecting streams. Tests use node:child_process so that the same files run under
 * `deno test` and `node --test`.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";

/** What a finished child process left behind. */
export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Waits for `child` to exit, collecting its output. */
export function runToEnd(child: ChildProcess): Promise<Finished> {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr?.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs `buf` (connect-go's client, from npm) with `args`. */
export function spawnBuf(...args: string[]): ChildProcess {
  return spawn(process.execPath, ["run", "-A", "npm:@bufbuild/buf@1.75.0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
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
