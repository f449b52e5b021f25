/**
 * Fuzzes the HTTP/2 engine: `HpackDecoder.decode` with random and mutated header
 * blocks, then the server role (`createH2Server(…).serve()`) with random and mutated
 * frame sequences over an in-memory socket (tests/fixtures/fuzz_hpack.ts and
 * fuzz_server.ts say what each case must keep to).
 *
 * ```sh
 * deno task fuzz                                  # 1 000 000 cases of each target
 * deno task fuzz --cases 50000 --seed 7           # fewer, and a chosen seed
 * deno task fuzz --target server --seed 7 --case 123   # replay one case
 * ```
 *
 * Prints cases per second, heap used at the start and the end, and every failure with
 * its seed and case number; exits 1 when any case failed.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { describe, FuzzFailure, hpackStats, runHpackCase } from "../tests/fixtures/fuzz_hpack.ts";
import { connectionInput, runConnectionCases, serverStats } from "../tests/fixtures/fuzz_server.ts";

const USAGE = "deno task fuzz [--cases N] [--seed S] [--target hpack|server|both] [--case I]";
let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    options: {
      cases: { type: "string", default: "1000000" },
      seed: { type: "string" },
      target: { type: "string", default: "both" },
      case: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
} catch (error) {
  console.error(`fuzz: ${(error as Error).message}\nusage: ${USAGE}`);
  Deno.exit(2);
}
const { values } = parsed;
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const cases = Number(values.cases);
// No seed given: one from the clock, printed, so that any run can be replayed.
const seed = values.seed === undefined ? Date.now() % 0x1_0000_0000 : Number(values.seed);
const only = values.case === undefined ? undefined : Number(values.case);
const target = values.target;
if (
  !Number.isSafeInteger(cases) || cases < 0 || !Number.isSafeInteger(seed) ||
  !["hpack", "server", "both"].includes(target!) ||
  (only !== undefined && !Number.isSafeInteger(only))
) {
  console.error(
    "usage: deno task fuzz [--cases N] [--seed S] [--target hpack|server|both] [--case I]",
  );
  Deno.exit(2);
}

const MiB = 1024 * 1024;
/** Connection cases run at once: one that ended in an error lingers before it closes. */
const CONCURRENCY = 500;
const heap = () => `${(Deno.memoryUsage().heapUsed / MiB).toFixed(1)} MiB`;
const failures: string[] = [];
const MAX_FAILURES = 20;
let current = "";
globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  failures.push(`unhandled rejection during ${current}: ${describe(event.reason)}`);
});

function record(error: unknown, what: string): void {
  failures.push(error instanceof FuzzFailure ? error.message : `${what}: ${describe(error)}`);
  console.log(`FAIL ${failures.at(-1)}`);
}

console.log(`seed ${seed}; heap used at the start ${heap()}`);

if (target !== "server") {
  const stats = hpackStats();
  const from = only ?? 0;
  const to = only === undefined ? cases : only + 1;
  const started = performance.now();
  let reported = started;
  for (let i = from; i < to && failures.length < MAX_FAILURES; i++) {
    current = `hpack case ${i}`;
    try {
      runHpackCase(seed, i, stats);
    } catch (error) {
      record(error, `hpack case ${i} (seed ${seed})`);
    }
    if ((i & 0xfff) === 0 && performance.now() - reported > 10_000) {
      reported = performance.now();
      console.log(`  hpack: ${i - from} cases, ${heap()} heap`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  // The slowest decode once more, five times: a pause of the collector or the machine
  // shows up once, a slow input every time.
  let retimed = Infinity;
  for (let i = 0; i < 5 && stats.slowestCase >= 0; i++) {
    const again = hpackStats();
    runHpackCase(seed, stats.slowestCase, again);
    retimed = Math.min(retimed, again.slowestMs);
  }
  console.log(
    `hpack: ${stats.cases} cases (${stats.blocks} blocks, ${stats.refused} refused with ` +
      `HpackError) in ${seconds.toFixed(1)} s: ${Math.round(stats.cases / seconds)} cases/s; ` +
      `slowest decode ${stats.slowestMs.toFixed(2)} ms (case ${stats.slowestCase}, ` +
      `${retimed.toFixed(2)} ms at best when rerun); largest ` +
      `list ${stats.largestList} bytes; heap ${heap()}`,
  );
}

if (target !== "hpack") {
  if (only !== undefined) {
    const { input, prefix } = connectionInput(seed, only);
    console.log(`case ${only}: ${prefix.length} bytes given as prefix, ${input.length} read`);
  }
  const stats = serverStats();
  const from = only ?? 0;
  const to = only === undefined ? cases : only + 1;
  const started = performance.now();
  let reported = started;
  let peak = Deno.memoryUsage().heapUsed;
  current = "connection cases";
  await runConnectionCases(
    seed,
    from,
    to,
    CONCURRENCY,
    stats,
    (error, index) => {
      record(error, `connection case ${index} (seed ${seed})`);
      return failures.length < MAX_FAILURES;
    },
    (done) => {
      if ((done & 0xff) !== 0) return;
      peak = Math.max(peak, Deno.memoryUsage().heapUsed);
      if (performance.now() - reported > 10_000) {
        reported = performance.now();
        const rate = Math.round(done / ((reported - started) / 1000));
        console.log(`  server: ${done} cases, ${rate} cases/s, ${heap()} heap`);
      }
    },
  );
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `server: ${stats.cases} cases in ${seconds.toFixed(1)} s: ` +
      `${Math.round(stats.cases / seconds)} cases/s; ${(stats.inputBytes / MiB).toFixed(0)} MiB ` +
      `in, ${(stats.outputBytes / MiB).toFixed(0)} MiB out; ${stats.handlerCalls} handler calls ` +
      `(${stats.onError} reported through onError), ${stats.responses} responses; slowest case ` +
      `${stats.slowestMs.toFixed(1)} ms (case ${stats.slowestCase}); worst ratio of frames ` +
      `other than DATA to input ${stats.worstRatio.toFixed(2)}; writes after close ` +
      `${stats.writesAfterClose}; heap peak ${(peak / MiB).toFixed(1)} MiB`,
  );
  console.log(`  GOAWAY sent: ${JSON.stringify(stats.goaways)}`);
  console.log(`  RST_STREAM sent: ${JSON.stringify(stats.resets)}`);
  const reasons = Object.entries(stats.goawayReasons).sort((a, b) => b[1] - a[1]);
  console.log(`  GOAWAY reasons (top 15 of ${reasons.length}):`);
  for (const [reason, count] of reasons.slice(0, 15)) console.log(`    ${count} ${reason}`);
}

// Callbacks of the last case run before the verdict.
await new Promise((resolve) => setTimeout(resolve, 50));
console.log(`heap used at the end ${heap()}`);
if (failures.length > 0) {
  console.log(
    `${failures.length} failure(s)${failures.length >= MAX_FAILURES ? " (stopped)" : ""}:`,
  );
  for (const failure of failures) console.log(`  ${failure}`);
  Deno.exit(1);
}
console.log("no failures");
