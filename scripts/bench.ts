/**
 * `deno task bench`: ours beside the peers, on this machine, in one go. Prints a table
 * per section and writes docs/BENCHMARKS.md (figures, ratios, an SVG chart, commands).
 *
 * Needs the npm build (`deno task build:npm`, for the Node guest and Node anchors; with
 * `NPM_OUT` set, as for build:npm, the build there) and h2load (Debian's nghttp2-client:
 * `apt-get install nghttp2-client`). Node rows run the first `node` on PATH.
 *
 * 1. Guest unary throughput, h2load -c 4 -m 16, Ping and Echo; our guests on each of their
 *    runtime's servers (the HTTP/2 engine and the runtime's own).
 * 2. Host → guest round trips: c=1 latency, c=32 throughput.
 * 3. Spawn to ready, 30 spawns per guest runtime.
 * 4. 50 plugins spawned at once.
 * 5. Log forwarding of 1 000 000 JSON lines beside a plain readline + JSON.parse loop.
 * 6. Server streaming: the time to receive 10 000 messages of one call.
 * 7. Memory under load: a guest's peak RSS after 10 000 concurrent streams on one
 *    connection, and after a 100 MiB request.
 * 8. Start-up (`--only=startup`): spawn → ready of each guest and the CLI's commands, beside
 *    bare runs of their runtimes in the same rounds (scripts/bench/startup.ts).
 *
 * Before and after a change (`--baseline=DIR`, DIR another checkout of this repository
 * with its own npm build): the rows of 1, 2, 6 and 7 that a restructuring could slow,
 * measured on DIR and on this checkout in the same run, interleaved
 * (scripts/bench/before_after.ts). `--rounds=N` sets how many rounds.
 *
 * `--only=N` runs section N alone and writes nothing; `--only=baseline` runs the before and
 * after comparison alone and writes its section into docs/BENCHMARKS.md in place;
 * `--quick` shortens every section; `--from=FILE` writes the report again from the figures
 * a run saved (it prints where), for when only the report's text changed.
 *
 *     deno task bench --only=baseline --baseline=../base
 *
 * @module
 */
import { spawn as spawnProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { spawn } from "../host.ts";
import { EchoRequestSchema, EchoService } from "../gen/echo/v1/echo_pb.ts";
import { decodeLogEntry, type LogEntry, Logger, LogLevel } from "../internal/log.ts";
import { freePort } from "./bench/_util.ts";
import {
  type BeforeAfter,
  beforeAfterSection,
  measureBeforeAfter,
  printVerdicts,
  spliceSection,
} from "./bench/before_after.ts";
import {
  connectHeaders,
  deno,
  fixtureCommand,
  fmt,
  grpcFrame,
  grpcHeaders,
  h2load,
  median,
  memoryLoad,
  OUR_PAIRS,
  ourRoundTrip,
  ourStream,
  pingLoad,
  type Protocol,
  type RoundTrip,
  runJsonLine,
  type Runtime,
  type ServerKind,
  startOurGuest,
  startProcess,
  type Tree,
} from "./bench/measure.ts";
import {
  measureStartup,
  type StartupResults,
  startupSection,
  startupTargets,
} from "./bench/startup.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
/** This checkout: what every section measures, and the "after" of a comparison. */
const here: Tree = { root, npm: Deno.env.get("NPM_OUT") || join(root, "npm") };
const quick = Deno.args.includes("--quick");
const requests = quick ? 20_000 : 100_000;
/** Unmeasured requests each server answers before the measured runs. */
const WARM_UP = quick ? 5_000 : 20_000;
/** `--name=value`'s value, if given. */
const flag = (name: string) =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const baselineDir = flag("baseline");
const roundsFlag = flag("rounds");

// ---------------------------------------------------------------- helpers

/** Starts a server process of this checkout that listens on `port`; returns a stopper. */
async function startServer(
  cmd: string,
  args: string[],
  port: number,
  env: Record<string, string> = {},
): Promise<() => Promise<void>> {
  return (await startProcess(root, cmd, args, port, env)).stop;
}

/** Runs of each measured Ping; the figure is their median. */
const PING_RUNS = quick ? 1 : 3;

async function medianOf(measure: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < PING_RUNS; i++) values.push(await measure());
  return median(values);
}

const echoBody = toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "hello" }));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

// ---------------------------------------------------------------- 1. guest unary throughput

interface ServerCase {
  name: string;
  runtime: Runtime;
  protocol: Protocol;
  start: (port: number) => Promise<() => Promise<void>>;
}

const ourGuest = (runtime: Runtime, server: ServerKind) => async (port: number) =>
  (await startOurGuest(here, runtime, server, port)).stop;
const nodeFixture = (name: string) => join(here.npm, "tests/fixtures", name);

/** Row names of our guests in section 1, by runtime and server. */
const OURS = {
  denoEngine: "ours, Deno guest, engine",
  denoNative: "ours, Deno guest, Deno.serve",
  nodeNative: "ours, Node guest, node:http2",
  nodeEngine: "ours, Node guest, engine",
} as const;

const serverCases: ServerCase[] = [
  {
    name: OURS.denoEngine,
    runtime: "deno",
    protocol: "connect",
    start: ourGuest("deno", "engine"),
  },
  { name: OURS.denoEngine, runtime: "deno", protocol: "grpc", start: ourGuest("deno", "engine") },
  {
    name: OURS.denoNative,
    runtime: "deno",
    protocol: "connect",
    start: ourGuest("deno", "native"),
  },
  {
    name: OURS.nodeNative,
    runtime: "node",
    protocol: "connect",
    start: ourGuest("node", "native"),
  },
  { name: OURS.nodeNative, runtime: "node", protocol: "grpc", start: ourGuest("node", "native") },
  {
    name: OURS.nodeEngine,
    runtime: "node",
    protocol: "connect",
    start: ourGuest("node", "engine"),
  },
  { name: OURS.nodeEngine, runtime: "node", protocol: "grpc", start: ourGuest("node", "engine") },
  {
    name: "@grpc/grpc-js server",
    runtime: "node",
    protocol: "grpc",
    start: (port) =>
      startServer("node", [nodeFixture("grpc_plugin.js")], port, {
        FTL_BIND: `http://127.0.0.1:${port}`,
      }),
  },
  {
    name: "connect-es router on Deno.serve",
    runtime: "deno",
    protocol: "connect",
    start: (port) =>
      startServer(
        deno,
        ["run", "-A", "scripts/bench/deno_anchors.ts", "connect", String(port)],
        port,
      ),
  },
  {
    name: "connect-es connectNodeAdapter",
    runtime: "node",
    protocol: "connect",
    start: (port) =>
      startServer("node", [nodeFixture("bench_node_anchors.js"), "connect", String(port)], port),
  },
  {
    name: "connect-es connectNodeAdapter",
    runtime: "node",
    protocol: "grpc",
    start: (port) =>
      startServer("node", [nodeFixture("bench_node_anchors.js"), "connect", String(port)], port),
  },
  {
    name: "raw Deno.serve (fixed bytes)",
    runtime: "deno",
    protocol: "connect",
    start: (port) =>
      startServer(deno, ["run", "-A", "scripts/bench/deno_anchors.ts", "raw", String(port)], port),
  },
  {
    name: "raw node:http2 streams (fixed bytes)",
    runtime: "node",
    protocol: "connect",
    start: (port) =>
      startServer("node", [nodeFixture("bench_node_anchors.js"), "raw", String(port)], port),
  },
  {
    // gRPC cannot answer without trailers: its ceiling sends fixed bytes and trailers.
    name: "raw node:http2 streams (fixed bytes and trailers)",
    runtime: "node",
    protocol: "grpc",
    start: (port) =>
      startServer("node", [nodeFixture("bench_node_anchors.js"), "raw-grpc", String(port)], port),
  },
];

interface ThroughputRow {
  name: string;
  runtime: string;
  protocol: string;
  ping: number;
  echo: number;
}

async function guestThroughput(): Promise<ThroughputRow[]> {
  const rows: ThroughputRow[] = [];
  for (const c of serverCases) {
    const port = freePort();
    const stop = await c.start(port);
    try {
      const base = `http://127.0.0.1:${port}/echo.v1.EchoService`;
      const raw = c.name.startsWith("raw");
      // Every server gets the same unmeasured warm-up first, so that no figure
      // includes a JIT's first seconds.
      await pingLoad(port, c.protocol, WARM_UP);
      const ping = await medianOf(() => pingLoad(port, c.protocol, requests));
      const echo = raw
        ? NaN
        : c.protocol === "grpc"
        ? await h2load(`${base}/Echo`, grpcFrame(echoBody), grpcHeaders, requests)
        : await h2load(`${base}/Echo`, echoBody, connectHeaders, requests);
      rows.push({ name: c.name, runtime: c.runtime, protocol: c.protocol, ping, echo });
      console.log(`  ${c.name} (${c.protocol}): Ping ${fmt(ping)} req/s, Echo ${fmt(echo)} req/s`);
    } finally {
      await stop();
    }
  }
  return rows;
}

