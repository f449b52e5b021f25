/**
 * A host that serves a key-value store to its plugin (`plugin.ts` beside it), as
 * go-plugin's GRPCBroker does, then calls the plugin, which calls back:
 *
 *     deno run --allow-run --allow-net --allow-env --allow-read --allow-write \
 *       examples/host_services/host.ts [dir]
 *
 * A Deno host listens on a unix socket, which Deno 2.9 checks against `--allow-net`
 * (`unix:<path>`) besides read and write: a plain `--allow-net`, or
 * `--allow-net=127.0.0.1,unix:<dir>/.ftl/greeter.host.sock~` (the name it is bound under
 * before it is moved into place).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { hostService, spawn } from "../../host.ts";
import { EchoService } from "../../gen/echo/v1/echo_pb.ts";
import { KeyValueService } from "../../gen/kv/v1/kv_pb.ts";

const store = new Map([["greeting", "hello,"]]);
const keyValue = hostService(KeyValueService, {
  get: ({ key }) => ({ value: store.get(key) ?? "", found: store.has(key) }),
  put: ({ key, value }) => (store.set(key, value), {}),
  async *list({ prefix }) {
    for (const key of [...store.keys()].sort()) {
      if (key.startsWith(prefix)) yield { key, value: store.get(key)! };
    }
  },
});

const say = (text: string) => console.log(`host-services: ${text}`);
const given = Deno.args[0];
const dir = given ?? await Deno.makeTempDir({ prefix: "host-services-" });
// Where spawn() puts the host's socket: the plugin's Deno permissions name it.
const socket = `${dir}/.ftl/greeter.host.sock`;
try {
  await using plugin = await spawn({
    name: "greeter",
    dir,
    exe: Deno.execPath(),
    args: [
      "run",
      "--quiet",
      `--allow-net=127.0.0.1,unix:${socket}`,
      `--allow-read=${socket}`,
      `--allow-write=${socket}`,
      "--allow-env",
      fileURLToPath(new URL("./plugin.ts", import.meta.url)),
    ],
    service: EchoService,
    hostServices: [keyValue],
  });
  for (const message of ["world", "again"]) {
    say(`Echo(${JSON.stringify(message)}) → ${(await plugin.client.echo({ message })).message}`);
  }
  const numbers: number[] = [];
  for await (const { number } of plugin.client.count({})) numbers.push(number);
  say(`the host's store holds ${[...store.keys()].join(", ")}`);
  say(`Count streamed ${numbers.join(", ")} (from the host's List)`);
  say(`stopped with exit code ${(await plugin.stop()).code}`);
} finally {
  if (given === undefined) await Deno.remove(dir, { recursive: true });
}
