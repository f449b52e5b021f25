/**
 * Where "readiness seen after listening" goes: spawns the echo guest ten times and, through
 * `SpawnOptions.readiness` (the same Ping on the same transport as the default check),
 * times each readiness attempt against the moment the guest's "serving on" line reaches
 * the host.
 *
 *   deno run -A scripts/bench/readiness_attempts.ts [deno|node]
 *
 * (`node` needs the npm build: `deno task build:npm`.)
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { spawn } from "../../host.ts";
import { EchoService } from "../../gen/echo/v1/echo_pb.ts";
import { Logger, LogLevel } from "../../internal/log.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const runtime = Deno.args[0] ?? "deno";
const command = runtime === "node"
  ? { exe: "node", args: [join(root, "npm/examples/echo/plugin.js")] }
  : { exe: Deno.execPath(), args: ["run", "-A", join(root, "examples/echo/plugin.ts")] };
const dir = await Deno.makeTempDir();
const fmt = (ms: number) => ms.toFixed(2);
try {
  for (let i = 0; i < 10; i++) {
    let lineArrived = NaN;
    const attempts: { started: number; ended: number }[] = [];
    const logger = new Logger({
      level: LogLevel.Trace,
      write: (line) => {
        if (line.includes('"serving on ')) lineArrived = performance.now();
      },
    });
    const plugin = await spawn({
      name: "echo",
      dir,
      ...command,
      service: EchoService,
      logger,
      readiness: async (transport, signal) => {
        const started = performance.now();
        try {
          return (await createClient(EchoService, transport).ping({}, { signal })).notReady;
        } finally {
          attempts.push({ started, ended: performance.now() });
        }
      },
    });
    const ready = performance.now();
    await plugin.stop();
    const last = attempts.at(-1)!;
    console.log(
      `${runtime} guest: "serving on" line reached the host -> ready ${
        fmt(ready - lineArrived)
      } ms; ` +
        `the answered Ping started ${fmt(last.started - lineArrived)} ms after the line ` +
        `and took ${fmt(last.ended - last.started)} ms; ${attempts.length} attempts`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