// ---------------------------------------------------------------- 2. host → guest round trips

interface RoundTripRow extends RoundTrip {
  name: string;
}

/** Runs of each round-trip client; each figure is the median of them. */
const CLIENT_RUNS = quick ? 1 : 3;

async function runClient(once: () => Promise<RoundTrip>): Promise<RoundTrip> {
  const runs: RoundTrip[] = [];
  for (let i = 0; i < CLIENT_RUNS; i++) runs.push(await once());
  return {
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    callsPerSecond: median(runs.map((r) => r.callsPerSecond)),
  };
}

function logTrip(name: string, result: RoundTrip): void {
  console.log(
    `  ${name}: p50 ${result.p50.toFixed(3)} ms, p99 ${result.p99.toFixed(3)} ms, ${
      fmt(result.callsPerSecond)
    } calls/s at c=32`,
  );
}

async function roundTrips(): Promise<RoundTripRow[]> {
  const rows: RoundTripRow[] = [];
  for (const [runtime, protocol, label] of OUR_PAIRS) {
    const name = `ours: ${label}`;
    const result = await runClient(() => ourRoundTrip(here, runtime, protocol));
    rows.push({ name, ...result });
    logTrip(name, result);
  }
  const port = freePort();
  const stop = await startServer("node", [nodeFixture("grpc_plugin.js")], port, {
    FTL_BIND: `http://127.0.0.1:${port}`,
  });
  try {
    const result = await runClient(() =>
      runJsonLine(root, "node", [nodeFixture("bench_client.js"), "grpcjs", String(port)])
    );
    const name = "anchor: grpc-js client → grpc-js server";
    rows.push({ name, ...result });
    logTrip(name, result);
  } finally {
    await stop();
  }
  return rows;
}

// ---------------------------------------------------------------- 3. spawn to ready

interface SpawnRow {
  runtime: string;
  ready: number[];
  listening: number[];
  seen: number[];
  goPoll: number[];
}

function memoryLogger(): { logger: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    entries,
    logger: new Logger({ level: LogLevel.Debug, write: (l) => entries.push(decodeLogEntry(l)!) }),
  };
}

async function spawnToReady(): Promise<SpawnRow[]> {
  const rows: SpawnRow[] = [];
  const spawns = quick ? 10 : 30;
  const slowStarter = "deno, listening after 1.2 s";
  for (const runtime of ["deno", "node", slowStarter] as const) {
    const row: SpawnRow = { runtime, ready: [], listening: [], seen: [], goPoll: [] };
    const dir = await Deno.makeTempDir();
    const command = runtime === "deno"
      ? { exe: deno, args: ["run", "-A", join(root, "examples/echo/plugin.ts")] }
      : runtime === "node"
      ? { exe: "node", args: [join(here.npm, "examples/echo/plugin.js")] }
      : {
        exe: deno,
        args: ["run", "-A", join(root, "tests/fixtures/test_plugin.ts")],
        env: { TEST_LISTEN_AFTER_MS: "1200" },
      };
    const count = runtime === slowStarter ? Math.min(spawns, 10) : spawns;
    for (let i = 0; i < count; i++) {
      const { logger, entries } = memoryLogger();
      const startedWall = Date.now();
      const started = performance.now();
      const plugin = await spawn({ name: "echo", dir, ...command, service: EchoService, logger });
      const readyMs = performance.now() - started;
      await plugin.stop();
      const serving = entries.find((e) => e.message.startsWith("serving on "));
      // The guest's own clock says when it was listening (ms resolution).
      const listeningMs = serving?.time ? Date.parse(serving.time) - startedWall : NaN;
      row.ready.push(readyMs);
      row.listening.push(listeningMs);
      row.seen.push(readyMs - listeningMs);
      // Go's rule: first ping at once, then every 50 ms.
      row.goPoll.push(Math.ceil(listeningMs / 50) * 50);
    }
    await Deno.remove(dir, { recursive: true });
    for (const list of [row.ready, row.listening, row.seen, row.goPoll]) list.sort((a, b) => a - b);
    console.log(
      `  ${runtime} guest: ready p50 ${percentile(row.ready, 0.5).toFixed(1)} ms; ` +
        `listening p50 ${percentile(row.listening, 0.5).toFixed(0)} ms; ` +
        `seen after listening p50 ${percentile(row.seen, 0.5).toFixed(1)} ms; ` +
        `a 50 ms poll: p50 ${percentile(row.goPoll, 0.5).toFixed(0)} ms`,
    );
    rows.push(row);
  }
  return rows;
}

// ---------------------------------------------------------------- 4. 50 at once

async function fiftyAtOnce(): Promise<{ allReadyMs: number; rssPerPluginMiB: number }> {
  const rss = () =>
    Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1]) / 1024;
  const logger = new Logger({ level: LogLevel.Error, write: () => {} });
  const base = await Deno.makeTempDir();
  const before = rss();
  const started = performance.now();
  const plugins = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    spawn({
      name: `p${i}`,
      dir: `${base}/p${i}`,
      exe: deno,
      args: ["run", "-A", join(root, "examples/echo/plugin.ts")],
      service: EchoService,
      logger,
    })));
  const allReadyMs = performance.now() - started;
  const perPlugin = (rss() - before) / 50;
  await Promise.all(plugins.map((p) => p.stop()));
  await Deno.remove(base, { recursive: true });
  console.log(
    `  50 Deno guests: all ready in ${fmt(allReadyMs)} ms; host RSS +${
      perPlugin.toFixed(2)
    } MiB per plugin`,
  );
  return { allReadyMs, rssPerPluginMiB: perPlugin };
}

// ---------------------------------------------------------------- 5. log forwarding

