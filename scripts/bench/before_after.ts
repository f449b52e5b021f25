/**
 * Before and after a change, in one run: the rows a restructuring could slow, measured on
 * another checkout ("before") and on this one ("after"), interleaved round by round so that
 * the machine's noise falls on both, each row as after/before with the rounds' spread.
 * `scripts/bench.ts --baseline=DIR` runs it and renders its section of docs/BENCHMARKS.md.
 *
 * @module
 */
import { freePort } from "./_util.ts";
import {
  cpuMicros,
  fixed,
  fmt,
  median,
  memoryLoad,
  OUR_PAIRS,
  ourRoundTrip,
  ourStream,
  pingLoad,
  type Protocol,
  type Runtime,
  startOurGuest,
  type Tree,
} from "./measure.ts";

/** How long each measurement runs, and how many rounds. */
export interface Settings {
  /** Rounds: each measures every row on both trees. */
  rounds: number;
  /** h2load's measured Pings per protocol. */
  requests: number;
  /** h2load's unmeasured Pings per protocol first. */
  warmUp: number;
  /** Messages in one streamed answer. */
  streamMessages: number;
  /** Measured streaming calls per client run; the round's figure is their median. */
  streamRuns: number;
  /** Whether the bench ran with `--quick`. */
  quick: boolean;
}

/** One row of the comparison: what it measures, and how it reads. */
export interface RowSpec {
  /** What is measured, e.g. "Deno guest Ping (Connect), h2load". */
  name: string;
  /** The figure's unit. */
  unit: string;
  /** Times and memory: a smaller figure is better. */
  lessIsBetter: boolean;
  /** Decimals shown. */
  digits: number;
}

/** A row with each round's figure on both trees. */
export interface BeforeAfterRow extends RowSpec {
  /** Each round's figure on the baseline checkout. */
  before: number[];
  /** Each round's figure on this checkout. */
  after: number[];
}

/** One checkout as the report names it. */
export interface Side {
  /** The directory as given. */
  dir: string;
  /** Its commit, and whether files differ from it. */
  commit: string;
}

/** Everything a comparison measured: what its section is made of. */
export interface BeforeAfter {
  /** The day it ran, YYYY-MM-DD. */
  date: string;
  /** The baseline. */
  before: Side;
  /** This checkout. */
  after: Side;
  /** How it measured. */
  settings: Settings;
  /** Its rows, in the order measured. */
  rows: BeforeAfterRow[];
}

/** A row regresses when after/before stays below this in every round. */
export const REGRESSION_BELOW = 0.95;

/** Fewer rounds give no spread to speak of: their rows are at most "unclear". */
export const MIN_ROUNDS = 3;

/** The heading of the section in docs/BENCHMARKS.md. */
export const SECTION_HEADING = "## Before and after a change";

/** Rows one call of `measure` fills on one tree, in the order it returns their figures. */
interface Probe {
  rows: RowSpec[];
  measure: (tree: Tree) => Promise<number[]>;
}

const PROTOCOLS: [Protocol, string][] = [["connect", "Connect"], ["grpc", "gRPC"]];
const RUNTIMES: [Runtime, string][] = [["deno", "Deno"], ["node", "Node"]];

const rate = (name: string, unit: string): RowSpec => ({
  name,
  unit,
  lessIsBetter: false,
  digits: 0,
});
const cost = (name: string, unit: string, digits: number): RowSpec => ({
  name,
  unit,
  lessIsBetter: true,
  digits,
});

