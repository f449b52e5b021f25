/**
 * Supervision: a host spawns the echo plugin with `restart`, the plugin is killed, and
 * the same client calls it again once it is back (calls fail UNAVAILABLE while it is
 * down, so the host retries those).
 *
 *     deno run --allow-run --allow-net=127.0.0.1 --allow-env --allow-read --allow-write \
 *       examples/supervise/host.ts
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { spawn } from "../../host.ts";
import { EchoService } from "../../gen/echo/v1/echo_pb.ts";

const pluginScript = fileURLToPath(new URL("../echo/plugin.ts", import.meta.url));
const dir = await Deno.makeTempDir({ prefix: "supervise-demo-" });

try {
  await using plugin = await spawn({
    name: "echo",
    dir,
    exe: Deno.execPath(),
    args: ["run", "--quiet", "--allow-net=127.0.0.1", "--allow-env", pluginScript],
    service: EchoService,
    restart: {
      maxRestarts: 3,
      backoff: { initialMs: 100, maxMs: 2_000 },
      onRestart: ({ attempt, delayMs, reason }) =>
        console.log(`${reason.message}: restart ${attempt} in ${delayMs} ms`),
    },
  });
  const { client } = plugin;
  console.log(`pid ${plugin.pid} says ${(await client.echo({ message: "before" })).message}`);

  Deno.kill(plugin.pid, "SIGKILL");
  const { message } = await whenAvailable(() => client.echo({ message: "after" }));
  console.log(`pid ${plugin.pid} says ${message}; restarts: ${plugin.restarts}`);
} finally {
  await Deno.remove(dir, { recursive: true });
}

/** Calls `call` again while it fails UNAVAILABLE (the plugin is down), for up to 5 s. */
async function whenAvailable<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt === 50 || ConnectError.from(error).code !== Code.Unavailable) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