async function logForwarding(): Promise<{ ours: number; plain: number; mbPerSecond: number }> {
  const lines = quick ? 200_000 : 1_000_000;
  const env = { TEST_PRINT: "json-many", TEST_LINES: String(lines), FTL_BIND: "" };
  const fixture = join(root, "tests/fixtures/test_plugin.ts");

  // Ours: spawn() mirrors every line through a logger that counts.
  let count = 0;
  let bytes = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  const logger = new Logger({
    level: LogLevel.Trace,
    write: (line) => {
      bytes += line.length;
      if (++count === lines) done();
    },
  });
  const dir = await Deno.makeTempDir();
  const started = performance.now();
  const plugin = await spawn({
    name: "bench",
    dir,
    exe: deno,
    args: ["run", "-A", fixture],
    env: { TEST_PRINT: "json-many", TEST_LINES: String(lines) },
    service: EchoService,
    logger,
  });
  await finished;
  const oursSeconds = (performance.now() - started) / 1000;
  await plugin.stop();
  await Deno.remove(dir, { recursive: true });

  // The plain loop: readline over the child's stderr, JSON.parse each line.
  let plainCount = 0;
  const plainStarted = performance.now();
  await new Promise<void>((resolve) => {
    const child = spawnProcess(deno, ["run", "-A", fixture], {
      env: { ...Deno.env.toObject(), ...env, FTL_BIND: "http://127.0.0.1:0" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      try {
        JSON.parse(line);
        if (++plainCount === lines) {
          child.kill("SIGKILL");
          resolve();
        }
      } catch { /* the marker and the plugin's own lines */ }
    });
  });
  const plainSeconds = (performance.now() - plainStarted) / 1000;
  const ours = lines / oursSeconds;
  const plain = lines / plainSeconds;
  const mbPerSecond = bytes / 1e6 / oursSeconds;
  console.log(
    `  ours: ${fmt(ours)} lines/s (${mbPerSecond.toFixed(1)} MB/s); plain readline + JSON.parse: ${
      fmt(plain)
    } lines/s`,
  );
  return { ours, plain, mbPerSecond };
}

// ---------------------------------------------------------------- 6. server streaming

interface StreamRow {
  name: string;
  /** Median time to receive every message of one call, ms. */
  ms: number;
  /** Every measured call, ms, sorted. */
  all: number[];
}

/** Messages in one streamed answer. */
const STREAM_MESSAGES = 10_000;
/** Measured calls per client (after its own unmeasured ones); the figure is their median. */
const STREAM_RUNS = quick ? 3 : 9;

async function serverStreaming(): Promise<StreamRow[]> {
  const rows: StreamRow[] = [];
  const push = (name: string, all: number[]) => {
    all.sort((a, b) => a - b);
    const row = { name, ms: all[Math.floor(all.length / 2)], all };
    rows.push(row);
    console.log(
      `  ${name}: ${row.ms.toFixed(1)} ms for ${
        fmt(STREAM_MESSAGES)
      } messages (median of ${all.length}; ${all[0].toFixed(1)}–${all.at(-1)!.toFixed(1)})`,
    );
  };
  for (const [runtime, protocol, label] of OUR_PAIRS) {
    push(
      `ours: ${label}`,
      await ourStream(here, runtime, protocol, STREAM_MESSAGES, STREAM_RUNS),
    );
  }
  const port = freePort();
  const [node, fixture] = fixtureCommand(here, "node", "bench_stream");
  const server = await startProcess(root, node, [...fixture, "grpcjs-server", String(port)], port);
  try {
    const args = [...fixture, "grpcjs", String(port), String(STREAM_MESSAGES), String(STREAM_RUNS)];
    push(
      "anchor: grpc-js client → grpc-js server",
      (await runJsonLine<{ ms: number[] }>(root, node, args)).ms,
    );
  } finally {
    await server.stop();
  }
  return rows;
}

// ---------------------------------------------------------------- 7. memory under load

interface MemoryRow {
  name: string;
  runtime: Runtime;
  server: ServerKind;
  /** Peak RSS once started, before any load, MiB. */
  idleMiB: number;
  /** Peak RSS after 10 000 concurrent streams on one connection, MiB. */
  streamsMiB: number;
  streamsAnswered: number;
  streamsRefused: number;
  /** Peak RSS after one 100 MiB request from our host's transport, MiB (another guest). */
  bigMiB: number;
  /** The Connect code that call failed with (8: RESOURCE_EXHAUSTED). */
  bigCode: number;
  /** Peak RSS after the same request written on node:http2 as fast as it goes (a third). */
  bigRawMiB: number;
  /** MiB of that request the client got to write before the answer. */
  bigRawSentMiB: number;
}

/** What docs/RELIABILITY.md recorded before the engine, MiB (Deno: Deno.serve). */
const RELIABILITY_MIB = {
  deno: { streams: 220, big: "59–62", bigMax: 62 },
  node: { streams: 358, big: "67–69", bigMax: 69 },
} as const;

async function memoryUnderLoad(): Promise<MemoryRow[]> {
  const rows: MemoryRow[] = [];
  for (
    const [name, runtime, server] of [
      [OURS.denoEngine, "deno", "engine"],
      [OURS.denoNative, "deno", "native"],
      [OURS.nodeNative, "node", "native"],
      [OURS.nodeEngine, "node", "engine"],
    ] as const
  ) {
    const streams = await memoryLoad(here, runtime, server, "streams");
    const big = await memoryLoad(here, runtime, server, "big");
    const bigRaw = await memoryLoad(here, runtime, server, "big-raw");
    const row: MemoryRow = {
      name,
      runtime,
      server,
      idleMiB: Math.max(streams.idle, big.idle, bigRaw.idle),
      streamsMiB: streams.peak,
      streamsAnswered: streams.result.ok,
      streamsRefused: streams.result.refused,
      bigMiB: big.peak,
      bigCode: big.result.code,
      bigRawMiB: bigRaw.peak,
      bigRawSentMiB: bigRaw.result.sentMiB,
    };
    rows.push(row);
    console.log(
      `  ${name}: idle ${row.idleMiB.toFixed(0)} MiB; 10 000 streams (${row.streamsAnswered} ` +
        `answered, ${row.streamsRefused} refused) ${row.streamsMiB.toFixed(0)} MiB; ` +
        `100 MiB request (code ${row.bigCode}) ${row.bigMiB.toFixed(0)} MiB; ` +
        `written raw (${row.bigRawSentMiB} MiB sent) ${row.bigRawMiB.toFixed(0)} MiB`,
    );
  }
  return rows;
}

// ---------------------------------------------------------------- 8. start-up

/** Rounds of the start-up section; each figure is the median of them. */
const STARTUP_RUNS = quick ? 8 : 20;

function startup(): Promise<StartupResults> {
  return measureStartup(here, STARTUP_RUNS);
}

// ---------------------------------------------------------------- run and report

/** The runtimes' versions, as the report names them. */
async function versions(): Promise<string> {
  const node = await new Deno.Command("node", { args: ["--version"] }).output();
  return `Deno ${Deno.version.deno}, Node ${new TextDecoder().decode(node.stdout).trim()}`;
}

/** Writes docs/BENCHMARKS.md, formatted as `deno fmt` wants it (the test task checks it). */
async function writeReport(md: string, ...others: string[]): Promise<void> {
  const path = join(root, "docs/BENCHMARKS.md");
  await Deno.writeTextFile(path, md);
  await new Deno.Command(deno, {
    args: ["fmt", path, ...others],
    stdout: "null",
    stderr: "null",
  }).output();
}

/** The before-and-after comparison against `--baseline=DIR`, if given. */
async function beforeAfter(): Promise<BeforeAfter | undefined> {
  if (!baselineDir) return undefined;
  const rounds = Number(roundsFlag ?? (quick ? 3 : 5));
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds=${roundsFlag}?`);
  const dir = resolve(baselineDir);
  console.log(`# before (${dir}) and after (${root}), ${rounds} round(s)`);
  const result = await measureBeforeAfter({ root: dir, npm: join(dir, "npm") }, here, {
    rounds,
    requests,
    warmUp: WARM_UP,
    streamMessages: STREAM_MESSAGES,
    streamRuns: quick ? 3 : 5,
    quick,
  });
  printVerdicts(result);
  return result;
}

// `--from=FILE` writes the report again from a run's saved figures (after its text
// changed) instead of measuring; every run saves them to RESULTS_FILE.
const RESULTS_FILE = join(Deno.env.get("TMPDIR") ?? "/tmp", "ftl-bench-results.json");
const from = flag("from");

// `--only=N` runs section N alone (no report is written then), for quick looks;
// `--only=baseline` writes its own section, which stands alone, into the report in place.
const only = flag("only");
if (only === "baseline") {
  if (!baselineDir && !from) throw new Error("--only=baseline needs --baseline=DIR");
  const file = join(Deno.env.get("TMPDIR") ?? "/tmp", "ftl-bench-baseline.json");
  let result: BeforeAfter;
  if (from) result = JSON.parse(await Deno.readTextFile(from));
  else {
    result = (await beforeAfter())!;
    await Deno.writeTextFile(file, JSON.stringify(result));
    console.log(`saved the figures to ${file}`);
  }
  const doc = await Deno.readTextFile(join(root, "docs/BENCHMARKS.md"));
  await writeReport(spliceSection(doc, beforeAfterSection(result, await versions())));
  console.log(`wrote its section of docs/BENCHMARKS.md`);
  Deno.exit(0);
}
if (only) {
  const sections: Record<string, () => Promise<unknown>> = {
    "1": guestThroughput,
    "2": roundTrips,
    "3": spawnToReady,
    "4": fiftyAtOnce,
    "5": logForwarding,
    "6": serverStreaming,
    "7": memoryUnderLoad,
    "8": startup,
    startup,
  };
  const section = sections[only];
  if (!section) {
    throw new Error(`--only takes 1 to 8, startup or baseline, not ${JSON.stringify(only)}`);
  }
  await section();
  Deno.exit(0);
}
/** Everything one run measured: what the report is made of. */
interface Results {
  date: string;
  quick: boolean;
  throughput: ThroughputRow[];
  trips: RoundTripRow[];
  spawnRows: SpawnRow[];
  fifty: { allReadyMs: number; rssPerPluginMiB: number };
  logs: { ours: number; plain: number; mbPerSecond: number };
  streamRows: StreamRow[];
  memoryRows: MemoryRow[];
  /** Section 8; runs saved before it existed have none. */
  startup?: StartupResults;
  /** The comparison with `--baseline`, if the run had one. */
  beforeAfter?: BeforeAfter;
}

async function measureEverything(): Promise<Results> {
  console.log(`# 1. guest unary throughput (h2load -n ${requests} -c 4 -m 16)`);
  const throughput = await guestThroughput();
  console.log("# 2. host → guest round trips");
  const trips = await roundTrips();
  console.log("# 3. spawn to ready");
  const spawnRows = await spawnToReady();
  console.log("# 4. 50 plugins at once");
  const fifty = await fiftyAtOnce();
  console.log("# 5. log forwarding");
  const logs = await logForwarding();
  console.log(`# 6. server streaming (${fmt(STREAM_MESSAGES)} messages)`);
  const streamRows = await serverStreaming();
  console.log("# 7. memory under load (peak RSS of the guest)");
  const memoryRows = await memoryUnderLoad();
  console.log("# 8. start-up");
  const startupResults = await startup();
  const compared = await beforeAfter();
  const date = new Date().toISOString().slice(0, 10);
  return {
    date,
    quick,
    throughput,
    trips,
    spawnRows,
    fifty,
    logs,
    streamRows,
    memoryRows,
    startup: startupResults,
    beforeAfter: compared,
  };
}

let results: Results;
if (from) {
  results = JSON.parse(await Deno.readTextFile(from));
  if (results.quick !== quick) throw new Error(`${from} is from a run with quick=${results.quick}`);
} else {
  results = await measureEverything();
  await Deno.writeTextFile(RESULTS_FILE, JSON.stringify(results));
  console.log(`saved the figures to ${RESULTS_FILE}`);
}
const { date, throughput, trips, spawnRows, fifty, logs, streamRows, memoryRows } = results;

const find = (name: string, protocol: string) =>
  throughput.find((r) => r.name === name && r.protocol === protocol)!;
const grpcJs = find("@grpc/grpc-js server", "grpc");
const nodeGrpc = find(OURS.nodeNative, "grpc");
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const anchorTrip = trips.at(-1)!;

/** what, target, measured, met (null: reported, no target). */
const targets: [string, string, string, boolean | null][] = [];
for (
  const [ours, ceiling] of [
    [find(OURS.denoEngine, "connect"), find("raw Deno.serve (fixed bytes)", "connect")],
    [find(OURS.denoEngine, "grpc"), undefined],
    // The Node guest's default server is the engine since 2026-12-01.
    [
      find(OURS.nodeEngine, "grpc"),
      find("raw node:http2 streams (fixed bytes and trailers)", "grpc"),
    ],
    [find(OURS.nodeEngine, "connect"), find("raw node:http2 streams (fixed bytes)", "connect")],
  ] as const
) {
  targets.push([
    `guest Ping: ${ours.name} (${ours.protocol}) vs grpc-js server`,
    "≥ 1.3×",
    ratio(ours.ping, grpcJs.ping),
    ours.ping / grpcJs.ping >= 1.3,
  ]);
  // Deno has no raw server that sends trailers, so its gRPC row has no raw ceiling.
  if (!ceiling) continue;
  targets.push([
    `guest Ping: ${ours.name} (${ours.protocol}) vs its runtime's raw ceiling`,
    "≥ 0.7×",
    ratio(ours.ping, ceiling.ping),
    ours.ping / ceiling.ping >= 0.7,
  ]);
}
const denoEngineVsNative = find(OURS.denoEngine, "connect").ping /
  find(OURS.denoNative, "connect").ping;
targets.push([
  "guest Ping: Deno guest (connect), engine vs Deno.serve",
  "≥ 0.9×",
  `${denoEngineVsNative.toFixed(2)}×`,
  denoEngineVsNative >= 0.9,
]);
for (const protocol of ["connect", "grpc"]) {
  targets.push([
    `guest Ping: Node guest (${protocol}), engine vs node:http2 (why the engine is the Node default)`,
    "report",
    ratio(find(OURS.nodeEngine, protocol).ping, find(OURS.nodeNative, protocol).ping),
    null,
  ]);
}
/** Section 2's ratios against the grpc-js pair in the run of 2026-11-25, before the engine. */
const TRIPS_BEFORE_ENGINE: Record<string, { c32: number; p50: number }> = {
  "ours: Deno host → Deno guest (Connect)": { c32: 3.53, p50: 0.49 },
  "ours: Node host → Node guest (Connect)": { c32: 3.35, p50: 0.54 },
  "ours: Node host → Node guest (gRPC)": { c32: 2.34, p50: 0.67 },
};
for (const trip of trips.slice(0, -1)) {
  const c32 = trip.callsPerSecond / anchorTrip.callsPerSecond;
  const p50 = trip.p50 / anchorTrip.p50;
  targets.push([`${trip.name}: c=32 vs grpc-js pair`, "≥ 1.5×", ratio(c32, 1), c32 >= 1.5]);
  targets.push([`${trip.name}: c=1 p50 vs grpc-js pair`, "≤ 0.8×", ratio(p50, 1), p50 <= 0.8]);
  const before = TRIPS_BEFORE_ENGINE[trip.name];
  if (!before) continue;
  targets.push([
    `${trip.name}: calls/s and p50 ratios no worse than on 2026-11-25`,
    `≥ ${before.c32.toFixed(2)}× / ≤ ${before.p50.toFixed(2)}×`,
    `${c32.toFixed(2)}× / ${p50.toFixed(2)}×`,
    c32 >= before.c32 && p50 <= before.p50,
  ]);
}
// Readiness is judged in section 8 ("the host notices readiness…"): section 3's "seen after
// listening" counts the guest's first answer on a fresh process as the host's delay.
targets.push(...startupTargets(results.startup));
targets.push([
  "log forwarding vs plain readline + JSON.parse",
  "≥ 0.8×",
  ratio(logs.ours, logs.plain),
  logs.ours / logs.plain >= 0.8,
]);
const streamAnchor = streamRows.at(-1)!;
for (const row of streamRows.slice(0, -1)) {
  targets.push([
    `server streaming ${fmt(STREAM_MESSAGES)} messages, ${row.name}: time vs grpc-js pair`,
    "≤ 1.0×",
    ratio(row.ms, streamAnchor.ms),
    row.ms <= streamAnchor.ms,
  ]);
}
for (const row of memoryRows) {
  const before = RELIABILITY_MIB[row.runtime];
  targets.push([
    `peak RSS, ${row.name}, 10 000 streams on one connection`,
    `≤ ${before.streams} MiB`,
    `${row.streamsMiB.toFixed(0)} MiB`,
    // RELIABILITY.md gives whole MiB.
    Math.round(row.streamsMiB) <= before.streams,
  ]);
  targets.push([
    `peak RSS, ${row.name}, a 100 MiB request`,
    `≤ ${before.bigMax} MiB`,
    `${row.bigMiB.toFixed(0)} MiB`,
    Math.round(row.bigMiB) <= before.bigMax,
  ]);
}

const maxPing = Math.max(...throughput.map((r) => r.ping));
const barHeight = 22;
const chartRows = throughput.map((r, i) => {
  const width = Math.round((r.ping / maxPing) * 420);
  const y = 10 + i * barHeight;
  const colour = r.name.startsWith("ours")
    ? "#2b7bb9"
    : r.name.startsWith("raw")
    ? "#999"
    : "#e08a2b";
  return `<text x="0" y="${y + 14}" font-size="11">${r.name} (${r.protocol})</text>` +
    `<rect x="250" y="${y}" width="${width}" height="16" fill="${colour}"/>` +
    `<text x="${255 + width}" y="${y + 13}" font-size="11">${fmt(r.ping)}</text>`;
});
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="760" height="${
  20 + throughput.length * barHeight
}" font-family="sans-serif">${chartRows.join("")}</svg>\n`;
await Deno.mkdir(join(root, "docs"), { recursive: true });
await Deno.writeTextFile(join(root, "docs/benchmarks-ping.svg"), svg);

