/**
 * Runs h2spec (RFC 7540/9113 and RFC 7541 conformance for servers, 146 cases) against
 * the HTTP/2 engine's server role: `Deno.listen` on a free loopback port,
 * `createH2Server` with the echo example's service (connect-es router, gRPC with
 * trailers) and a plain 200 answer for every other path, read after the whole request
 * body (h2spec's "/" needs a body of a few bytes for its flow-control cases).
 *
 *     deno run -A scripts/h2spec_server.ts [--runs N] [--serve] [-- extra h2spec args]
 *
 * `--serve` only serves and prints the port. H2SPEC (default
 * ../shared/tools/h2spec/h2spec) names the binary. Exits 1 unless every run passed all.
 *
 * @module
 */
import type { UniversalHandlerFn } from "@connectrpc/connect/protocol";
import { createH2Server } from "../internal/http2/server_universal.ts";
import { createPluginHandler } from "../internal/router.ts";
import { Logger, LogLevel } from "../internal/log.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { echoImplementation } from "../examples/echo/echo.ts";

const args = [...Deno.args];
const dashes = args.indexOf("--");
const extra = dashes >= 0 ? args.splice(dashes).slice(1) : [];
const serveOnly = args.includes("--serve");
const runsAt = args.indexOf("--runs");
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 1;
const h2spec = Deno.env.get("H2SPEC") ??
  new URL("../../shared/tools/h2spec/h2spec", import.meta.url).pathname;

const shutdown = new AbortController();
const plugin = createPluginHandler({
  services: [[EchoService, echoImplementation("")]],
  logger: new Logger({
    level: LogLevel.Error,
    write: (line) => Deno.stderr.writeSync(encode(line)),
  }),
  readMaxBytes: 4 * 1024 * 1024,
  shutdownSignal: shutdown.signal,
  trailers: true,
});
const hello = encode("hello from the HTTP/2 engine\n");
const handler: UniversalHandlerFn = async (request) => {
  if (new URL(request.url).pathname.startsWith("/echo.v1.")) return plugin(request);
  // The whole request first, as a real handler would.
  for await (const _ of request.body as AsyncIterable<Uint8Array>) { /* drained */ }
  return {
    status: 200,
    header: new Headers({ "content-type": "text/plain" }),
    body: (async function* () {
      yield hello;
    })(),
  };
};

const errors: unknown[] = [];
const server = createH2Server({
  handler,
  onError: (error) => errors.push(error),
  headerTimeoutMs: 30_000,
});
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const port = (listener.addr as Deno.NetAddr).port;
(async () => {
  for await (const conn of listener) {
    conn.setNoDelay(true);
    server.serve(conn, new Uint8Array(0));
  }
})().catch(() => {});
console.log(`listening on 127.0.0.1:${port}`);

if (!serveOnly) {
  let failedRuns = 0;
  for (let run = 1; run <= runs; run++) {
    const out = await new Deno.Command(h2spec, {
      args: ["-h", "127.0.0.1", "-p", String(port), "-o", "2", ...extra],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    const summary = /(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed/.exec(text);
    if (!summary || summary[4] !== "0") {
      failedRuns++;
      const failures = text.slice(text.indexOf("Failures:"));
      console.log(failures.includes("Failures:") ? failures : text);
    }
    console.log(`run ${run}: ${summary?.[0] ?? "no summary"}`);
  }
  listener.close();
  shutdown.abort();
  server.close();
  Deno.exit(failedRuns === 0 ? 0 : 1);
}

function encode(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
