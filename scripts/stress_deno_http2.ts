/**
 * The Deno gRPC question (issue 5): can a Deno guest serve gRPC through Deno's
 * node:http2 server? Serves the echo service on Deno with the Node adapter's
 * listener (node:http2, which can send trailers) and runs h2load (Debian's
 * nghttp2-client) against gRPC Ping: -c 4 -m 16 -n 100000, three times. Prints one
 * line per run and whether the server process survived.
 *
 *     deno run -A scripts/stress_deno_http2.ts
 *
 * @module
 */
import { serveHttp, serverSendsTrailers } from "../internal/runtime/node.ts";
import { createPluginHandler } from "../internal/router.ts";
import { Logger } from "../internal/log.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { echoImplementation } from "../examples/echo/echo.ts";

if (Deno.args[0] === "serve") {
  const logger = new Logger({ level: 17, write: (line) => console.error(line.trimEnd()) });
  const server = await serveHttp({
    address: { kind: "tcp", hostname: "127.0.0.1", port: 0 },
    headerTimeoutMs: 30_000,
    handler: createPluginHandler({
      services: [[EchoService, echoImplementation("")]],
      logger,
      readMaxBytes: 4 << 20,
      shutdownSignal: new AbortController().signal,
      trailers: serverSendsTrailers,
    }),
    onError: (error) => logger.error("request failed", error),
  });
  console.log(server.address.kind === "tcp" ? server.address.port : 0);
} else {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "serve"],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const port = Number((await reader.read()).value?.trim());
  const body = await Deno.makeTempFile();
  await Deno.writeFile(body, new Uint8Array([0, 0, 0, 0, 0])); // an empty gRPC message
  let crashed = false;
  const exit = child.status.then((s) => (crashed = true, s));
  for (let run = 1; run <= 3 && !crashed; run++) {
    const out = await new Deno.Command("h2load", {
      args: [
        "-c",
        "4",
        "-m",
        "16",
        "-n",
        "100000",
        "-d",
        body,
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        `http://127.0.0.1:${port}/echo.v1.EchoService/Ping`,
      ],
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    const summary = /requests: .*/.exec(text)?.[0] ?? "no summary";
    const rps = /finished in [^,]+, ([\d.]+) req\/s/.exec(text)?.[1] ?? "?";
    console.log(`run ${run}: ${summary}; ${rps} req/s`);
  }
  await new Promise((r) => setTimeout(r, 200));
  if (crashed) {
    const status = await exit;
    console.log(`server crashed: code ${status.code} signal ${status.signal}`);
  } else {
    console.log("server survived all runs");
    child.kill("SIGKILL");
    await child.status;
  }
  await Deno.remove(body);
}
