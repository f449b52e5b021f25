/**
 * Reattaching: one host starts the echo plugin detached and writes down where it is, then
 * exits; a later host attaches, calls it and stops it.
 *
 *     deno run --allow-run --allow-net=127.0.0.1 --allow-env --allow-read --allow-write \
 *       examples/attach/host.ts start /tmp/echo.json deno run --allow-net=127.0.0.1 \
 *       --allow-env examples/echo/plugin.ts
 *     deno run …the same permissions… examples/attach/host.ts attach /tmp/echo.json
 *
 * @module
 */
import { readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import process from "node:process";
import { attach, type AttachInfo, spawn } from "../../host.ts";
import { EchoService } from "../../gen/echo/v1/echo_pb.ts";

const [command, infoFile, exe, ...args] = process.argv.slice(2);

if (command === "start" && infoFile && exe) {
  const plugin = await spawn({
    name: "echo",
    dir: dirname(infoFile),
    exe,
    args,
    service: EchoService,
    detach: true,
  });
  // The token is in there: only this user may read it.
  await writeFile(infoFile, JSON.stringify(plugin.attachInfo()), { mode: 0o600 });
  console.log(`started echo, pid ${plugin.pid}; attach with ${infoFile}`);
  // The child and its output keep a host running: this one leaves by exiting.
  process.exit(0);
} else if (command === "attach" && infoFile) {
  const info: AttachInfo = JSON.parse(await readFile(infoFile, "utf8"));
  const plugin = await attach({ ...info, service: EchoService });
  const { message } = await plugin.client.echo({ message: "still there?" });
  console.log(`echo (pid ${plugin.pid}) answered: ${message}`);
  const exit = await plugin.stop();
  console.log(`stopped (code ${exit.code}, signal ${exit.signal}: not ours to know)`);
} else {
  console.error("usage: host.ts start <info.json> <exe> [args…] | host.ts attach <info.json>");
  process.exit(2);
}
