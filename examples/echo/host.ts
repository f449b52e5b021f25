/**
 * The demo: a host that spawns the echo plugin, calls it and stops it.
 *
 *     deno task demo
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { spawn } from "../../host.ts";
import { EchoService } from "../../gen/echo/v1/echo_pb.ts";

const pluginScript = fileURLToPath(new URL("./plugin.ts", import.meta.url));
const dir = await Deno.makeTempDir({ prefix: "echo-demo-" });
const say = (text: string) => console.log(`demo: ${text}`);

try {
  say(`spawning ${pluginScript}`);
  const spawnedAt = performance.now();
  await using plugin = await spawn({
    name: "echo",
    dir,
    exe: Deno.execPath(),
    // --quiet: Deno's own progress lines (a download on a first run) would reach the
    // plugin's stderr, which the host mirrors as the plugin's errors.
    args: ["run", "--quiet", "--allow-net=127.0.0.1", "--allow-env", pluginScript],
    env: { ECHO_GREETING: "hello," },
    service: EchoService,
  });
  const readyMs = performance.now() - spawnedAt;
  say(
    `ready in ${readyMs.toFixed(1)} ms: pid ${plugin.pid}, ${plugin.endpoint.href}, ` +
      `protocol ${plugin.protocol}`,
  );

  const echoed = await plugin.client.echo({ message: "world" });
  say(`Echo("world") → ${JSON.stringify(echoed.message)}`);

  const numbers: number[] = [];
  for await (const { number } of plugin.client.count({ count: 5, intervalMs: 20 })) {
    numbers.push(number);
  }
  say(`Count(5) streamed ${numbers.join(", ")}`);

  const stoppingAt = performance.now();
  const exit = await plugin.stop();
  const stopMs = performance.now() - stoppingAt;
  say(`stopped with exit code ${exit.code} in ${stopMs.toFixed(1)} ms`);
  say(
    `summary: ready ${readyMs.toFixed(0)} ms · 1 unary call · ${numbers.length} streamed ` +
      `messages · clean stop ${stopMs.toFixed(0)} ms`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
