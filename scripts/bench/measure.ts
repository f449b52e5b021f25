/**
 * How the bench measures one checkout of this repository (a {@link Tree}): start its echo
 * guest, load it with h2load, run its client fixtures, read a process's peak RSS.
 * `scripts/bench.ts` measures the checkout it lives in; `before_after.ts` measures two.
 *
 * Every fixture runs from its own tree (Deno: `tests/fixtures/<name>.ts` with the tree's
 * deno.json; Node: the tree's npm build), so a tree whose files moved measures its own
 * library, wherever its fixtures import it from.
 *
 * @module
 */
import { join } from "node:path";
import { freePort, waitForPort } from "./_util.ts";

/** A checkout of this repository and its npm build. */
export interface Tree {
  /** The checkout's root: Deno fixtures run from here, under its deno.json. */
  root: string;
  /** Its npm build (`deno task build:npm`), which holds the compiled Node fixtures. */
  npm: string;
}

/** The runtimes our guests and hosts run on. */
export type Runtime = "deno" | "node";

/** Which HTTP server a guest of ours runs on (`BENCH_SERVER`, read by bench_guest). */
export type ServerKind = "engine" | "native";

/** The wire protocols the bench loads our guests with. */
export type Protocol = "connect" | "grpc";

/** Our host → guest pairs the bench calls over: each runtime's host to its own guest. */
export const OUR_PAIRS: readonly (readonly [Runtime, Protocol, string])[] = [
  ["deno", "connect", "Deno host → Deno guest (Connect)"],
  ["deno", "grpc", "Deno host → Deno guest (gRPC)"],
  ["node", "connect", "Node host → Node guest (Connect)"],
  ["node", "grpc", "Node host → Node guest (gRPC)"],
];

/** The deno running the bench; Deno fixtures and guests run on it too. */
export const deno: string = Deno.execPath();

/** The command that runs fixture `tests/fixtures/<name>` of `tree` on `runtime`. */
export function fixtureCommand(tree: Tree, runtime: Runtime, name: string): [string, string[]] {
  return runtime === "deno"
    ? [deno, ["run", "-A", `tests/fixtures/${name}.ts`]]
    : ["node", [join(tree.npm, "tests/fixtures", `${name}.js`)]];
}

/** A server process started by {@link startProcess}. */
export interface Started {
  /** Its process id. */
  pid: number;
  /** SIGKILLs it and waits until it has exited. */
  stop: () => Promise<void>;
}

/** Starts a server process in `cwd` and waits until something listens on `port`. */
export async function startProcess(
  cwd: string,
  cmd: string,
  args: string[],
  port: number,
  env: Record<string, string> = {},
): Promise<Started> {
  const child = new Deno.Command(cmd, { args, env, cwd, stdout: "null", stderr: "null" }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
  };
  try {
    await waitForPort(port);
  } catch (error) {
    await stop();
    throw error;
  }
  return { pid: child.pid, stop };
}

/** Starts `tree`'s echo guest (tests/fixtures/bench_guest.ts) on `runtime` and `server`. */
export function startOurGuest(
  tree: Tree,
  runtime: Runtime,
  server: ServerKind,
  port: number,
): Promise<Started> {
  const [cmd, args] = fixtureCommand(tree, runtime, "bench_guest");
  return startProcess(tree.root, cmd, args, port, {
    FTL_BIND: `http://127.0.0.1:${port}`,
    BENCH_SERVER: server,
  });
}

/** Runs h2load `-c 4 -m 16` with `count` requests of `body`; returns its requests per second. */
export async function h2load(
  url: string,
  body: Uint8Array,
  headers: readonly string[],
  count: number,
): Promise<number> {
  const file = await Deno.makeTempFile();
  await Deno.writeFile(file, body);
  try {
    const args = ["-n", String(count), "-c", "4", "-m", "16", "-d", file];
    for (const h of headers) args.push("-H", h);
    const out = await new Deno.Command("h2load", { args: [...args, url] }).output();
    const text = new TextDecoder().decode(out.stdout);
    const rps = /finished in [^,]+, ([\d.]+) req\/s/.exec(text)?.[1];
    const succeeded = Number(/(\d+) succeeded/.exec(text)?.[1] ?? 0);
    if (!rps || succeeded < count * 0.99) throw new Error(`h2load failed:\n${text}`);
    return Number(rps);
  } finally {
    await Deno.remove(file);
  }
}

/** `message` in a gRPC envelope (uncompressed). */
export function grpcFrame(message: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + message.length);
  new DataView(frame.buffer).setUint32(1, message.length);
  frame.set(message, 5);
  return frame;
}

