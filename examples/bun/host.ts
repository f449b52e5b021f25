/**
 * A Deno host running a plugin on Bun: the echo plugin as the npm build compiled it
 * (`npm/examples/echo/plugin.js`, from `deno task build:npm`), started by `bun`, called
 * over Connect, gRPC and gRPC-Web in turn, and stopped. Bun runs a plugin written against
 * `@ftl-ts/plugin/guest` from npm as it is; the host needs nothing Bun-specific.
 *
 *     deno task build:npm
 *     deno run --allow-run --allow-net=127.0.0.1 --allow-env --allow-read --allow-write \
 *       examples/bun/host.ts [path/to/bun]
 *
 * `bun` is looked up on PATH unless given.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { spawn, type WireProtocol } from "../../host.ts";
import { EchoService } from "../../gen/echo/v1/echo_pb.ts";

const bun = Deno.args[0] ?? "bun";
const plugin = fileURLToPath(new URL("../../npm/examples/echo/plugin.js", import.meta.url));
const dir = await Deno.makeTempDir({ prefix: "bun-demo-" });

try {
  for (const protocol of ["connect", "grpc", "grpc-web"] satisfies WireProtocol[]) {
    const echo = await spawn({
      name: "echo",
      dir,
      exe: bun,
      args: [plugin],
      env: { ECHO_GREETING: "hello from bun," },
      service: EchoService,
      protocol,
    });
    try {
      // spawn() resolved: the plugin answered Ping.
      const { message } = await echo.client.echo({ message: protocol });
      const numbers: number[] = [];
      for await (const { number } of echo.client.count({ count: 3 })) numbers.push(number);
      console.log(`bun guest over ${protocol}: ${message}; count ${numbers.join(" ")}`);
    } finally {
      const exit = await echo.stop();
      console.log(`bun guest over ${protocol}: stopped, exit code ${exit.code}`);
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
