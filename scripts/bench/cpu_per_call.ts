/**
 * CPU time per call of the Node echo guest, for before/after comparisons of one change:
 * on this shared machine it is steadier than requests per second. Runs the guest from
 * each npm build in turn (A, B, A, B, …), loads it with h2load after a warm-up, and
 * reads the guest's own user + system time from /proc.
 *
 *   deno run -A scripts/bench/cpu_per_call.ts <npm build A> <npm build B> [grpc|connect|grpc-undeclared] [rounds]
 *
 * `grpc-undeclared` loads the guest from a node:http2 client that declares no
 * content-length, as grpc-go and grpc-js do (h2load always declares one).
 *
 * (Make build A with `git stash && deno task build:npm && cp -r npm /tmp/npm-before &&
 * git stash pop && deno task build:npm`, then pass `/tmp/npm-before npm`.)
 *
 * @module
 */
import { join } from "node:path";
import { freePort, waitForPort } from "./_util.ts";
import { cpuMicros } from "./measure.ts";

const [before, after, protocol = "grpc", roundsText = "5"] = Deno.args;
if (!before || !after) {
  console.error(
    "usage: cpu_per_call.ts <npm build A> <npm build B> [grpc|connect|grpc-undeclared] [rounds]",
  );
  Deno.exit(2);
}
const CALLS = 100_000;
const WARM_UP = 40_000;

const body = protocol === "connect" ? new Uint8Array([0x78, 0x00]) : new Uint8Array(5);
const headers = protocol !== "connect"
  ? ["content-type: application/grpc", "te: trailers"]
  : ["content-type: application/proto", "connect-protocol-version: 1"];

// 4 sessions with 16 calls in flight on each, as h2load -c 4 -m 16, declaring no length.
const undeclaredLoad = `
import * as http2 from "node:http2";
const [url, count] = [process.argv[1], Number(process.argv[2])];
const sessions = Array.from({ length: 4 }, () => http2.connect(new URL(url).origin));
const path = new URL(url).pathname;
let left = count;
const call = (session) => new Promise((resolve, reject) => {
  const stream = session.request({ ":method": "POST", ":path": path,
    "content-type": "application/grpc", te: "trailers" });
  stream.on("data", () => {});
  stream.on("end", resolve);
  stream.on("error", reject);
  stream.end(Buffer.alloc(5));
});
const worker = async (session) => { while (left-- > 0) await call(session); };
await Promise.all(sessions.flatMap((s) => Array.from({ length: 16 }, () => worker(s))));
for (const s of sessions) s.close();
`;

async function load(url: string, count: number, file: string): Promise<void> {
  if (protocol !== "grpc-undeclared") return await h2load(url, count, file);
  const out = await new Deno.Command("node", {
    args: ["--input-type=module", "-e", undeclaredLoad, url, String(count)],
  }).output();
  if (!out.success) throw new Error(`load failed:\n${new TextDecoder().decode(out.stderr)}`);
}

async function h2load(url: string, count: number, file: string): Promise<void> {
  const args = ["-n", String(count), "-c", "4", "-m", "16", "-d", file];
  for (const h of headers) args.push("-H", h);
  const out = await new Deno.Command("h2load", { args: [...args, url] }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!text.includes(`${count} succeeded`)) throw new Error(`h2load failed:\n${text}`);
}

async function nsPerCall(build: string, file: string): Promise<number> {
  const port = freePort();
  const child = new Deno.Command("node", {
    args: [join(build, "examples/echo/plugin.js")],
    env: { FTL_BIND: `http://127.0.0.1:${port}` },
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitForPort(port);
    const url = `http://127.0.0.1:${port}/echo.v1.EchoService/Ping`;
    await load(url, WARM_UP, file);
    const start = cpuMicros(child.pid);
    await load(url, CALLS, file);
    return ((cpuMicros(child.pid) - start) * 1000) / CALLS;
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const file = await Deno.makeTempFile();
await Deno.writeFile(file, body);
try {
  const a: number[] = [];
  const b: number[] = [];
  for (let round = 0; round < Number(roundsText); round++) {
    a.push(await nsPerCall(before, file));
    b.push(await nsPerCall(after, file));
  }
  const show = (xs: number[]) => xs.map((x) => (x / 1000).toFixed(1)).join(" ");
  console.log(`${protocol} Ping, CPU µs per call of the guest process`);
  console.log(`  A ${before}: ${show(a)}; median ${(median(a) / 1000).toFixed(1)}`);
  console.log(`  B ${after}: ${show(b)}; median ${(median(b) / 1000).toFixed(1)}`);
} finally {
  await Deno.remove(file);
}
