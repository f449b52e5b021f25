/**
 * The consumer project test:npm and test:bun install the packed npm build into: a plain
 * `.mjs` host that spawns a plain `.mjs` guest on its own runtime (`process.execPath`, so
 * node under Node and bun under Bun) and calls it over gRPC and Connect.
 *
 * @module
 */
import { join } from "node:path";

/** The guest: the echo service, from the installed package's `guest` entry point. */
export const consumerGuest = `// A plugin in plain JavaScript, from the installed package.
import { start } from "@ftl-ts/plugin/guest";
import { EchoService } from "./gen/echo/v1/echo_pb.js";

await start({
  name: "echo",
  service: EchoService,
  create: () => ({
    ping: () => ({}),
    echo: (request) => ({ message: "hello from " + request.message }),
    async *count() {},
    fail: () => ({}),
  }),
});
`;

/** The host: spawns guest.mjs once per protocol and prints `<protocol>: <answer>`. */
export const consumerHost = `// A host in plain JavaScript, from the installed package.
import process from "node:process";
import { spawn } from "@ftl-ts/plugin/host";
import { EchoService } from "./gen/echo/v1/echo_pb.js";

for (const protocol of ["grpc", "connect"]) {
  const plugin = await spawn({
    name: "echo",
    dir: process.cwd(),
    exe: process.execPath,
    args: ["guest.mjs"],
    service: EchoService,
    protocol,
  });
  try {
    const { message } = await plugin.client.echo({ message: protocol });
    console.log(protocol + ": " + message);
  } finally {
    await plugin.stop();
  }
}
`;

/** What the host prints when both calls were answered. */
export const consumerHostPrints: readonly string[] = [
  "grpc: hello from grpc",
  "connect: hello from connect",
];

/**
 * Writes the project into `project` (created if missing), without the package: its
 * package.json (ESM), host.mjs, guest.mjs and the generated code they import, copied
 * from the npm build in `npmDir` as protoc-gen-es (target js) would give it.
 */
export async function writeConsumerProject(project: string, npmDir: string): Promise<void> {
  await Deno.mkdir(project, { recursive: true });
  await Deno.writeTextFile(
    join(project, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
  for (const file of ["echo/v1/echo_pb.js", "xyz/block/ftl/v1/ftl_pb.js"]) {
    await Deno.mkdir(join(project, "gen", file, ".."), { recursive: true });
    await Deno.copyFile(join(npmDir, "gen", file), join(project, "gen", file));
  }
  await Deno.writeTextFile(join(project, "guest.mjs"), consumerGuest);
  await Deno.writeTextFile(join(project, "host.mjs"), consumerHost);
}
