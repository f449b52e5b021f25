/**
 * A host that starts the echo plugin only if its script is the one it was told to
 * expect: the digest comes from the first argument (a release would pin it in the
 * host's config), e.g.
 *
 *     deno run --allow-run --allow-net=127.0.0.1 --allow-env --allow-read --allow-write \
 *       examples/checksum/host.ts "sha256:$(sha256sum examples/echo/plugin.ts | cut -d' ' -f1)"
 *
 * A changed plugin.ts is refused before anything runs, and the host exits 1.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { PluginChecksumError, spawn } from "../../host.ts";
import { EchoService } from "../../gen/echo/v1/echo_pb.ts";

const pluginScript = fileURLToPath(new URL("../echo/plugin.ts", import.meta.url));
const digest = Deno.args[0];
if (!digest) {
  console.error("usage: host.ts sha256:<digest of examples/echo/plugin.ts>");
  Deno.exit(2);
}

const dir = await Deno.makeTempDir({ prefix: "checksum-demo-" });
try {
  await using plugin = await spawn({
    name: "echo",
    dir,
    exe: Deno.execPath(),
    args: ["run", "--quiet", "--allow-net=127.0.0.1", "--allow-env", pluginScript],
    // Deno runs the script, so the script is what is checked (an absolute path here;
    // a relative one is taken from `dir`).
    checksum: { file: pluginScript, digest },
    service: EchoService,
  });
  const { message } = await plugin.client.echo({ message: "verified" });
  console.log(`checksum: echo answered ${JSON.stringify(message)}`);
} catch (error) {
  if (!(error instanceof PluginChecksumError)) throw error;
  console.error(`checksum: refused: ${error.message}`);
  Deno.exitCode = 1;
} finally {
  await Deno.remove(dir, { recursive: true });
}
