/**
 * `bundle_plugin.ts --probe`: how long each form of the echo plugin takes from our
 * host's `spawn()` to ready, beside bare one-line runs of each runtime (spawn → exit),
 * all measured in the same interleaved loop so the machine's load falls on each alike.
 * Prints a Markdown table of medians, ratios to the bare runtime and file sizes.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Logger, LogLevel, spawn } from "../host.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { buildSea, bundleForDeno, bundleForNode, denoEcho, nodeEcho } from "./bundle_plugin.ts";

interface Form {
  name: string;
  runtime: "deno" | "node";
  exe: string;
  args: string[];
  /** A plugin (timed to ready) or a bare one-liner (timed to exit). */
  plugin: boolean;
  /** The file a user ships, for its size. */
  file?: string;
}

/** The guests' info lines would bury the table: the host mirrors only their errors. */
const quiet = new Logger({ level: LogLevel.Error, write: (line) => console.error(line) });
const guestPermissions = ["--allow-net=127.0.0.1", "--allow-env"];

async function timeBare(form: Form): Promise<number> {
  const started = performance.now();
  const { success } = await new Deno.Command(form.exe, { args: form.args, stdout: "null" })
    .output();
  if (!success) throw new Error(`${form.name} failed`);
  return performance.now() - started;
}

async function timePlugin(form: Form, dir: string): Promise<number> {
  const options = { name: "echo", dir, service: EchoService, logger: quiet };
  const started = performance.now();
  const plugin = await spawn({ ...options, exe: form.exe, args: form.args });
  const ready = performance.now() - started;
  const exit = await plugin.stop();
  // Told, not thrown: one odd stop on a loaded machine should not lose the run's figures.
  if (exit.code !== 0) console.error(`${form.name} stopped with ${JSON.stringify(exit)}`);
  return ready;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Builds the forms in a temporary directory and prints their start-up medians. */
export async function probe(options: { rounds: number; node: string }): Promise<void> {
  // The Deno source form finds deno.json (its import map) from the working directory.
  Deno.chdir(fileURLToPath(new URL("..", import.meta.url)));
  const dir = await Deno.makeTempDir({ prefix: "ftl-bundle-probe-" });
  try {
    const oneLiner = join(dir, "one.js");
    await Deno.writeTextFile(oneLiner, "globalThis.done = true;\n");
    const denoBundle = await bundleForDeno(denoEcho, dir);
    const nodeBundle = await bundleForNode(nodeEcho(), dir);
    const sea = await buildSea(nodeEcho(), dir, options.node);
    const deno = Deno.execPath();
    const node = options.node;
    const forms: Form[] = [
      {
        name: "bare `deno run` one-liner",
        runtime: "deno",
        exe: deno,
        args: ["run", oneLiner],
        plugin: false,
      },
      {
        name: "Deno echo, source",
        runtime: "deno",
        exe: deno,
        args: ["run", ...guestPermissions, denoEcho],
        plugin: true,
      },
      {
        name: "Deno echo, `deno bundle`",
        runtime: "deno",
        exe: deno,
        args: ["run", ...guestPermissions, denoBundle],
        plugin: true,
        file: denoBundle,
      },
      {
        name: "bare `node` one-liner",
        runtime: "node",
        exe: node,
        args: [oneLiner],
        plugin: false,
      },
      {
        name: "Node echo, npm build",
        runtime: "node",
        exe: node,
        args: [nodeEcho()],
        plugin: true,
      },
      {
        name: "Node echo, esbuild bundle",
        runtime: "node",
        exe: node,
        args: [nodeBundle],
        plugin: true,
        file: nodeBundle,
      },
      { name: "Node echo, SEA", runtime: "node", exe: sea, args: [], plugin: true, file: sea },
    ];
    const times = new Map<Form, number[]>(forms.map((form) => [form, []]));
    // One unmeasured round first: caches (Deno's module and code caches) warm up.
    for (let round = -1; round < options.rounds; round++) {
      for (const form of forms) {
        const ms = form.plugin ? await timePlugin(form, dir) : await timeBare(form);
        if (round >= 0) times.get(form)!.push(ms);
      }
    }
    const bare = (runtime: string) =>
      median(times.get(forms.find((f) => f.runtime === runtime && !f.plugin)!)!);
    console.log(`| form | p50 ms (spawn → ${"ready"}) | × bare runtime | file |`);
    console.log("| --- | --- | --- | --- |");
    for (const form of forms) {
      const p50 = median(times.get(form)!);
      const size = form.file ? `${((await Deno.stat(form.file)).size / 1024).toFixed(0)} KiB` : "";
      console.log(
        `| ${form.name} | ${p50.toFixed(1)} | ${
          (p50 / bare(form.runtime)).toFixed(2)
        }× | ${size} |`,
      );
    }
    console.log(`\n${options.rounds} rounds; node: ${node}; bare runs are timed spawn → exit.\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