/** What is known of each target this run missed. */
function missedNotes(): string {
  const missed = (prefix: string) =>
    targets.some(([w, , , ok]) => ok === false && w.startsWith(prefix));
  const notes: string[] = [];
  if (missed("peak RSS") && memoryRows.some((r) => r.runtime === "node")) {
    const node = memoryRows.filter((r) => r.runtime === "node");
    notes.push(
      "- Peak RSS of a Node guest under a 100 MiB request: the figures to beat (67–69 MiB) were " +
        "measured on Node 20. On this run's Node the guest's idle peak is already " +
        node.map((r) => `${r.idleMiB.toFixed(0)} MiB (${r.name})`).join(", ") +
        ", and the refused request adds " +
        node.map((r) => `${(r.bigMiB - r.idleMiB).toFixed(0)} MiB`).join(" and ") +
        " to it: the miss is the runtime's baseline, not the request.",
    );
  }
  if (missed("start-up")) {
    notes.push(
      "- Start-up: section 8 says where a guest's start-up goes, step by step, beside the " +
        "bare runtimes measured in the same rounds.",
    );
  }
  if (missed("log forwarding")) {
    notes.push(
      "- Log forwarding: the plain loop itself swings by a quarter from run to run (647k to " +
        "835k lines/s in the full runs of 2026-11-25, ours 640k to 685k). Plain FTL lines " +
        "are read by a scanner and copied, not parsed and " +
        "encoded again; 0.81–0.94× of the plain loop over three runs when it went in. Both " +
        "loops read the same plugin, which writes its lines on the other core: in a profile " +
        "of ours the host's thread was idle 13% of the time, waiting for lines, and JSON.parse " +
        "no longer showed. Lines with escapes, spaces or other keys take JSON.parse.",
    );
  }
  if (missed("guest Ping: ours, Node guest")) {
    notes.push(
      "- Node guest: its raw ceiling is node:http2's stream API answering fixed bytes without " +
        "looking at the request; ours reads the body, parses and encodes the messages, runs the " +
        "request gate and the handler. Over gRPC every answer also needs trailers (node:http2's " +
        "waitForTrailers, a wantTrailers event, a second HEADERS frame). Against node:http2's " +
        "compatibility API (the ceiling of earlier runs) the same guest measured 1.03× (Connect) " +
        "and 0.95× (gRPC). Against grpc-js, the gRPC row measured 1.46× in a run of section 1 " +
        "alone after the last changes here, and 1.29× in the full run before this one. In a " +
        "profile of the gRPC guest, node:http2's own JavaScript (header conversion both ways, " +
        "respond, stream set-up, the trailers) and the garbage collector take most of a call; " +
        "our code is about 5% of it. In two runs where this row missed, the raw " +
        "Connect-shaped server ran at 58–62k Pings/s (45–59k in earlier runs) while the " +
        "guest's CPU time per call was unchanged against the build before (7127731; median of " +
        "5 alternating runs of " +
        "`scripts/bench/cpu_per_call.ts`: Connect 26.1 → 25.4 µs, gRPC 29.7 → 30.7 µs, ranges " +
        `overlapping). In this run the raw Connect-shaped server made ${
          fmt(find("raw node:http2 streams (fixed bytes)", "connect").ping)
        } Pings/s and the guest on node:http2 ${
          fmt(find(OURS.nodeNative, "connect").ping)
        }; the same guest on the engine made ${fmt(find(OURS.nodeEngine, "connect").ping)} (${
          ratio(
            find(OURS.nodeEngine, "connect").ping,
            find("raw node:http2 streams (fixed bytes)", "connect").ping,
          )
        } that ceiling).`,
    );
  }
  if (targets.some(([w, , , ok]) => ok === false && w.includes("c=1 p50"))) {
    notes.push(
      "- c=1 latency: one call at a time leaves both processes idle most of the time (the " +
        "Node host's thread 64% idle in a profile), so a call's latency is mostly wake-ups, " +
        "which every client pays alike; on days when this machine wakes slowly the ratios close " +
        "in on 1. With fetch (Deno) and node:http2 (Node) as the hosts' clients, the grpc-js " +
        "pair's c=1 p50 was 0.33–0.42 ms over four full runs, the Deno host's 0.29–0.35 ms and " +
        "the Node host's 0.25–0.33 ms; the hosts' own HTTP/2 client then took 0.18–0.21 ms " +
        "(Deno) and 0.22–0.23 ms (Node) against 0.32–0.33 ms for the pair. Over gRPC, " +
        "node:http2 sends a unary answer's trailers in a write of their own (strace: HEADERS " +
        "and DATA in one writev, the trailing HEADERS in the next write), so the client wakes " +
        "twice per call; grpc-js's server pays the same.",
    );
  }
  if (targets.some(([w, , , ok]) => ok === false && w.includes("c=32"))) {
    notes.push(
      "- Host → guest at 32 in flight: host and guest share the machine's two cores, and the " +
        "grpc-js pair itself swings: it made 8 700–11 200 calls/s over the four full runs before " +
        "this one. Over one HTTP/2 connection host and plugin took turns (each busy 50–75% of " +
        "the time); calls now spread over two connections, which keeps both busy.",
    );
  }
  if (streamRows.slice(0, -1).some((r) => r.ms > streamAnchor.ms)) {
    const slower = streamRows.slice(0, -1).filter((r) => r.ms > streamAnchor.ms).map((r) =>
      `${r.name.replace("ours: ", "")} ${r.ms.toFixed(1)} ms (${ratio(r.ms, streamAnchor.ms)})`
    );
    notes.push(
      `- Server streaming: against the grpc-js pair's ${streamAnchor.ms.toFixed(1)} ms, ` +
        `${slower.join(", ")}. ` +
        "Why, from CPU profiles (`deno run --cpu-prof`) of a Deno host and a Deno guest over gRPC, " +
        "40 calls of 10 000 messages: the host is the busier side, about 6 µs of CPU per message " +
        "against the guest's 4.5, and on both sides most of it is connect-es's generic streaming " +
        "path, not HTTP/2. Its async-iterable pipeline (several async generator steps per " +
        "message) took 22% of the host's busy time and 28% of the guest's; its envelope reader " +
        "12% of the host's (each message's header and body copied out of an array of chunks, " +
        "shifted and put back); message encoding and creation 10% of the guest's; the garbage " +
        "collector 10% of each. The engine's own JavaScript was 11% of the host's time and 4% of " +
        "the guest's, and system calls are not it: the guest sent about 77 messages per " +
        "`sendto` (strace: 1 304 for 100 000 messages). grpc-js's server writes every message " +
        "in one synchronous loop and its client hands them out as stream events, with no async " +
        "step per message. Neither process was busy all the time (host 66%, guest 51% of the " +
        "profiled run): they take turns more than they overlap. On Node (`node --cpu-prof`, the " +
        "same 40 calls over gRPC, the guest on node:http2) the picture is the same with more " +
        "garbage: of each side's busy time the collector took 32% (host) and 19% (guest), " +
        "connect-es's pipeline 17% and 22%, protobuf's reader and writer 9% and 12%, the " +
        "engine's client 1.3% of the host's. A lean streaming path, as the unary calls have, " +
        "would take the pipeline out on both sides.",
    );
  }
  for (const trip of trips) {
    const before = TRIPS_BEFORE_ENGINE[trip.name];
    const missedTrip = targets.some(([w, , , ok]) =>
      ok === false && w === `${trip.name}: calls/s and p50 ratios no worse than on 2026-11-25`
    );
    if (!before || !missedTrip) continue;
    notes.push(
      `- ${trip.name}, against 2026-11-25: c=32 ${
        ratio(trip.callsPerSecond, anchorTrip.callsPerSecond)
      } the grpc-js pair's calls/s (then ${before.c32.toFixed(2)}×), c=1 p50 ${
        ratio(trip.p50, anchorTrip.p50)
      } its latency (then ${before.p50.toFixed(2)}×); the pair made ${
        fmt(anchorTrip.callsPerSecond)
      } calls/s at c=32 and ${anchorTrip.p50.toFixed(3)} ms at c=1 in this run (6 469 and 0.365 ` +
        `ms then), ours ${fmt(trip.callsPerSecond)} and ${trip.p50.toFixed(3)} ms.` +
        (trip.name.includes("Node guest")
          ? " The Node guest (node:http2, Node's default) is what bounds the Node rows: in " +
            "CPU profiles (`node --cpu-prof` of both) of the Node host making Echo calls at " +
            "c=32, the guest was busy 62% of the profiled run and the host 23%. Most of the " +
            "guest's time was node:http2's own JavaScript (header conversion both ways, " +
            "respond, stream set-up) and the garbage collector; for every answer with a body " +
            "node:http2 also builds an ERR_STREAM_DESTROYED error (Writable's errorBuffer, " +
            "after the stream closed under its last write; 6.6% of the guest's run, and the " +
            'same under h2load). With the guest on the engine (`server: "engine"`) the same ' +
            "host made 83–140k calls/s at c=32 (three rounds in each of two runs), against 33–46k with the " +
            "guest on node:http2."
          : ""),
    );
  }
  for (const [w, t, m, ok] of targets) {
    if (ok !== false || !w.startsWith("peak RSS")) continue;
    notes.push(`- ${w}: ${m} against ${t.replace("≤ ", "")} recorded in docs/RELIABILITY.md.`);
  }
  return notes.length === 0 ? "" : `\n### Targets not met, and why\n\n${notes.join("\n")}\n`;
}

