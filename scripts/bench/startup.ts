/**
 * The bench's start-up section (`deno task bench --only=startup`): how long a plugin takes
 * from our host's `spawn()` to ready, and the CLI from start to exit, each beside a bare
 * run of its runtime measured in the same interleaved loop (tests/fixtures/bench_startup.ts,
 * one host process per runtime), with a per-step import profile of each guest
 * (tests/fixtures/bench_startup_profile.ts) to say where the time goes.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { freePort } from "./_util.ts";
import type { Times } from "../../tests/fixtures/bench_startup.ts";
import { deno, median, runJsonLine, startProcess, type Tree } from "./measure.ts";

/** One guest's start-up steps (median of the profile's runs), ms. */
export type Profile = [string, number][];

/** Everything the section measured; absent from results saved before it existed. */
export interface StartupResults {
  runs: number;
  /** Cases run by a Deno host, by name. */
  deno: Record<string, Times>;
  /** Cases run by a Node host (the npm build), by name. */
  node: Record<string, Times>;
  profile: { deno: Profile; node: Profile; runs: number };
  /** Sizes of the one-file forms, bytes, when scripts/bundle_plugin.ts could build them. */
  bundles?: { deno: number; node: number };
}

/** Case names, shared by measurement and report. */
const CASE = {
  bareDeno: "bare deno run of a one-line script",
  denoGuest: "Deno guest (echo example)",
  denoStamped: "Deno guest, listener bound stamped",
  denoBundle: "Deno guest bundled (deno bundle)",
  denoHelp: "deno run -A cli.ts --help",
  bareNode: "bare node of a one-line script",
  nodeGuest: "Node guest (echo example, npm build)",
  nodeStamped: "Node guest, listener bound stamped",
  nodeBundle: "Node guest bundled (esbuild)",
  grpcJs: "grpc-js plugin (Ping only)",
  help: "ftl-plugin --help",
  ping: "ftl-plugin ping URL",
  call: "ftl-plugin call URL echo.v1.EchoService/Echo '{}'",
} as const;

const guestPermissions = ["--allow-net=127.0.0.1", "--allow-env"];