/** The rows, each with the fixture of bench.ts's section that measures it there. */
function probes(s: Settings): Probe[] {
  const list: Probe[] = [];
  // Section 1: our guest on the engine under h2load, a fresh process each round; beside
  // its rate, the guest's CPU time per Ping, which the machine's other load moves less.
  for (const [runtime, runtimeName] of RUNTIMES) {
    list.push({
      rows: [
        ...PROTOCOLS.map(([, name]) =>
          rate(`${runtimeName} guest Ping (${name}), h2load`, "req/s")
        ),
        ...PROTOCOLS.map(([, name]) =>
          cost(`${runtimeName} guest CPU per Ping (${name})`, "µs", 1)
        ),
      ],
      measure: async (tree) => {
        const port = freePort();
        const guest = await startOurGuest(tree, runtime, "engine", port);
        try {
          for (const [protocol] of PROTOCOLS) await pingLoad(port, protocol, s.warmUp);
          const rates: number[] = [];
          const cpu: number[] = [];
          for (const [protocol] of PROTOCOLS) {
            const before = cpuMicros(guest.pid);
            rates.push(await pingLoad(port, protocol, s.requests));
            cpu.push((cpuMicros(guest.pid) - before) / s.requests);
          }
          return [...rates, ...cpu];
        } finally {
          await guest.stop();
        }
      },
    });
  }
  // Section 2: our host → our guest of the same runtime, Echo at c=32, then c=1.
  for (const [runtime, protocol, pair] of OUR_PAIRS) {
    list.push({
      rows: [rate(`${pair}, Echo at c=32`, "calls/s"), cost(`${pair}, Echo c=1 p50`, "ms", 3)],
      measure: async (tree) => {
        const result = await ourRoundTrip(tree, runtime, protocol);
        return [result.callsPerSecond, result.p50];
      },
    });
  }
  // Section 6: one Count call of streamMessages messages, the median of streamRuns calls.
  for (const [runtime, protocol, pair] of OUR_PAIRS) {
    list.push({
      rows: [cost(`${pair}, ${fmt(s.streamMessages)} streamed messages`, "ms", 1)],
      measure: async (tree) => [
        median(await ourStream(tree, runtime, protocol, s.streamMessages, s.streamRuns)),
      ],
    });
  }
  // Section 7: a fresh guest's peak RSS after 10 000 concurrent streams.
  for (const [runtime, runtimeName] of RUNTIMES) {
    list.push({
      rows: [cost(`${runtimeName} guest peak RSS, 10 000 streams`, "MiB", 0)],
      measure: async (tree) => [(await memoryLoad(tree, runtime, "engine", "streams")).peak],
    });
  }
  return list;
}

/** The files each tree must have for the comparison, and how to get those that are missing. */
async function checkTree(tree: Tree): Promise<void> {
  const needed = [
    ...["bench_guest", "bench_client", "bench_stream"].map((f) =>
      `${tree.root}/tests/fixtures/${f}.ts`
    ),
    ...["bench_guest", "bench_client", "bench_stream", "bench_memory"].map((f) =>
      `${tree.npm}/tests/fixtures/${f}.js`
    ),
    `${tree.npm}/examples/echo/plugin.js`,
  ];
  for (const path of needed) {
    try {
      await Deno.stat(path);
    } catch {
      throw new Error(
        `${path} is missing: ${tree.root} needs its npm build (cd ${tree.root} && deno task build:npm)`,
      );
    }
  }
  // The Deno fixtures' dependencies installed now, so that no first round waits for them.
  const install = await new Deno.Command(Deno.execPath(), {
    args: [
      "install",
      "--quiet",
      "--entrypoint",
      "tests/fixtures/bench_guest.ts",
      "tests/fixtures/bench_client.ts",
      "tests/fixtures/bench_stream.ts",
      "examples/echo/plugin.ts",
    ],
    cwd: tree.root,
    stdout: "null",
  }).output();
  if (!install.success) throw new Error(`deno install in ${tree.root} failed`);
}

async function git(dir: string, args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args: ["-C", dir, ...args], stderr: "null" })
    .output();
  return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
}

/** `dir`'s commit, and whether its files differ from it. */
async function describe(dir: string): Promise<Side> {
  const commit = await git(dir, ["rev-parse", "--short", "HEAD"]) || "unknown commit";
  const dirty = await git(dir, ["status", "--porcelain", "--untracked-files=no"]);
  return { dir, commit: dirty ? `${commit} with uncommitted changes` : commit };
}

/**
 * Measures every row on `before` and `after`, `settings.rounds` times, alternating which
 * goes first (before, after; then after, before), each in fresh processes.
 */