/** The paragraph on the HTTP/2 engine, with this run's ratios. */
function engineNotes(): string {
  const memory = (name: string) => memoryRows.find((r) => r.name === name)!;
  const nodeRatio = (protocol: string) =>
    ratio(find(OURS.nodeEngine, protocol).ping, find(OURS.nodeNative, protocol).ping);
  return `### The HTTP/2 engine (2026-12-01)

Both guests now answer through \`internal/http2/\`, this package's own HTTP/2 (frames, HPACK,
one connection state machine for both roles, flow control), on a plain TCP socket instead of
Deno.serve or node:http2 (HTTP/1.1 connections, told by their first bytes, still go to Deno.serve
or node:http), and both
hosts make every call, unary and streaming, over its client instead of
Deno's fetch, node:http2 and the earlier \`internal/h2_client.ts\`. A request costs no Request,
Response or Headers object: its header block is decoded flat, the lean unary path takes the body
as bytes, and a whole answer (HEADERS, the message, any trailers) is framed into one buffer; what
several streams queue in one turn of the event loop goes out in one socket write. It sends
trailers, so the Deno guest answers gRPC, which it could not on Deno.serve.

What the ratios mean: "engine vs Deno.serve" (${
    ratio(find(OURS.denoEngine, "connect").ping, find(OURS.denoNative, "connect").ping)
  }) is the same guest code over two HTTP stacks, so it measures the stacks alone; "vs grpc-js" is
the gRPC server a Go host would otherwise be pointed at; a raw ceiling is the runtime's own server
answering fixed bytes, which the engine does not go through, so a ratio above 1 there says the
engine answers a real call faster than the runtime's own server sends fixed bytes. On Node the engine
runs on node:net: ${nodeRatio("connect")} (Connect) and ${
    nodeRatio("grpc")
  } (gRPC) the throughput of the same guest on node:http2, and
a peak of ${memory(OURS.nodeEngine).streamsMiB.toFixed(0)} MiB under 10 000 streams against ${
    memory(OURS.nodeNative).streamsMiB.toFixed(0)
  } MiB (section 7): why the engine is Node's default
too (\`server: "native"\` keeps node:http2).

Server streaming (section 6) takes a lean path on both sides, as unary calls do: a server-streaming
call in binary Connect or gRPC without compression or a timeout is answered by
\`internal/lean/stream.ts\` (one envelope per message, written straight to the engine's stream) and
read by \`internal/lean/stream_client.ts\` (envelopes cut from the engine's response chunks, what
has arrived handed over without waiting a turn); everything else goes through connect-es. Before
it, with connect-es's chain of async iterators on both sides, 10 000 messages took 1.03–1.30× the
grpc-js pair's time (\`--only=6\`, 2026-12-01); after, 0.29–0.41×.

The engine's rows move with the machine's load more than the others: the two full runs of
2026-12-01 gave its Deno guest 145 502 and 283 064 Connect Pings/s, Deno.serve 61 442 and 74 350. At these
rates the guest is CPU-bound on one core and h2load takes a share of the other, so whatever else
runs on the machine comes out of the guest's share.

In a CPU profile of the Deno guest under h2load (\`deno run --cpu-prof\`, 200 000 gRPC Pings,
\`-c 4 -m 16\`, 178k req/s), the guest was busy about 4.5 µs per call: socket writes
(\`op_write\`) 38% of that, the engine's JavaScript (connection, HPACK, server) 33%, the call
itself (router, lean unary path, envelope, protobuf) 15%, the garbage collector 6%.
`;
}

