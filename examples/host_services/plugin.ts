/**
 * A plugin that calls back into its host: it reads its greeting from the key-value
 * store the host serves (`kv.v1.KeyValueService`, spawn's `hostServices`) when it
 * starts, records every message it echoes there, and streams back what the host holds.
 * `host.ts` beside it starts it.
 *
 * A Deno guest needs, besides `--allow-net=127.0.0.1 --allow-env`, access to the host's
 * socket: `--allow-net=unix:<socket>`, `--allow-read=<socket>` and `--allow-write=<socket>`
 * (Deno 2.9 checks all three to connect to a unix socket).
 *
 * @module
 */
import { type Code, ConnectError } from "@connectrpc/connect";
import { start } from "../../guest.ts";
import { EchoService } from "../../gen/echo/v1/echo_pb.ts";
import { KeyValueService } from "../../gen/kv/v1/kv_pb.ts";

await start({
  name: "greeter",
  service: EchoService,
  create: async (ctx) => {
    // A typed client of the host's service; it throws FAILED_PRECONDITION here when the
    // host serves none (FTL_HOST_BIND unset), and the plugin exits 1 saying so.
    const kv = ctx.host(KeyValueService);
    const { value: greeting, found } = await kv.get({ key: "greeting" });
    ctx.logger.info("greeting from the host", { greeting, found: String(found) });
    return {
      ping: () => ({}),
      async echo(request, context) {
        await kv.put({ key: `seen/${request.message}`, value: request.message }, {
          signal: context.signal,
        });
        return { message: `${greeting} ${request.message}` };
      },
      // One number for each message the host has recorded, streamed from the host.
      async *count(_request, context) {
        let number = 0;
        for await (const _ of kv.list({ prefix: "seen/" }, { signal: context.signal })) {
          yield { number: ++number };
        }
      },
      fail(request) {
        throw new ConnectError(request.message, request.code as Code);
      },
    };
  },
});