/** The request headers of a binary Connect unary call. */
export const connectHeaders: readonly string[] = [
  "content-type: application/proto",
  "connect-protocol-version: 1",
];
/** The request headers of a gRPC call. */
export const grpcHeaders: readonly string[] = ["content-type: application/grpc", "te: trailers"];

// h2load cannot send an empty body (it mmaps the file), so a Connect Ping carries one
// unknown field (number 15, varint 0), which protobuf ignores.
const connectPingBody = new Uint8Array([0x78, 0x00]);

/** h2load's `count` Pings in `protocol` to the echo guest on `port`; requests per second. */
export function pingLoad(port: number, protocol: Protocol, count: number): Promise<number> {
  const url = `http://127.0.0.1:${port}/echo.v1.EchoService/Ping`;
  return protocol === "grpc"
    ? h2load(url, grpcFrame(new Uint8Array()), grpcHeaders, count)
    : h2load(url, connectPingBody, connectHeaders, count);
}

/** Runs a client fixture in `cwd` and parses the JSON line it prints last. */
export async function runJsonLine<T>(cwd: string, cmd: string, args: string[]): Promise<T> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    env: { DENO_BIN: deno },
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
}

/** One run of a round-trip client (tests/fixtures/bench_client.ts). */
export interface RoundTrip {
  /** Median latency of the sequential calls, ms. */
  p50: number;
  /** 99th percentile latency of the sequential calls, ms. */
  p99: number;
  /** Calls per second with 32 in flight. */
  callsPerSecond: number;
}

/** Our host on `runtime` calling `tree`'s echo guest on the same runtime, in `protocol`. */
export function ourRoundTrip(tree: Tree, runtime: Runtime, protocol: Protocol): Promise<RoundTrip> {
  const [cmd, args] = fixtureCommand(tree, runtime, "bench_client");
  return runJsonLine(tree.root, cmd, [...args, "ours", runtime, protocol]);
}

/**
 * Our host on `runtime` receiving `messages` messages of one Count call from `tree`'s echo
 * guest, `runs` times after its warm-up; the time of each call, ms.
 */
export async function ourStream(
  tree: Tree,
  runtime: Runtime,
  protocol: Protocol,
  messages: number,
  runs: number,
): Promise<number[]> {
  const [cmd, args] = fixtureCommand(tree, runtime, "bench_stream");
  const extra = ["ours", runtime, protocol, String(messages), String(runs)];
  return (await runJsonLine<{ ms: number[] }>(tree.root, cmd, [...args, ...extra])).ms;
}

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in hundredths of a second. */
const TICK_US = 10_000;

/** The user + system CPU time process `pid` has used so far, µs (in steps of 10 ms). */
export function cpuMicros(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

/** The peak RSS (VmHWM) of process `pid` so far, MiB. */
export function peakRssMiB(pid: number): number {
  const kib = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1];
  return Number(kib) / 1024;
}

/** Runs `tree`'s memory load (tests/fixtures/bench_memory.ts, on Node) with `args`. */
export function memoryClient(tree: Tree, args: string[]): Promise<Record<string, number>> {
  const [cmd, fixture] = fixtureCommand(tree, "node", "bench_memory");
  return runJsonLine(tree.root, cmd, [...fixture, ...args]);
}

/** A load {@link memoryLoad} puts on a guest (bench_memory's modes). */
export type MemoryLoad = "streams" | "big" | "big-raw";

/**
 * Starts a fresh echo guest of `tree` on `runtime` and `server`, puts `load` on it (10 000
 * concurrent Pings on one connection, or a 100 MiB request) and reads its peak RSS, MiB,
 * before (`idle`) and after (`peak`); `result` is what the load reported.
 */
export async function memoryLoad(
  tree: Tree,
  runtime: Runtime,
  server: ServerKind,
  load: MemoryLoad,
): Promise<{ idle: number; peak: number; result: Record<string, number> }> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const guest = await startOurGuest(tree, runtime, server, port);
  try {
    // The guest's "listening" comes before it settles; one answered call first.
    await memoryClient(tree, ["streams", url, "1"]);
    const idle = peakRssMiB(guest.pid);
    const result = await memoryClient(tree, [load, url, load === "streams" ? "10000" : "100"]);
    return { idle, peak: peakRssMiB(guest.pid), result };
  } finally {
    await guest.stop();
  }
}

/** The median of `values` (of an even count, the mean of the middle two). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** `n` with thousands separators and at most `digits` decimals. */
export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits });

/** `n` with thousands separators and exactly `digits` decimals. */
export const fixed = (n: number, digits: number): string =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