const md = `# Benchmarks

Measured by \`deno task bench\` (scripts/bench.ts) on ${date}, on this project's machine (2 cores,
shared and noisy), everything in one run so that the ratios compare like with like. ${await versions()}.

## Targets (ratios in the same run)

| what | target | measured | met |
| --- | --- | --- | --- |
${
  targets.map(([w, t, m, ok]) =>
    `| ${w} | ${t} | ${m} | ${ok === null ? "—" : ok ? "yes" : "**no**"} |`
  )
    .join("\n")
}
${missedNotes()}
## 1. Guest unary throughput

h2load, \`-n ${requests} -c 4 -m 16\` after an unmeasured warm-up of ${
  fmt(WARM_UP)
} Pings, requests per second (Ping: the median of ${PING_RUNS}
runs; Echo carries a 7-byte message). Our echo guest (\`tests/fixtures/bench_guest.ts\`) runs on
each of its runtime's two servers: "engine" is this package's HTTP/2 engine (\`server: "engine"\`,
the default on both runtimes); "Deno.serve" and "node:http2" are the runtimes' own
(\`server: "native"\`; Deno.serve sends no trailers, so it has no gRPC row). Each runtime's raw ceiling is
its own server answering fixed bytes, in its protocol's shape: a
gRPC answer cannot go without trailers, so the Node guest's gRPC row (node:http2) is set against
node:http2 sending fixed bytes and trailers (${
  ratio(nodeGrpc.ping, find("raw node:http2 streams (fixed bytes and trailers)", "grpc").ping)
}); against the Connect-shaped raw server, which sends no trailers, it measured ${
  ratio(nodeGrpc.ping, find("raw node:http2 streams (fixed bytes)", "connect").ping)
}. That gRPC-shaped server is CPU-bound, at about 30 µs a call while h2load used 17% of the other
core; our guest's CPU time per gRPC Ping measured 30–32 µs in this stop's before/after runs.

![Ping requests per second](benchmarks-ping.svg)

| server | runtime | protocol | Ping req/s | Echo req/s | Ping vs grpc-js |
| --- | --- | --- | --- | --- | --- |
${
  throughput.map((r) =>
    `| ${r.name} | ${r.runtime} | ${r.protocol} | ${fmt(r.ping)} | ${
      // JSON keeps NaN as null.
      r.echo === null || Number.isNaN(r.echo) ? "—" : fmt(r.echo)} | ${
      ratio(r.ping, grpcJs.ping)
    } |`
  ).join("\n")
}

## 2. Host → guest round trips

Echo calls: ${
  quick ? "" : "3 000 "
}sequential (latency) after 3 000 unmeasured ones, then 30 000 with 32 in flight; each figure
is the median of ${CLIENT_RUNS} runs of the client. Our hosts call the echo guest of their own runtime
on its default server (Deno: the engine; Node: node:http2), over the engine's client.

| client → server | c=1 p50 | c=1 p99 | c=32 calls/s |
| --- | --- | --- | --- |
${
  trips.map((t) =>
    `| ${t.name} | ${t.p50.toFixed(3)} ms | ${t.p99.toFixed(3)} ms | ${fmt(t.callsPerSecond)} |`
  ).join("\n")
}

## 3. Spawn to ready

${quick ? 10 : 30} spawns of the echo guest per runtime. "Listening" is the guest's own clock (its
"serving on" log line, ms resolution); "seen" is how long after that the host's Ping got its
answer; "50 ms poll" is when Go's rule (ping at once, then every 50 ms) would first have
seen it on the same runs. The last row is a plugin that starts listening only after 1.2 s, when
the host's pings are 50 ms apart: each chunk of plugin output (its "serving on" line) makes the
host ping at once instead of waiting out the 50 ms. "Seen after listening" counts the guest's
first answer on a fresh process as well as the host's delay; section 8 separates the two.

| guest | ready p50 / p90 | listening p50 / p90 | seen after listening p50 / p90 | 50 ms poll p50 / p90 |
| --- | --- | --- | --- | --- |
${
  spawnRows.map((r) =>
    `| ${r.runtime} | ${percentile(r.ready, 0.5).toFixed(1)} / ${
      percentile(r.ready, 0.9).toFixed(1)
    } ms | ${percentile(r.listening, 0.5).toFixed(0)} / ${
      percentile(r.listening, 0.9).toFixed(0)
    } ms | ${percentile(r.seen, 0.5).toFixed(1)} / ${percentile(r.seen, 0.9).toFixed(1)} ms | ${
      percentile(r.goPoll, 0.5).toFixed(0)
    } / ${percentile(r.goPoll, 0.9).toFixed(0)} ms |`
  ).join("\n")
}

## 4. 50 plugins at once

50 Deno echo guests spawned together by one Deno host: all ready in ${
  fmt(fifty.allReadyMs)
} ms; host RSS
+${fifty.rssPerPluginMiB.toFixed(2)} MiB per plugin.

## 5. Log forwarding

${
  fmt(quick ? 200_000 : 1_000_000)
} JSON log lines on a plugin's stderr, mirrored by the host into a logger that
counts them: ${fmt(logs.ours)} lines/s (${
  logs.mbPerSecond.toFixed(1)
} MB/s of output lines). The plain loop (readline
over the same plugin's stderr, JSON.parse per line, nothing else): ${fmt(logs.plain)} lines/s. Ratio
${ratio(logs.ours, logs.plain)}.

## 6. Server streaming

One \`Count\` call answered with ${
  fmt(STREAM_MESSAGES)
} small messages; the time from the call to its last message, the
median of ${STREAM_RUNS} calls after 3 unmeasured ones, each client in its own process and
each server in another. Our hosts call the echo guest of their own runtime on its default
server; the anchor is a grpc-js client calling a grpc-js server that writes every message at once.

| client → server | median | fastest–slowest | messages/s | vs grpc-js pair |
| --- | --- | --- | --- | --- |
${
  streamRows.map((r) =>
    `| ${r.name} | ${r.ms.toFixed(1)} ms | ${r.all[0].toFixed(1)}–${
      r.all.at(-1)!.toFixed(1)
    } ms | ${fmt(STREAM_MESSAGES / r.ms * 1000)} | ${ratio(r.ms, streamAnchor.ms)} |`
  ).join("\n")
}

## 7. Memory under load

Peak RSS (\`VmHWM\` in /proc/<pid>/status) of a fresh echo guest after one load, each load
on a guest of its own, as in \`tests/faults/hostile_test.ts\`: 10 000 concurrent Pings on one
HTTP/2 connection from node:http2 (which keeps as many open as the guest's
SETTINGS_MAX_CONCURRENT_STREAMS allows, 1000 on the engine, and queues the rest), or one Connect Echo whose request is 100 MiB, sent by our
host's transport and refused RESOURCE_EXHAUSTED by the 4 MiB read limit. "Written raw" is the
same request written on node:http2 a MiB at a time as fast as the guest takes it, with how much
of it went out before the answer came. "Idle" is the peak after one Ping, before the load. The
last column is what docs/RELIABILITY.md recorded before the engine (Deno guest on Deno.serve,
Node guest on node:http2), from the hostile tests of their day; the native rows of this run (${
  memoryRows.find((r) => r.name === OURS.denoNative)!.streamsMiB.toFixed(0)
} and ${
  memoryRows.find((r) => r.name === OURS.nodeNative)!.streamsMiB.toFixed(0)
} MiB under 10 000 streams) say how much of the difference is the
engine's and how much came with other changes since.

| guest | idle | 10 000 streams (answered / refused) | 100 MiB request | written raw (MiB sent) | RELIABILITY.md: streams / 100 MiB |
| --- | --- | --- | --- | --- | --- |
${
  memoryRows.map((r) =>
    `| ${r.name} | ${r.idleMiB.toFixed(0)} MiB | ${r.streamsMiB.toFixed(0)} MiB (${
      fmt(r.streamsAnswered)
    } / ${fmt(r.streamsRefused)}) | ${r.bigMiB.toFixed(0)} MiB${
      r.bigCode === 8 ? "" : ` (code ${r.bigCode})`
    } | ${r.bigRawMiB.toFixed(0)} MiB (${r.bigRawSentMiB}) | ${
      RELIABILITY_MIB[r.runtime].streams
    } / ${RELIABILITY_MIB[r.runtime].big} MiB |`
  ).join("\n")
}

${startupSection(results.startup)}
${beforeAfterSection(results.beforeAfter, await versions())}
## Where the time went, and what changed

${engineNotes()}
### Earlier findings, and every change

Profiles (\`deno run --v8-flags=--prof\` + \`node --prof-process\`, \`node --cpu-prof\`) before the
changes below: in the Deno guest about half the time is Deno's own HTTP stack and half is
JavaScript, spread over connect-es's per-call machinery (a HandlerContext with three
Headers copies, a deadline and a linked AbortController; async iterables for the request
and response bodies; a ReadableStream per response) and our request conversion. In log
forwarding, decoding entries, re-stamping times (toISOString + a regex per line) and
re-encoding dominated.

The largest single win after the lean paths was not visible in any profile as a hot
function: the per-call request object was an object literal with getters (a closure per
getter, and objects of no stable shape); the same thing as a class sped both guests up by
10–20%.

On Node (\`node --cpu-prof\` of the guest under h2load): node:http2's compatibility layer
(a request and a response object per call, each a full Node stream) and the garbage it
leaves were most of a call; connect-node's request conversion made an AbortController whose
abort built a DOMException on every call; the host's POST built an Error for every stream
that closed normally. In log forwarding, after the first changes, JSON.parse was 45% of
the host's time and encoding the line again most of the rest: plain lines (the shape FTL's
loggers write, nothing escaped) are now read by a scanner, and their message, time and
error copied as they stand.

At 32 calls in flight over one HTTP/2 connection, host and plugin took turns: neither
process was busy more than three quarters of the time (the Deno host's main thread was
idle two thirds of it, its connection driven by one task of Deno's fetch). Spreading the
calls over two connections keeps both sides busy.

Deno's fetch turns Nagle's algorithm on for every connection it opens (strace:
\`setsockopt(TCP_NODELAY, 0)\`), and Deno 2.9.6 has no option to turn it off (a \`noDelay\` option is
proposed in denoland/deno#35581). On a fresh connection the client acknowledges the server's
SETTINGS after sending its first request; a second request sent before the server's delayed ACK
(40 ms) waits for it. Bare fetch against our Deno guest hit it on the second request of 4 of 4
fresh connections (40–44 ms); through our Deno host, when it still used fetch, once in 30 spawns.
Both hosts now make unary calls with the library's own HTTP/2 client
(\`internal/h2_client.ts\`) on \`Deno.connect\` or node:net with TCP_NODELAY on. At one call in
flight it took 0.175 ms against fetch's 0.24–0.26 ms (Deno, against our Deno guest), and 0.15–0.18
ms against node:http2's 0.20–0.27 ms (Node, against our Node guest), each in the same run of a
bare client loop; it also gives gRPC its trailers on Deno, where unary gRPC went through
node:http2 with a new connection per burst of calls.

Readiness seen after listening is bounded by each runtime's first answer on a fresh
process. Compiling the request path took 5 to 10 ms of a fresh guest's first Ping, on the critical
path of readiness; that is why the guest answers one Ping in memory before listening. curl's first Ping to a fresh raw node:http2 server took 6.0–6.2 ms, later ones
1.3–1.6 ms; to a fresh Deno guest 2.7 ms, later ones 1.1 ms. Inside the Deno guest, the first
request's handler took 0.9–1.3 ms and the second 0.13–0.17 ms, even after that Ping in memory:
what is left is Deno's own Request, Response and Headers code on
first use. Sending a made-up \`Request\` through the whole handler before listening cut the first
call to 0.26–0.29 ms but took 2.2 ms itself, a net loss, so it is not done. A host on Deno also
polls more slowly than it asks: \`setTimeout(fn, 1)\` waits 2.1 ms there (1.1 ms on Node), so
refused pings come about 2.3 ms apart.

A plugin's start is mostly loading modules. A bare \`deno run\` took 23.6 ms here and importing
\`guest.ts\` 97.8 ms, of which connect-node, node:http2 and node:net were about 30 ms, though only
a host's gRPC streams use them; loaded on first use instead, \`guest.ts\` takes 65.0 ms. On Node
20, a bare \`node\` took 67 ms and importing \`guest.js\` 208 ms, now 183 ms; @connectrpc/connect
alone adds 70 ms there (its ES modules are read one file at a time). Starting the Deno.serve that
takes the engine's HTTP/1.1 connections costs a Deno guest about 3 ms, so it starts on the first
such connection: a plugin spoken to only in h2c never pays it.

| change | measure | before | after |
| --- | --- | --- | --- |
| a Connect unary lean path (binary, uncompressed, no timeout; everything else still goes to connect-es) | Deno guest Ping, h2load -n 100000 -c 4 -m 16, one run each | 18 976 req/s | 31 171–33 510 req/s |
| a lean HandlerContext (signal, trailers and values made only when a handler asks) | same | 31 171–33 510 | 37 410–42 368 |
| Deno.serve layer: request body stream and call signal made only when asked for | same | 37 410–42 368 | 43 297–46 844 |
| a lean client path for Connect unary calls (the host side) | Deno host → Deno guest Echo, c=32 / c=1 p50 | 4 965 calls/s / 0.379 ms | 11 951–12 281 calls/s / 0.209–0.272 ms |
| the Node host's lean path POSTs on node:http2 directly | Node host → Node guest Echo, c=32 / c=1 p50 | 6 601 calls/s / 0.563 ms | 8 312–8 954 calls/s / 0.464–0.469 ms |
| the guest answers one Ping in memory before listening | readiness seen after listening, p50 of 15 spawns | 8.8 ms | 4.6 ms |
| entries decoded without copying string attributes; the timestamp formatted once per millisecond | log forwarding of 1 000 000 lines | 322 038 lines/s | 511 206 lines/s |
| allocatePort skips ports it handed out in the last minute | 50 plugins spawned at once | failed: two plugins got one port | all ready |
| Node listener: the socket itself goes to node:http2 (it reads bytes put back), no JS stream wrapper | Node guest Connect Ping, h2load -c 4 -m 16 | 13 876 req/s | 15 754–16 374 req/s |
| Node listener: the universal request built lazily (headers, body iterator, signal only when asked; connect-node's made a DOMException per call) | same, -n 60000 | 16 374 | 25 757 |
| a gRPC unary lean path in the guest, where the runtime sends trailers (Node) | Node guest gRPC Ping | 5 166 | 17 938 |
| Node listener: HTTP/2 on node:http2's stream API instead of its compatibility layer | Node guest Connect Ping, -n 60000 | 22 514 | 31 382 |
| Node host POST: response headers filled lazily, no Error built per finished stream | Node host → Node guest Connect, c=32 / c=1 p50 | 10 419 calls/s / 0.316 ms | 11 434–14 154 calls/s / 0.268–0.282 ms |
| a lean gRPC unary client path (Node host) | Node host → Node guest gRPC, c=32 / c=1 p50 | 4 227 calls/s / 0.509 ms | 14 673–14 835 calls/s / 0.261–0.273 ms |
| log lines: one decoder call per chunk, a ring for the last lines, no intermediate objects in forward | log forwarding of 1 000 000 lines | 401 784–408 722 lines/s | 521 568–538 297 lines/s |
| FTL's plain log lines read by a scanner of their own instead of JSON.parse | reading log lines | JSON.parse | twice the lines per second |
| a log entry's JSON line put together by hand instead of JSON.stringify of an object | writing log entries | a third more time | 1× |
| Node: request headers read from Node's object, no Headers made unless a handler asks; the token compared as a string | Node guest Connect Ping, 4 runs of 100 000 after start | 34 268–40 660 req/s | 36 594–41 477 req/s (no difference beyond noise) |
| Node: no per-stream close listener (shutdown waits for sessions instead); whole bodies written without an async step | same | 36 594–41 477 | 36 474–41 279 (no difference beyond noise) |
| the runtimes' universal requests (and whole bodies) as classes, not object literals with getters | Node guest Connect / gRPC Ping, 4 runs of 100 000 | 36 474–41 279 / 33 588–37 061 req/s | 42 892–50 649 / 38 934–41 966 req/s |
| same | Deno guest Ping, 4 runs of 100 000 | 54 004–58 486 req/s | 60 924–69 615 req/s |
| Node host: request headers as a plain record, URLs and paths made once, no \`trailer-\` split when no name has the prefix | Node host → Node guest Connect, c=32 | 12 781 calls/s (full run) | 13 069–14 260 calls/s |
| the headers every lean answer shares kept also as a frozen record, sent without iterating a Headers | Node guest gRPC / Connect Ping, 4 runs of 100 000 | 38 934–41 966 / 42 892–50 649 req/s | 36 494–45 777 / 45 400–54 408 req/s |
| gRPC trailers on Node: one shared wantTrailers listener, the trailers kept on the stream, frozen respond options | Node guest gRPC Ping, 4 runs of 100 000 | 36 494–45 777 req/s | 41 761–46 583 req/s |
| plugin output nudges the host to ping at once instead of waiting out the poll interval | readiness seen after listening, p50 of 10 spawns of a plugin that listens after 1.2 s (50 ms polls by then) | 32.9 ms | 3.3 ms |
| log lines put together as text instead of stringifying an entry object | log forwarding of 1 000 000 lines, \`--only=5\` | 587 037–588 030 lines/s (0.55×) | 646 812–652 523 lines/s (0.57–0.58×) |
| plain log lines read by a scanner instead of JSON.parse, their strings copied as they stand | same | 646 812–652 523 lines/s | 881 924–929 387 lines/s (0.81–0.94×) |
| Deno host: unary calls over two HTTP/2 connections, the less busy first | Deno host → Deno guest Echo (bench_client), c=32 / c=1 p50 | 15 126–15 791 calls/s / 0.165–0.168 ms | 19 331–21 716 calls/s / 0.166–0.183 ms |
| Node host: unary calls over two HTTP/2 sessions, the less busy first | Node host → Node guest Echo, 150 000 calls at c=32, Connect / gRPC | 18 115–18 437 / 17 929 calls/s | 21 835–22 079 / 18 914–20 074 calls/s |
| Node guest: the gRPC envelope's length written by hand (connect-es's encodeEnvelope goes through a DataView, 630 ns against 35 ns); the body read by shared listeners with the state on the stream; one async function per stream instead of a then/catch pair; shared response heads; an empty Connect answer ends with its head; the router returns a lean call's promise without an async wrapper | Node guest Ping, CPU time of the guest per call, median of 5 alternating runs (\`scripts/bench/cpu_per_call.ts\`), gRPC / Connect | 37.5 / 34.0 µs | 32.5 / 29.2 µs |
| bench method: every round-trip client makes 3 000 sequential calls before measuring, not 300 (with 300 the clients' code was still being optimised while measured) | c=1 p50, ours Node host gRPC / Connect, and the grpc-js pair, two runs each | 0.33–0.35 / 0.32–0.34 / 0.41–0.45 ms | 0.27 / 0.25–0.25 / 0.32–0.38 ms |
| Node: bodies of 64 bytes or less copied into Node's buffer pool before writing (Node's own Buffer view of a small Uint8Array moves it off V8's heap: 315 ns against 74 ns) | same, gRPC | 31.0 µs | 30.2 µs |
| the lean path reads a body that declares no length whole too, up to the read limit (grpc-go and grpc-js declare none, nor does our Node host; such bodies went through connect-es's async-iterator reader); the envelope's five bytes no longer count against a gRPC message's limit | Node guest gRPC Ping from a client that declares no length, CPU time of the guest per call, 4 alternating runs (\`scripts/bench/cpu_per_call.ts … grpc-undeclared\`) | 31.7–37.1 µs | 27.1–29.9 µs |
| Deno host: unary calls over the library's own HTTP/2 client on \`Deno.connect\` (TCP_NODELAY on) instead of fetch | Deno host → Deno guest Echo, \`--only=2\`, c=1 p50 / c=32 | 0.289 ms / 16 266 calls/s (0.91× the grpc-js pair's p50) | 0.177–0.211 ms / 22 178–26 362 calls/s (0.56–0.64×) |
| Node host: unary calls over the same client on node:net instead of node:http2 | Node host → Node guest Echo, \`--only=2\`, c=1 p50 / c=32, Connect and gRPC | 0.248 / 0.256 ms, 16 003 / 14 172 calls/s (0.78× / 0.81×) | 0.227 / 0.222 ms, 20 332 / 19 737 calls/s (0.69× / 0.67×) |
| connect-node, node:http2 and node:net loaded when first needed instead of imported up front | spawn to ready p50 (section 3), Deno / Node guest | 100.0 / 217.2 ms (\`--only=3\`) | 69.9–79.5 / 203.1–205.5 ms (three full runs) |
| the Deno guest answers through the HTTP/2 engine (\`server: "engine"\`, now the default) instead of Deno.serve | Deno guest Ping, section 1 of the second full run of 2026-12-01 (both servers in it; the first, on a busier machine, in brackets), Connect / gRPC | 74 350 req/s (61 442) / none: Deno.serve sends no trailers | 283 064 / 281 686 req/s (145 502 / 173 756) |
| the engine on both sides: the hosts' every call over its client (the earlier client carried unary calls only; streams went over fetch and node:http2), the Deno guest on its server | Deno host → Deno guest Echo, c=32 / c=1 p50, ratio to the grpc-js pair in the same full run | 3.53× / 0.49× (2026-11-25) | 5.50× / 0.37× (2026-12-01; the first run that day 5.72× / 0.18×) |
| the Node guest on the engine over node:net (\`server: "engine"\`; node:http2 stays Node's default for now) | Node guest Ping, section 1 of the same runs, Connect / gRPC | 66 739 / 53 735 req/s (50 406 / 47 429) | 290 397 / 305 284 req/s (183 070 / 177 048) |

(The before/after figures are single runs on a shared machine, taken as each change went
in, except the CPU-time rows, which alternate the two builds; the tables above are one later run
of everything. CPU time per call, read from /proc, moved less between runs than requests per
second did, so the last rows use it. From 2026-11-25 on, section 1 warms every
server up before measuring it; earlier runs did not, so their first figures included JIT warm-up.)

## Reproduce

\`\`\`sh
apt-get install nghttp2-client      # h2load
npx -y deno@2.9.6 task build:npm    # the Node guest and Node anchors
npx -y deno@2.9.6 task bench        # writes this file and benchmarks-ping.svg
\`\`\`
`;
await writeReport(md, join(root, "docs/benchmarks-ping.svg"));
console.log("\n# targets");
for (const [w, t, m, ok] of targets) {
  console.log(`  ${ok === null ? "    " : ok ? "met " : "MISS"} ${w}: ${m} (target ${t})`);
}
console.log("\nwrote docs/BENCHMARKS.md and docs/benchmarks-ping.svg");