/** Builds the one-file forms with H-D's script, if this tree has it; their paths. */
async function buildBundles(tree: Tree, dir: string): Promise<{ deno: string; node: string }> {
  const script = join(tree.root, "scripts/bundle_plugin.ts");
  const build = async (runtime: string) => {
    const out = await new Deno.Command(deno, {
      args: ["run", "-A", script, `--runtime=${runtime}`, "--out", join(dir, runtime)],
      cwd: tree.root,
      env: { NPM_OUT: tree.npm },
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`bundle_plugin --runtime=${runtime} failed`);
    return new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
  };
  return { deno: await build("deno"), node: await build("node") };
}

async function profileRuns(tree: Tree, runs: number): Promise<StartupResults["profile"]> {
  const one = async (runtime: "deno" | "node") => {
    const [cmd, args] = runtime === "deno"
      ? [deno, ["run", "-A", "tests/fixtures/bench_startup_profile.ts"]]
      : ["node", [join(tree.npm, "tests/fixtures/bench_startup_profile.js")]];
    const out = await new Deno.Command(cmd, {
      args,
      cwd: tree.root,
      env: { FTL_BIND: `http://127.0.0.1:${freePort()}`, LOG_LEVEL: "error" },
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`bench_startup_profile on ${runtime} failed`);
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
    return (JSON.parse(line) as { steps: Profile }).steps;
  };
  const medianProfile = async (runtime: "deno" | "node") => {
    const all: Profile[] = [];
    // One unmeasured run: the first reads every file from disk.
    for (let i = -1; i < runs; i++) {
      const steps = await one(runtime);
      if (i >= 0) all.push(steps);
    }
    return all[0].map(([name], i): [string, number] => [name, median(all.map((s) => s[i][1]))]);
  };
  return { deno: await medianProfile("deno"), node: await medianProfile("node"), runs };
}

/**
 * Measures the section on `tree`: `runs` interleaved rounds per host runtime, and the
 * import profile of each guest.
 */
export async function measureStartup(tree: Tree, runs: number): Promise<StartupResults> {
  const dir = await Deno.makeTempDir({ prefix: "ftl-bench-startup-" });
  const guestPort = freePort();
  const url = `http://127.0.0.1:${guestPort}`;
  // The CLI's ping and call go to one echo guest, started once (no token: no --token).
  const guest = await startProcess(
    tree.root,
    deno,
    [
      "run",
      ...guestPermissions,
      "examples/echo/plugin.ts",
    ],
    guestPort,
    { FTL_BIND: url },
  );
  try {
    await Deno.writeTextFile(join(dir, "one.ts"), 'console.log("hello");\n');
    await Deno.writeTextFile(join(dir, "one.js"), 'console.log("hello");\n');
    let bundles: { deno: string; node: string } | undefined;
    if (existsSync(join(tree.root, "scripts/bundle_plugin.ts"))) {
      bundles = await buildBundles(tree, dir);
    } else console.log("  no scripts/bundle_plugin.ts here: the one-file forms are not measured");
    const echo = join(tree.root, "examples/echo/plugin.ts");
    const nodeEcho = join(tree.npm, "examples/echo/plugin.js");
    const stamp = (ext: string) =>
      ext === "ts"
        ? join(tree.root, "tests/fixtures/bench_bound_stamp.ts")
        : pathToFileURL(join(tree.npm, "tests/fixtures/bench_bound_stamp.js")).href;
    const cli = join(tree.npm, "cli.js");
    const denoCases = [
      { name: CASE.bareDeno, kind: "exit", exe: deno, args: ["run", join(dir, "one.ts")] },
      { name: CASE.denoGuest, kind: "spawn", exe: deno, args: ["run", ...guestPermissions, echo] },
      {
        name: CASE.denoStamped,
        kind: "stamped",
        exe: deno,
        args: ["run", ...guestPermissions, "--allow-write", "--preload", stamp("ts"), echo],
      },
      ...(bundles
        ? [{
          name: CASE.denoBundle,
          kind: "spawn",
          exe: deno,
          args: ["run", ...guestPermissions, bundles.deno],
        }]
        : []),
      {
        name: CASE.denoHelp,
        kind: "exit",
        exe: deno,
        args: ["run", "-A", join(tree.root, "cli.ts"), "--help"],
      },
    ];
    const nodeCases = [
      { name: CASE.bareNode, kind: "exit", exe: "node", args: [join(dir, "one.js")] },
      { name: CASE.nodeGuest, kind: "spawn", exe: "node", args: [nodeEcho] },
      {
        name: CASE.grpcJs,
        kind: "spawn",
        exe: "node",
        args: [join(tree.npm, "tests/fixtures/bench_grpc_js_plugin.js")],
        protocol: "grpc",
      },
      {
        name: CASE.nodeStamped,
        kind: "stamped",
        exe: "node",
        args: ["--import", stamp("js"), nodeEcho],
      },
      ...(bundles
        ? [{ name: CASE.nodeBundle, kind: "spawn", exe: "node", args: [bundles.node] }]
        : []),
      { name: CASE.help, kind: "exit", exe: "node", args: [cli, "--help"] },
      { name: CASE.ping, kind: "exit", exe: "node", args: [cli, "ping", url] },
      {
        name: CASE.call,
        kind: "exit",
        exe: "node",
        args: [cli, "call", url, "echo.v1.EchoService/Echo", "{}"],
      },
    ];
    const host = (cmd: string, args: string[], cases: unknown[]) =>
      runJsonLine<Record<string, Times>>(tree.root, cmd, [
        ...args,
        JSON.stringify({ runs, cases }),
      ]);
    console.log(`  Deno host, ${runs} rounds`);
    const denoTimes = await host(deno, ["run", "-A", "tests/fixtures/bench_startup.ts"], denoCases);
    console.log(`  Node host, ${runs} rounds`);
    const nodeTimes = await host(
      "node",
      [join(tree.npm, "tests/fixtures/bench_startup.js")],
      nodeCases,
    );
    const profile = await profileRuns(tree, Math.max(3, Math.round(runs / 4)));
    const size = async (path: string) => (await Deno.stat(path)).size;
    const result: StartupResults = {
      runs,
      deno: denoTimes,
      node: nodeTimes,
      profile,
      bundles: bundles && { deno: await size(bundles.deno), node: await size(bundles.node) },
    };
    printStartup(result);
    return result;
  } finally {
    await guest.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

const med = (t: Times | undefined, key: keyof Times = "ms"): number =>
  t && t[key].length ? median(t[key]) : NaN;
function p90(t: Times | undefined, key: keyof Times = "ms"): number {
  if (!t || !t[key].length) return NaN;
  const sorted = [...t[key]].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))];
}
const ms = (n: number, digits = 1) => Number.isNaN(n) ? "—" : `${n.toFixed(digits)} ms`;
const times = (n: number) => Number.isNaN(n) ? "—" : `${n.toFixed(2)}×`;

/** The rows of the section's table: case, host, its peer (the bare runtime), target. */
function rows(r: StartupResults): { name: string; t: Times | undefined; peer: Times }[] {
  const d = (name: string) => ({ name, t: r.deno[name], peer: r.deno[CASE.bareDeno] });
  const n = (name: string) => ({ name, t: r.node[name], peer: r.node[CASE.bareNode] });
  return [
    d(CASE.bareDeno),
    d(CASE.denoGuest),
    d(CASE.denoBundle),
    d(CASE.denoHelp),
    n(CASE.bareNode),
    n(CASE.nodeGuest),
    n(CASE.nodeBundle),
    n(CASE.grpcJs),
    n(CASE.help),
    n(CASE.ping),
    n(CASE.call),
  ];
}

function printStartup(r: StartupResults): void {
  for (const { name, t, peer } of rows(r)) {
    if (!t) continue;
    const listening = med(t, "listening");
    console.log(
      `  ${name}: ${ms(med(t))} (${times(med(t) / med(peer))} bare)` +
        (Number.isNaN(listening) ? "" : `, listening ${ms(listening, 0)}`),
    );
  }
  for (
    const [runtime, t] of [["Deno", r.deno[CASE.denoStamped]], [
      "Node",
      r.node[CASE.nodeStamped],
    ]] as const
  ) {
    console.log(
      `  ${runtime} guest: bound → ready p50 ${ms(med(t, "boundToReady"), 2)}; Ping sent ` +
        `${ms(med(t, "lag"), 2)} after bound, answered in ${ms(med(t, "answer"), 2)}; ` +
        `host's share p50 ${ms(med(t, "seen"), 2)} / p90 ${ms(p90(t, "seen"), 2)}`,
    );
  }
  for (const runtime of ["deno", "node"] as const) {
    console.log(`  ${runtime} guest start-up, per step (median of ${r.profile.runs}):`);
    for (const [step, value] of r.profile[runtime]) console.log(`    ${step}: ${ms(value)}`);
  }
}

/** what, target, measured, met (null: reported, no target), as bench.ts's targets. */
type Target = [string, string, string, boolean | null];

/** The section's targets; "not measured" when the saved results predate the section. */
export function startupTargets(r: StartupResults | undefined): Target[] {
  const ratioRow = (
    what: string,
    target: number,
    t?: Times,
    peer?: Times,
    strict = false,
  ): Target => {
    const x = med(t) / med(peer);
    const met = Number.isNaN(x) ? null : strict ? x < target : x <= target;
    return [
      what,
      `${strict ? "<" : "≤"} ${target.toFixed(1)}×`,
      r ? times(x) : "not measured",
      met,
    ];
  };
  const seenRow = (runtime: string, t?: Times): Target => {
    const p50 = med(t, "seen");
    return [
      `start-up: the host notices readiness after the guest's first possible answer, ${runtime} guest (p50 / p90)`,
      "≤ 1 ms",
      r ? `${ms(p50, 2)} / ${ms(p90(t, "seen"), 2)}` : "not measured",
      Number.isNaN(p50) ? null : p50 <= 1,
    ];
  };
  const ratios: [string, number, Times | undefined, Times | undefined, boolean?][] = [
    [
      "Deno guest spawn → ready vs bare `deno run`",
      3,
      r?.deno[CASE.denoGuest],
      r?.deno[CASE.bareDeno],
    ],
    ["Node guest spawn → ready vs bare `node`", 2, r?.node[CASE.nodeGuest], r?.node[CASE.bareNode]],
    [
      "Node guest spawn → ready vs a grpc-js plugin's",
      1,
      r?.node[CASE.nodeGuest],
      r?.node[CASE.grpcJs],
      true,
    ],
    ["`ftl-plugin --help` (Node) vs bare `node`", 1.5, r?.node[CASE.help], r?.node[CASE.bareNode]],
    ["`ftl-plugin ping URL` (Node) vs bare `node`", 2, r?.node[CASE.ping], r?.node[CASE.bareNode]],
    [
      "`ftl-plugin call URL …` (Node) vs bare `node`",
      2,
      r?.node[CASE.call],
      r?.node[CASE.bareNode],
    ],
  ];
  return [
    ...ratios.map(([what, target, t, peer, strict]) =>
      ratioRow(`start-up: ${what}`, target, t, peer, strict)
    ),
    seenRow("Deno", r?.deno[CASE.denoStamped]),
    seenRow("Node", r?.node[CASE.nodeStamped]),
  ];
}

/** The report's start-up section; "not measured" when the saved results predate it. */
export function startupSection(r: StartupResults | undefined): string {
  const head = "## 8. Start-up\n\n";
  if (!r) {
    return `${head}Not measured: the figures this report was written from predate the section ` +
      "(`deno task bench --only=startup` measures it alone).\n";
  }
  const table = rows(r).filter((row) => row.t).map(({ name, t, peer }) =>
    `| ${name} | ${ms(med(t))} / ${ms(p90(t))} | ${
      t === peer ? "1×" : times(med(t) / med(peer))
    } | ${ms(med(t, "listening"), 0)} |`
  ).join("\n");
  const stamped =
    ([["Deno", r.deno[CASE.denoStamped]], ["Node", r.node[CASE.nodeStamped]]] as const)
      .map(([runtime, t]) =>
        `| ${runtime} guest | ${ms(med(t, "boundToReady"), 2)} / ${
          ms(p90(t, "boundToReady"), 2)
        } | ${ms(med(t, "lag"), 2)} / ${ms(p90(t, "lag"), 2)} | ${ms(med(t, "answer"), 2)} / ${
          ms(p90(t, "answer"), 2)
        } | ${ms(med(t, "seen"), 2)} / ${ms(p90(t, "seen"), 2)} |`
      ).join("\n");
  const steps = r.profile.deno.map(([step, deno], i) =>
    `| ${step} | ${ms(deno)} | ${ms(r.profile.node[i]?.[1] ?? NaN)} |`
  ).join("\n");
  const total = (p: Profile) => p.reduce((sum, [, v]) => sum + v, 0);
  const sizes = r.bundles
    ? ` The bundles weigh ${(r.bundles.deno / 1024).toFixed(0)} KiB (Deno) and ${
      (r.bundles.node / 1024).toFixed(0)
    } KiB (Node); scripts/bundle_plugin.ts builds them.`
    : " The one-file forms were not measured (this tree has no scripts/bundle_plugin.ts).";
  return `${head}Each figure is the median of ${r.runs} runs (p90 beside it), measured in rounds
that run every case once, so a case and the bare runtime it is set against share the
machine's moment; one unmeasured round first. Deno cases run under a Deno host, Node cases
under the npm build's Node host (\`tests/fixtures/bench_startup.ts\`). A plugin is timed
from just before our host's \`spawn()\` to its promise resolving (its first Ping
answered); a bare runtime or a CLI command from its spawn to its exit, started the way our
host starts a plugin. "Listening" is the guest's own "serving on" log line (its clock, ms
resolution). The Deno guest runs with the permissions the README lists
(\`--allow-net=127.0.0.1 --allow-env\`); the grpc-js plugin
(\`tests/fixtures/bench_grpc_js_plugin.ts\`) is the least a grpc-js plugin does: FTL's Ping
on \`FTL_BIND\`, one log line, no protobuf runtime. The CLI's \`ping\` and \`call\` go to one
echo guest started beforehand.${sizes}

| what | median / p90 | vs its bare runtime | spawn → listening |
| --- | --- | --- | --- |
${table}

Readiness, restated. The old row ("readiness seen after listening ≤ 2 ms", missed since
issue 7) subtracted the guest's "serving on" time, at ms resolution, from the moment
\`spawn()\` resolved, so it counted the guest's first answer on a fresh process (the
runtime's first request through its HTTP stack and our handlers) as the host's delay: it
measured the runtime's start, not our polling. Here the guest is preloaded with a hook
(\`tests/fixtures/bench_bound_stamp.ts\`) that stamps the moment its listener is bound on a
clock both processes share (\`performance.timeOrigin + performance.now()\`), and the host's
Ping is timed through \`SpawnOptions.readiness\` (the same Ping on the same transport): the
host's share is the time from bound to ready less that Ping's own answer time, i.e. how
late the Ping that succeeded was sent, plus what the host did after its answer.

| guest | bound → ready p50 / p90 | bound → the successful Ping sent | that Ping's answer time | the host's share |
| --- | --- | --- | --- | --- |
${stamped}

Where a guest's start-up goes (\`tests/fixtures/bench_startup_profile.ts\`, median of
${r.profile.runs} runs after an unmeasured one): what the echo plugin loads, imported one step after
another, each step counting only what the steps before it had not loaded (so connect-es's
own share of protobuf shows under protobuf), then \`start()\` until its listener is bound.
The first line is the runtime's own start up to the first line of a module; under Deno it
includes resolving the module graph, dynamic imports named in the source included.
Totals: Deno ${ms(total(r.profile.deno))}, Node ${ms(total(r.profile.node))}.

| step | Deno | Node |
| --- | --- | --- |
${steps}
`;
}
