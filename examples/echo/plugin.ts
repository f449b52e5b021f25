/**
 * The echo plugin: a complete guest. Run it by hand with
 *
 *     FTL_BIND=http://127.0.0.1:8123 deno run -A examples/echo/plugin.ts
 *
 * and call it with plain curl:
 *
 *     curl --http2-prior-knowledge -H 'content-type: application/json' \
 *       -d '{"message":"hi"}' http://127.0.0.1:8123/echo.v1.EchoService/Echo
 *
 * Its own setting: `--greeting` / `ECHO_GREETING`; `--help` lists everything.
 *
 * @module
 */
import { field, start } from "../../guest.ts";
import { EchoService } from "../../gen/echo/v1/echo_pb.ts";
import { echoImplementation } from "./echo.ts";

await start({
  name: "echo",
  description: "An example plugin that echoes, counts and fails on request.",
  service: EchoService,
  config: {
    greeting: field.string({
      env: "ECHO_GREETING",
      default: "",
      help: "Prefix for every echoed message.",
    }),
  },
  create: (ctx, config) => {
    ctx.logger.info("echo plugin starting", { greeting: config.greeting });
    return echoImplementation(config.greeting, ctx.logger);
  },
});