export async function measureBeforeAfter(
  before: Tree,
  after: Tree,
  settings: Settings,
): Promise<BeforeAfter> {
  await checkTree(before);
  await checkTree(after);
  const rows: BeforeAfterRow[] = [];
  for (const probe of probes(settings)) {
    const own = probe.rows.map((spec): BeforeAfterRow => ({ ...spec, before: [], after: [] }));
    rows.push(...own);
    for (let round = 0; round < settings.rounds; round++) {
      const order = round % 2 === 0 ? ["before", "after"] as const : ["after", "before"] as const;
      for (const side of order) {
        const figures = await probe.measure(side === "before" ? before : after);
        figures.forEach((figure, i) => own[i][side].push(figure));
        console.log(
          `  round ${round + 1}/${settings.rounds}, ${side}: ` +
            own.map((r, i) => `${r.name} ${fixed(figures[i], r.digits)} ${r.unit}`).join("; "),
        );
      }
    }
  }
  return {
    date: new Date().toISOString().slice(0, 10),
    before: await describe(before.root),
    after: await describe(after.root),
    settings,
    rows,
  };
}

/** How a row came out: its ratio (below 1: after is worse), the rounds' range, a verdict. */
export interface Verdict {
  /** The median of the rounds' after/before (before/after for times and memory). */
  ratio: number;
  /** The lowest round's ratio. */
  low: number;
  /** The highest round's ratio. */
  high: number;
  /**
   * "regressed": the ratio is below {@link REGRESSION_BELOW} in every round; "unclear": in
   * the median, not in every round, or in fewer than {@link MIN_ROUNDS} rounds; "faster":
   * above its inverse in every round (of at least that many); else "ok".
   */
  verdict: "regressed" | "unclear" | "faster" | "ok";
}

/** The verdict on `row`. */
export function verdictOf(row: BeforeAfterRow): Verdict {
  const ratios = row.after.map((a, i) => row.lessIsBetter ? row.before[i] / a : a / row.before[i]);
  const ratio = median(ratios);
  const low = Math.min(...ratios);
  const high = Math.max(...ratios);
  const verdict = ratios.length < MIN_ROUNDS
    ? (ratio < REGRESSION_BELOW ? "unclear" : "ok")
    : high < REGRESSION_BELOW
    ? "regressed"
    : ratio < REGRESSION_BELOW
    ? "unclear"
    : low > 1 / REGRESSION_BELOW
    ? "faster"
    : "ok";
  return { ratio, low, high, verdict };
}

const VERDICT_TEXT: Record<Verdict["verdict"], string> = {
  regressed: "**REGRESSED**",
  unclear: "unclear",
  faster: "faster",
  ok: "no regression",
};

/** The sentence that says which rows regressed, if any. */
function summary(result: BeforeAfter): string {
  const regressed = result.rows.filter((r) => verdictOf(r).verdict === "regressed");
  const unclear = result.rows.filter((r) => verdictOf(r).verdict === "unclear");
  const names = (rows: BeforeAfterRow[]) => rows.map((r) => r.name).join("; ");
  return (regressed.length === 0
    ? "No row regressed."
    : `${regressed.length} of ${result.rows.length} rows regressed: ${names(regressed)}.`) +
    (unclear.length === 0 ? "" : ` Unclear (more rounds would tell): ${names(unclear)}.`);
}

/** Prints every row's verdict and the summary, for the console. */
export function printVerdicts(result: BeforeAfter): void {
  console.log(
    `\n# before (${result.before.commit}, ${result.before.dir}) and after (${result.after.commit})`,
  );
  for (const row of result.rows) {
    const v = verdictOf(row);
    console.log(
      `  ${v.verdict === "regressed" ? "REGRESSED" : v.verdict.padEnd(9)} ${row.name}: ` +
        `${fixed(median(row.before), row.digits)} → ${fixed(median(row.after), row.digits)} ` +
        `${row.unit}, ${row.lessIsBetter ? "before/after" : "after/before"} ` +
        `${v.ratio.toFixed(2)} (${v.low.toFixed(2)}–${v.high.toFixed(2)})`,
    );
  }
  console.log(`  ${summary(result)}`);
}

/** The command lines that reproduce a comparison against `commit`. */
function reproduce(commit: string): string {
  return `\`\`\`sh
git worktree add ../base ${commit}     # the checkout to compare with
(cd ../base && npx -y deno@2.9.6 task build:npm)
npx -y deno@2.9.6 task build:npm
npx -y deno@2.9.6 task bench --only=baseline --baseline=../base   # this section alone
\`\`\``;
}

/**
 * The section of docs/BENCHMARKS.md: what the comparison does, its table and verdict, and
 * the commands; without a result (a run without `--baseline`), the how alone.
 */
export function beforeAfterSection(result: BeforeAfter | undefined, versions: string): string {
  const how = `${SECTION_HEADING}

\`--baseline=DIR\` measures the rows a restructuring could slow on another checkout of this
repository, DIR ("before", with its own npm build), and on this one ("after"), in the same run.
Each round measures every row on both, in alternating order (before then after, then after then
before), each time in fresh processes running that checkout's own fixtures, so that the
machine's noise falls on both. The rows: our guests' Ping under h2load on the engine (section 1),
with the guest's CPU time per Ping over the same run (read from /proc in steps of 10 ms, so coarse
in short runs, but moved less than requests per second by whatever else runs), our hosts' Echo calls to a guest of their own runtime at c=32 and c=1 (section 2), a streamed
answer (section 6) and a guest's peak RSS after 10 000 concurrent streams (section 7). Each row
shows the medians over the rounds and after/before, the median of the rounds' ratios with their
range; for times and memory, where less is better, the ratio is before/after, so that below 1
always means "after" is worse. A row regressed when its ratio is below ${REGRESSION_BELOW} in
every round; it is unclear when below that in the median only (more rounds tell), faster when above
${
    (1 / REGRESSION_BELOW).toFixed(2)
  } in every round. Fewer than ${MIN_ROUNDS} rounds (\`--rounds=N\`; ${MIN_ROUNDS}
with \`--quick\`, else 5) give no verdict beyond "unclear".
`;
  if (!result) {
    return `${how}\nThis run compared nothing (no \`--baseline\`). To compare with an earlier
commit:\n\n${reproduce("<commit>")}\n`;
  }
  const s = result.settings;
  const table = result.rows.map((row) => {
    const v = verdictOf(row);
    return `| ${row.name} | ${fixed(median(row.before), row.digits)} ${row.unit} | ${
      fixed(median(row.after), row.digits)
    } ${row.unit} | ${v.ratio.toFixed(2)} | ${v.low.toFixed(2)}–${v.high.toFixed(2)} | ${
      VERDICT_TEXT[v.verdict]
    } |`;
  }).join("\n");
  const beforeCommit = result.before.commit.split(" ")[0];
  return `${how}
Before: \`${result.before.commit}\` (\`${result.before.dir}\`); after: \`${result.after.commit}\`;
${s.rounds} round${s.rounds === 1 ? "" : "s"} on ${result.date}${
    s.quick ? " with `--quick` (short runs: noisy figures)" : ""
  }, ${versions}; h2load \`-n ${s.requests} -c 4 -m 16\` after ${
    fmt(s.warmUp)
  } unmeasured Pings; streaming: the median of ${s.streamRuns} calls.

| row | before | after | after/before | rounds' range | verdict |
| --- | --- | --- | --- | --- | --- |
${table}

${summary(result)}

${reproduce(beforeCommit)}
`;
}

/**
 * `doc` with its before-and-after section replaced by `section` (or, if it has none, put in
 * before `## Where the time went`, else at the end).
 */
export function spliceSection(doc: string, section: string): string {
  const start = doc.indexOf(`\n${SECTION_HEADING}\n`);
  if (start >= 0) {
    const next = doc.indexOf("\n## ", start + 1);
    return doc.slice(0, start + 1) + section + (next < 0 ? "" : `\n${doc.slice(next + 1)}`);
  }
  const anchor = doc.indexOf("\n## Where the time went");
  return anchor < 0
    ? `${doc}\n${section}`
    : `${doc.slice(0, anchor + 1)}${section}\n${doc.slice(anchor + 1)}`;
}
